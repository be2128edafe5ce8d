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
        let unroute = router.register(feed: name) { [self] message in
            let outputs = core.withLock { $0.receive(message, now: SystemClock().now()) }
            perform(outputs, sink: sink)
        }
        defer { unroute() }
        try await CallbackFeedLoop.run(
            feed: name, platform: "graph", path: path, ingress: context.ingress, authenticator: authenticator, sink: sink,
            handle: { [self] request in self.handle(request, sink: sink) }, nextDeadline: { core.withLock { $0.nextDeadline } },
            tick: { now in
                perform(core.withLock { $0.tick(now: now) }, sink: sink)
                if let counts = CallbackFeedLoop.skippedSummary(core.withLock { $0.takeSkippedCounts() }) {
                    context.report(.debug, "graph feed \(name): notifications it does not read, skipped: \(counts)", [.feed: name])
                }
            })
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
