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

    init(name: String, path: String, core: ACSFeedCore.Configuration, authenticator: any CallbackAuthenticating, context: ProviderContext) {
        self.name = name
        self.path = path
        self.authenticator = authenticator
        self.context = context
        self.core = Locked(ACSFeedCore(configuration: core))
    }

    func run(delivering sink: any CallUpdateSink) async throws {
        try await CallbackFeedLoop.run(
            feed: name, platform: "acs", path: path, ingress: context.ingress, authenticator: authenticator, sink: sink,
            handle: { [self] request in self.handle(request, sink: sink) }, nextDeadline: { core.withLock { $0.nextDeadline } },
            tick: { now in
                perform(core.withLock { $0.tick(now: now) }, sink: sink)
                if let counts = CallbackFeedLoop.skippedSummary(core.withLock { $0.takeSkippedCounts() }) {
                    context.report(.debug, "acs feed \(name): events it does not read, skipped: \(counts)", [.feed: name])
                }
            })
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
