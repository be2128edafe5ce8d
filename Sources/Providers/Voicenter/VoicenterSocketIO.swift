import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenSocketIO
import MutewardenWebSocket
import Synchronization

/// The voicenter feed's socket.io client: each connection is one `SocketIOClient` session on a
/// WebSocket service thread of its own, stopped when the session ends. Connections are rare (a
/// reconnect after a failure), so a thread each costs nothing that matters and no lws context
/// outlives the connection it served.
public final class SocketIOVoicenterConnector: VoicenterSocketConnector {
    /// With `auto`, the Engine.IO version each server accepted last: a reconnect asks that one
    /// first instead of being refused the other again.
    private let learned = Locked<[String: EngineIOVersion]>([:])

    public init() {}

    public func connect(
        _ request: VoicenterSocketRequest, report: @escaping @Sendable (String) -> Void
    ) async throws -> any VoicenterSocketSession {
        let version: SocketIOVersionChoice
        switch request.version {
        case .v3: version = .v3
        case .v4: version = .v4
        case .auto:
            version = learned.withLock { $0[request.serverURL] }.map { $0 == .v3 ? .v3 : .v4 } ?? .auto
        }
        let configuration = try SocketIOConfiguration(
            url: request.serverURL, query: [SocketIOQueryItem("token", request.token.reveal())], tls: request.tls,
            version: version, connectTimeout: request.connectTimeout, handshakeTimeout: request.connectTimeout)
        let client = try SocketIOClient(name: "voicenter", configuration: configuration, report: report)
        do {
            let session = try await client.connect()
            if request.version == .auto { learned.withLock { $0[request.serverURL] = session.info.version } }
            return SocketIOVoicenterSession(session: session, client: client)
        } catch let error as SocketIOError {
            await client.shutdown()
            if case .versionRefused = error { learned.withLock { $0[request.serverURL] = nil } }
            if error.requiresLogin { throw VoicenterSocketError.tokenRefused("\(error)") }
            throw error
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// One connected session as the feed reads it.
///
/// `@unchecked Sendable`: `session` (not `Sendable`) is touched only by ``nextBatch()``, which
/// the `VoicenterSocketSession` contract reserves to one reading task; `emit` and `close` go
/// through the session's `Sendable` emitter, and the rest is `Sendable` itself.
final class SocketIOVoicenterSession: VoicenterSocketSession, @unchecked Sendable {
    private let session: SocketIOSession
    private let emitter: SocketIOEmitter
    private let client: SocketIOClient
    private let stopped = Atomic<Bool>(false)

    init(session: SocketIOSession, client: SocketIOClient) {
        self.session = session
        emitter = session.emitter
        self.client = client
    }

    /// One event a call: the session decodes each frame as it is taken, so that a consumer that
    /// is behind holds the socket back, and a batch would only wait for frames not yet there.
    func nextBatch() async throws -> [VoicenterSocketMessage]? {
        while true {
            switch await session.next(isolation: nil) {
            case .event(let message)?:
                return [VoicenterSocketMessage(name: message.name, node: message.event.payloadNode)]
            case .ack?:
                continue
            case .ended(let end)?:
                await stop()
                switch end {
                case .closedByClient, .serverDisconnected, .engineClosed: return nil
                case .connectRefused: throw VoicenterSocketError.tokenRefused("\(end)")
                default: throw SocketIOError.ended(end)
                }
            case nil:
                await stop()
                return nil
            }
        }
    }

    func emit(_ event: String, _ data: JSONValue) throws {
        try emitter.emit(event, [data])
    }

    /// The reader then sees the session end, and stops the client's thread: stopping it here,
    /// under a reader still waiting, would leave that reader nothing to end on.
    func close() async {
        await emitter.close()
    }

    private func stop() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await client.shutdown()
    }
}
