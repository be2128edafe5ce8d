import MutewardenBayeux
import MutewardenBayeuxWebSocket
import MutewardenProviderKit
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenSupervisor
import MutewardenWebSocket
import Synchronization

/// The GWS call feed: CometD on `/v2/me/calls`, mapped to normalized updates, with a resync from
/// `GET /api/v2/me/calls` after every (re)handshake.
public final class GWSFeed: CallFeed {
    public let name: String
    let session: GWSSession
    let settings: GWSSettings
    let context: ProviderContext
    /// Unknown notification types are logged once each: a new GWS version must not flood the log.
    private let reportedTypes = Locked<Set<String>>([])
    /// A notification was skipped (too large, malformed): the call list is fetched again once
    /// its batch is handed on, so that a capture it carried is not lost.
    private let resyncWanted = Atomic<Bool>(false)

    /// The feed's own share of the connections to GWS: its long polls and resyncs never wait
    /// behind the voice API's requests.
    var budget: HTTPBudget { HTTPBudget(name: "genesys feed \(name)", maxConnections: settings.maxConnections) }

    init(name: String, session: GWSSession, settings: GWSSettings, context: ProviderContext) {
        self.name = name
        self.session = session
        self.settings = settings
        self.context = context
    }

    public func run(delivering sink: any CallUpdateSink) async throws {
        let reporter = FeedStatusReporter(feed: name, sink: sink)
        let gathered = GatheredUpdates()
        var configuration = BayeuxClient.Configuration(channels: settings.channels)
        configuration.reconnect = settings.reconnect
        let webSocket = try makeWebSocketTransport(sink: sink)
        let transport: any BayeuxTransport =
            webSocket ?? GWSLongPollingTransport(session: session, path: settings.cometdPath, budget: budget)
        var callbacks = BayeuxClient.Callbacks(
            event: { [self] event in handle(event, into: gathered) },
            batchEnded: { [self] in
                sink.deliver(contentsOf: gathered.take())
                if resyncWanted.exchange(false, ordering: .relaxed) {
                    Task(executorPreference: sink.taskExecutor) { await self.resync(sink: sink) }
                }
            },
            readyForMore: { await sink.awaitCapacity() },
            subscribed: { [self] in await resync(sink: sink) },
            authenticationFailed: { [self] in
                do {
                    try await session.login()
                } catch {
                    context.report(.error, "feed \(name): \(error)", [.feed: name, .result: "login-failed"])
                }
            },
            status: { status in reporter.report(status) })
        callbacks.warning = { [name, context] message in
            context.report(.warning, "feed \(name): \(message)", [.feed: name, .result: "advice-clamped"])
        }
        let client = BayeuxClient(configuration: configuration, transport: transport, callbacks: callbacks)
        try? await session.login()
        await client.run()
        await webSocket?.shutdown()
    }

    /// The WebSocket transport, when configured: the CometD endpoint at `ws(s)://` with the
    /// session's credentials and cookie on every upgrade.
    private func makeWebSocketTransport(sink: any CallUpdateSink) throws -> BayeuxWebSocketTransport? {
        guard settings.transport == .websocket else { return nil }
        let scheme = settings.baseURL.hasPrefix("https://") ? "wss://" : "ws://"
        let rest = settings.baseURL.drop(while: { $0 != "/" }).dropFirst(2)
        let url = try WebSocketURL(scheme + rest + settings.cometdPath)
        return try BayeuxWebSocketTransport(
            name: "genesys \(name)",
            configuration: BayeuxWebSocketTransport.Configuration(
                url: url, tls: settings.tls, connectTimeout: settings.connectTimeout),
            headers: { [session] in session.upgradeHeaders() },
            readyForMore: { await sink.awaitCapacity() },
            executor: sink.taskExecutor,
            report: { [context, name] message in context.report(.info, "feed \(name): \(message)", [.feed: name]) })
    }

    func handle(_ event: BayeuxEvent, into gathered: GatheredUpdates) {
        // Only a message from a large answer or frame can be too large: the rest are not measured.
        if event.envelopeBytes > settings.maximumMessageBytes, event.data.isLarger(than: settings.maximumMessageBytes) {
            skipped(event, because: "a notification larger than max_message_size (\(settings.maximumMessageBytes) bytes)")
            return
        }
        do {
            switch try GWSCallEvents.map(notification: event.data, feed: name) {
            case .update(let update, let notificationType):
                if !GWSCallEvents.knownNotificationTypes.contains(notificationType) { reportOnce(notificationType) }
                gathered.append(update)
            case .ignored:
                break
            }
        } catch {
            // A malformed message is skipped; the feed stays up.
            skipped(event, because: "\(error)")
        }
    }

    /// Nothing is skipped silently: the record names the call where the message says which, and
    /// the call list is fetched again after the batch, so a capture the message carried still
    /// opens its window.
    private func skipped(_ event: BayeuxEvent, because reason: String) {
        let call = event.data["call"]?["id"]?.string.map { String($0.prefix(128)) }
        var fields: AuditFields = [.feed: name, .result: "skipped", .reason: "resync"]
        if let call { fields[.call] = call }
        context.report(
            .warning,
            "feed \(name)" + (call.map { ", call \($0)" } ?? "") + ": skipped, and the call list is fetched again so that "
                + "a capture it carried is not lost: \(reason)",
            fields)
        resyncWanted.store(true, ordering: .relaxed)
    }

    private func reportOnce(_ notificationType: String) {
        let first = reportedTypes.withLock { $0.insert(notificationType).inserted }
        if first {
            context.report(
                .notice, "feed \(name): unknown notificationType \(notificationType); its call state is still applied",
                [.feed: name, .reason: notificationType])
        }
    }

    /// After a (re)handshake events may have been missed: fetch the current calls and reconcile.
    func resync(sink: any CallUpdateSink) async {
        do {
            let response = try await session.send(.get, "/api/v2/me/calls", budget: budget)
            guard response.isSuccess else { throw GWSError.malformedAnswer("HTTP \(response.status) to GET /api/v2/me/calls") }
            let body = try JSONValue.parse(response.body)
            let listing = GWSCallEvents.mapCallList(body, feed: name, agentExtension: settings.agentExtension)
            guard listing.statusCode == 0 || listing.statusCode == nil, body["calls"]?.array != nil else {
                throw GWSError.malformedAnswer("no calls array (statusCode \(listing.statusCode.map(String.init) ?? "none"))")
            }
            for skipped in listing.skipped {
                context.report(.warning, "feed \(name): resync: \(skipped); skipped", [.feed: name, .result: "skipped"])
            }
            sink.resync(feed: name, current: listing.calls)
        } catch {
            context.report(
                .error,
                "feed \(name): resync failed: \(error); calls that ended while the feed was down stay tracked "
                    + "until their next event or the idle limit", [.feed: name, .result: "resync-failed"])
        }
    }
}

/// The updates of the answer or frame being read, handed to the sink as one batch when it ends.
/// Bayeux delivers one batch at a time per thread; should two threads ever interleave (a pushed
/// frame while a reply is read), the lock keeps arrival order, and whoever ends first takes both.
final class GatheredUpdates: Sendable {
    private let updates = Locked<[CallUpdate]>([])

    func append(_ update: CallUpdate) { updates.withLock { $0.append(update) } }

    func take() -> [CallUpdate] {
        updates.withLock { updates in
            defer { updates.removeAll(keepingCapacity: true) }
            return updates
        }
    }
}
