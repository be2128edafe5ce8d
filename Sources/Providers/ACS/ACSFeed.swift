import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenIngress
import MutewardenModel
import MutewardenProviderKit

/// The `acs` feed: Call Automation's callbacks, taken by the daemon's ingress on the feed's path,
/// authenticated from their headers before their body is read, then read by ``ACSFeedCore``.
///
/// A callback is answered once its events are handed to the engine: 200 when they were read
/// (events that could not be are recorded and skipped), 400 when the body as a whole is not an
/// event batch. The platform retries a callback it could not deliver, so nothing is answered
/// before it is taken.
final class ACSFeed: CallFeed {
    let name: String
    let path: String
    let authenticator: any CallbackAuthenticating
    let context: ProviderContext
    private let core: Locked<ACSFeedCore>
    /// How late a quiet period or the idle limit may be noticed: the timer loop looks this often
    /// rather than being woken by each callback, which would cost every callback a wake-up.
    static let tickInterval: Duration = .milliseconds(250)

    init(name: String, path: String, core: ACSFeedCore.Configuration, authenticator: any CallbackAuthenticating, context: ProviderContext) {
        self.name = name
        self.path = path
        self.authenticator = authenticator
        self.context = context
        self.core = Locked(ACSFeedCore(configuration: core))
    }

    func run(delivering sink: any CallUpdateSink) async throws {
        guard let router = context.ingress else {
            let detail = "no ingress is configured: the acs feed needs the daemon's 'ingress' section to receive callbacks"
            sink.feedStateChanged(feed: name, up: false, detail: detail)
            throw ACSFeedError(message: detail)
        }
        let registration = try router.register(
            IngressRoute(path: path, owner: "feed \(name)", authenticator: CallbackIngressAuthenticator(authenticator)) { [self] request in
                self.handle(request, sink: sink)
            })
        defer { registration.cancel() }
        sink.feedStateChanged(feed: name, up: true, detail: "taking callbacks on \(path)")
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
                context.report(.debug, "acs feed \(name): events it does not read, skipped: \(counts)", [.feed: name])
            }
        }
    }

    func handle(_ request: IngressRequest, sink: any CallUpdateSink) -> IngressResponse {
        let batch: ACSEvents.Batch
        do {
            batch = try ACSEvents.parse(request.body)
        } catch {
            context.report(.warning, "acs callback refused: \(error.reason)", [.feed: name, .reason: "malformed"])
            return IngressResponse(status: 400, json: #"{"error":"not a Call Automation event batch"}"#)
        }
        let outputs = core.withLock { $0.receive(batch, now: SystemClock().now()) }
        perform(outputs, sink: sink)
        return IngressResponse(status: 200, json: "{}")
    }

    private func perform(_ outputs: [ACSFeedCore.Output], sink: any CallUpdateSink) {
        for output in outputs {
            switch output {
            case .deliver(let updates): sink.deliver(contentsOf: updates)
            case .report(let severity, let message, let fields): context.report(severity, message, fields)
            }
        }
    }
}

struct ACSFeedError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
