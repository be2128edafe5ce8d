import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenIngress
import MutewardenModel
import MutewardenProviderKit

/// The `graph` feed: Graph's call notifications, taken by the daemon's ingress on the feed's
/// path, authenticated by their bearer JWT (issuer, the bot's app id, expiry, tenant) before their
/// body is read, then read by ``GraphFeedCore``. It also takes what the `graph` target learns of
/// its operations (``GraphOperationRouter``), since their outcomes concern this feed's calls.
///
/// A callback is answered once its notifications are handed to the engine: 202 when they were
/// read (notifications that could not be are recorded and skipped), 400 when the body as a whole
/// is not notifications, and 204 to a legacy-format incoming-call notification, which is how the
/// platform is told to send it again in Graph's format.
final class GraphFeed: CallFeed {
    let name: String
    let path: String
    let authenticator: any CallbackAuthenticating
    let router: GraphOperationRouter
    let context: ProviderContext
    private let core: Locked<GraphFeedCore>
    /// How late a quiet period or the idle limit may be noticed: the timer loop looks this often
    /// rather than being woken by each callback, which would cost every callback a wake-up.
    static let tickInterval: Duration = .milliseconds(250)

    init(
        name: String, path: String, core: GraphFeedCore.Configuration, authenticator: any CallbackAuthenticating,
        router: GraphOperationRouter, context: ProviderContext
    ) {
        self.name = name
        self.path = path
        self.authenticator = authenticator
        self.router = router
        self.context = context
        self.core = Locked(GraphFeedCore(configuration: core))
    }

    func run(delivering sink: any CallUpdateSink) async throws {
        guard let ingress = context.ingress else {
            let detail = "no ingress is configured: the graph feed needs the daemon's 'ingress' section to receive notifications"
            sink.feedStateChanged(feed: name, up: false, detail: detail)
            throw GraphFeedError(message: detail)
        }
        let unroute = router.register(feed: name) { [self] message in
            let outputs = core.withLock { $0.receive(message, now: SystemClock().now()) }
            perform(outputs, sink: sink)
        }
        defer { unroute() }
        let registration = try ingress.register(
            IngressRoute(path: path, owner: "feed \(name)", authenticator: CallbackIngressAuthenticator(authenticator)) { [self] request in
                self.handle(request, sink: sink)
            })
        defer { registration.cancel() }
        sink.feedStateChanged(feed: name, up: true, detail: "taking notifications on \(path)")
        defer { sink.feedStateChanged(feed: name, up: false, detail: "stopped") }
        let clock = SystemClock()
        while !Task.isCancelled {
            let next = core.withLock { $0.nextDeadline }
            let wait = next.map { max(.milliseconds(1), $0.since(clock.now())) } ?? Self.tickInterval
            do { try await Task.sleep(for: min(wait, Self.tickInterval)) } catch { break }
            let now = clock.now()
            let outputs = core.withLock { $0.tick(now: now) }
            perform(outputs, sink: sink)
            let skipped = core.withLock { $0.takeSkippedCounts() }
            if !skipped.isEmpty {
                let counts = skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                context.report(.debug, "graph feed \(name): notifications it does not read, skipped: \(counts)", [.feed: name])
            }
        }
    }

    func handle(_ request: IngressRequest, sink: any CallUpdateSink) -> IngressResponse {
        let batch: GraphNotifications.Batch
        do {
            switch try GraphNotifications.parse(request.body) {
            case .notifications(let read): batch = read
            case .legacy:
                context.report(
                    .info, "graph feed \(name): a legacy-format notification answered 204, for the platform to send it in Graph's format",
                    [.feed: name, .reason: "legacy-format"])
                return IngressResponse(status: 204)
            }
        } catch {
            context.report(.warning, "graph callback refused: \(error.reason)", [.feed: name, .reason: "malformed"])
            return IngressResponse(status: 400, json: #"{"error":"not Graph call notifications"}"#)
        }
        let outputs = core.withLock { $0.receive(batch, now: SystemClock().now()) }
        perform(outputs, sink: sink)
        return IngressResponse(status: 202)
    }

    private func perform(_ outputs: [GraphFeedCore.Output], sink: any CallUpdateSink) {
        for output in outputs {
            switch output {
            case .deliver(let updates): sink.deliver(contentsOf: updates)
            case .report(let severity, let message, let fields): context.report(severity, message, fields)
            }
        }
    }
}

struct GraphFeedError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
