import MutewardenJSON
import MutewardenModel
import MutewardenWebSocket

/// A socket.io client: each ``connect(query:auth:)`` makes one session over one WebSocket
/// connection (`WebSocketConnection`), and nothing reconnects by itself.
///
/// Reconnecting is the caller's decision because only the caller knows what an end means for
/// it: ``SocketIOError/requiresLogin`` (HTTP 401, or a `44`) asks for a new login first, a
/// heartbeat timeout or a server disconnect for a plain retry after a backoff. With the shared
/// supervision:
///
/// ```swift
/// let client = try SocketIOClient(name: "voicenter", configuration: configuration, report: report)
/// await ConnectionSupervisor(name: "voicenter", onChange: status).run { handle in
///     let session = try await client.connect(query: [SocketIOQueryItem("token", login.token)])
///     handle.markUp()
///     try session.emit("resync", .object([("cache", .bool(false))]))
///     for await event in session {
///         switch event {
///         case .event(let message): feed(message.name, message.payload)
///         case .ack: break
///         case .ended(let end): throw SocketIOError.ended(end)  // requiresLogin: log in again first
///         }
///     }
/// }
/// ```
///
/// `connect` returns once the socket.io session is up (Engine.IO open, then CONNECT), or throws:
/// ``SocketIOError/authRefused(_:)`` for HTTP 401/403 or a `44`,
/// ``SocketIOError/versionRefused(_:status:)`` for HTTP 400 (after `auto` tried the other
/// version), ``SocketIOError/handshakeRefused(status:)``, ``SocketIOError/connectionFailed(_:)``
/// or ``SocketIOError/ended(_:)``.
public final class SocketIOClient: Sendable {
    public let name: String
    public let configuration: SocketIOConfiguration
    private let service: WebSocketService
    private let ownsService: Bool
    private let resolver: any HostResolver
    private let clock: any MonotonicClock
    private let report: @Sendable (String) -> Void
    /// With `auto`, the version the last handshake was accepted with.
    private let learned = Locked<EngineIOVersion?>(nil)

    /// - Parameters:
    ///   - service: the WebSocket service thread to run on; by default the client makes its own,
    ///     which ``shutdown()`` stops.
    ///   - report: operator messages (a version fallback, a skipped packet). Never given a
    ///     token, a header value or a packet's content.
    public init(
        name: String, configuration: SocketIOConfiguration, service: WebSocketService? = nil,
        resolver: any HostResolver = SystemResolver(), clock: any MonotonicClock = SystemClock(),
        report: @escaping @Sendable (String) -> Void
    ) throws {
        try configuration.validate()
        self.name = name
        self.configuration = configuration
        if let service {
            self.service = service
            ownsService = false
        } else {
            self.service = try WebSocketService(name: name, report: report)
            ownsService = true
        }
        self.resolver = resolver
        self.clock = clock
        self.report = report
    }

    /// The version the next handshake asks for.
    public var nextVersion: EngineIOVersion {
        switch configuration.version {
        case .v3: .v3
        case .v4: .v4
        case .auto: learned.withLock { $0 } ?? .v4
        }
    }

    /// Makes one session; see the type's documentation for what it throws.
    ///
    /// - Parameters:
    ///   - query: replaces the configuration's query items for this session (a new token).
    ///   - auth: replaces the configuration's CONNECT payload for this session.
    public func connect(query: [SocketIOQueryItem]? = nil, auth: JSONValue? = nil) async throws -> SocketIOSession {
        var configuration = self.configuration
        if let query { configuration.query = query }
        if let auth { configuration.auth = auth }
        var version = nextVersion
        var triedOther = false
        let connection: WebSocketConnection
        while true {
            do {
                connection = try await WebSocketConnection.open(
                    name: name, configuration: configuration.webSocket(for: version), service: service, resolver: resolver,
                    clock: clock, report: report)
                break
            } catch let error as WebSocketError {
                switch error.httpStatus {
                case 400?:
                    if self.configuration.version == .auto && !triedOther {
                        report(
                            "socket.io \(name): \(configuration.url) refused \(version) (HTTP 400); trying \(version.other)")
                        version = version.other
                        triedOther = true
                        continue
                    }
                    throw SocketIOError.versionRefused(version, status: 400)
                case let status? where status == 401 || status == 403:
                    throw SocketIOError.authRefused("the server refused the handshake with HTTP \(status)")
                case let status?:
                    throw SocketIOError.handshakeRefused(status: status)
                case nil:
                    if case .invalidConfiguration(let text) = error { throw SocketIOError.invalidConfiguration(text) }
                    throw SocketIOError.connectionFailed("\(error)")
                }
            }
        }
        if self.configuration.version == .auto { learned.withLock { $0 = version } }
        let machine = SocketIOStateMachine(
            configuration: SocketIOStateMachine.Configuration(
                version: version, namespace: configuration.namespace, auth: configuration.auth,
                handshakeTimeout: configuration.handshakeTimeout),
            transportUpAt: clock.now())
        let session = SocketIOSession(
            connection: connection, machine: machine, name: name, version: version, clock: clock, report: report)
        try await session.awaitConnected()
        return session
    }

    /// Stops the WebSocket service thread if the client made it. Sessions still open are closed.
    public func shutdown() async {
        if ownsService { await service.shutdown() }
    }
}

/// What a session delivers, in order: events and acks, then `ended` once, then nothing.
public enum SocketIOSessionEvent: Sendable, Hashable {
    case event(SocketIOMessage)
    /// The server acknowledged an emit made with ``SocketIOSession/emitWithAck(_:_:)``.
    case ack(id: Int, arguments: [JSONValue], connection: WebSocketConnectionID)
    case ended(SocketIOSessionEnd)
}

/// An event from the server, with the connection it came on.
public struct SocketIOMessage: Sendable, Hashable {
    public var connection: WebSocketConnectionID
    public var event: SocketIOEvent

    public init(connection: WebSocketConnectionID, event: SocketIOEvent) {
        self.connection = connection
        self.event = event
    }
    public var name: String { event.name }
    /// The first argument, which is what platforms send (`42["ExtensionEvent",{…}]`).
    public var payload: JSONValue { event.payload }
    public var arguments: [JSONValue] { event.arguments }
}

/// What is known of a session once it is connected.
public struct SocketIOSessionInfo: Sendable, Hashable {
    public var connection: WebSocketConnectionID
    /// The socket.io session id (v4), or the Engine.IO one (v3). Not a secret, but not a useful
    /// log field either: the connection id tells sessions apart.
    public var sid: String
    public var version: EngineIOVersion
    public var handshake: EngineIOHandshake
    /// The numeric address connected to.
    public var address: String
}

/// One connected socket.io session. Iterate it from one task (it is its own iterator, and not
/// `Sendable`); emit from anywhere through ``emitter``.
///
/// Frames are decoded and run through the state machine as the iterating task takes them, so a
/// consumer that falls behind slows the socket (the WebSocket's receive buffer fills and TCP
/// pushes back), not memory. The heartbeat's deadlines and v3's pings run on a timer task of
/// their own; a deadline does not pass while frames wait unread (the answer may be among them).
/// A v4 server's pings are answered as they are read: a consumer that stops reading for longer
/// than the server's `pingTimeout` is dropped by the server, so keep iterating.
public final class SocketIOSession: AsyncSequence, AsyncIteratorProtocol {
    public typealias Element = SocketIOSessionEvent
    public typealias Failure = Never

    public private(set) var info: SocketIOSessionInfo
    /// Emits, acknowledges and closes this session from any task.
    public let emitter: SocketIOEmitter
    private let core: SessionCore
    private var iterator: WebSocketEvents.AsyncIterator
    private var finished = false

    init(
        connection: WebSocketConnection, machine: SocketIOStateMachine, name: String, version: EngineIOVersion,
        clock: any MonotonicClock, report: @escaping @Sendable (String) -> Void
    ) {
        core = SessionCore(connection: connection, machine: machine, name: name, clock: clock, report: report)
        emitter = SocketIOEmitter(core: core)
        iterator = connection.events.makeAsyncIterator()
        info = SocketIOSessionInfo(
            connection: connection.id, sid: "", version: version,
            handshake: EngineIOHandshake(sid: "", pingInterval: .zero, pingTimeout: .zero), address: connection.info.address)
    }

    deinit {
        core.abandon()
    }

    /// Reads until the socket.io CONNECT; throws how the session ended if it ended first.
    func awaitConnected(isolation actor: isolated (any Actor)? = #isolation) async throws {
        core.rescheduleTimer()
        while true {
            switch await step(isolation: actor) {
            case .connected(let sid, let handshake)?:
                info.sid = sid
                info.handshake = handshake
                return
            case .ended(let end)?:
                if case .connectRefused = end { throw SocketIOError.authRefused("\(end)") }
                throw SocketIOError.ended(end)
            case .delivered?, nil:
                // Nothing is delivered before CONNECT (the machine skips it), and nil only
                // follows an end.
                continue
            }
        }
    }

    public func makeAsyncIterator() -> SocketIOSession { self }

    public func next() async -> SocketIOSessionEvent? {
        await next(isolation: nil)
    }

    /// The next event; nil after `.ended`.
    public func next(isolation actor: isolated (any Actor)?) async -> SocketIOSessionEvent? {
        while true {
            switch await step(isolation: actor) {
            case .delivered(let event)?: return event
            case .ended(let end)?: return .ended(end)
            case .connected?: continue
            case nil: return nil
            }
        }
    }

    private enum Step {
        case connected(sid: String, handshake: EngineIOHandshake)
        case delivered(SocketIOSessionEvent)
        case ended(SocketIOSessionEnd)
    }

    /// Takes WebSocket events until one means something to the consumer.
    private func step(isolation actor: isolated (any Actor)?) async -> Step? {
        guard !finished else { return nil }
        while true {
            guard let event = await iterator.next(isolation: actor) else {
                finished = true
                return .ended(core.transportClosed(reason: "the connection ended"))
            }
            let action: SocketIOStateMachine.Action
            switch event {
            case .connected:
                continue
            case .text(let text):
                action = core.receive(text: text)
            case .binary(let bytes):
                action = core.receive(binaryByteCount: bytes.count)
            case .disconnected(_, let reason):
                finished = true
                return .ended(core.transportClosed(reason: reason))
            }
            switch core.perform(action) {
            case .connected(let sid, let handshake):
                return .connected(sid: sid, handshake: handshake)
            case .event(let event):
                return .delivered(.event(SocketIOMessage(connection: info.connection, event: event)))
            case .ack(let id, let arguments):
                return .delivered(.ack(id: id, arguments: arguments, connection: info.connection))
            default:
                continue
            }
        }
    }

    /// Emits `name` with `arguments` (`42["name",…]`).
    public func emit(_ name: String, _ arguments: JSONValue...) throws(SocketIOError) {
        try emitter.emit(name, arguments)
    }

    /// Emits and asks for an acknowledgement; returns the ack id that `.ack` will carry.
    public func emitWithAck(_ name: String, _ arguments: JSONValue...) throws(SocketIOError) -> Int {
        try emitter.emitWithAck(name, arguments)
    }

    /// Sends a socket.io DISCONNECT, closes the connection and waits for it to close. The
    /// iteration then ends with `.ended(.closedByClient)`.
    public func close() async {
        await emitter.close()
    }
}

/// Emits on one session from any task. After the session ends, every call throws
/// ``SocketIOError/notConnected``: an emit meant for a session never goes out on the next one.
public struct SocketIOEmitter: Sendable {
    fileprivate let core: SessionCore

    public var connection: WebSocketConnectionID { core.connection.id }

    public func emit(_ name: String, _ arguments: [JSONValue]) throws(SocketIOError) {
        _ = try core.emit(name, arguments, wantsAck: false)
    }

    public func emitWithAck(_ name: String, _ arguments: [JSONValue]) throws(SocketIOError) -> Int {
        // An ack id is always given when asked for.
        try core.emit(name, arguments, wantsAck: true) ?? 0
    }

    /// Answers an event the server sent with an ack id.
    public func acknowledge(id: Int, _ arguments: [JSONValue]) throws(SocketIOError) {
        try core.acknowledge(id: id, arguments)
    }

    public func close() async {
        await core.close()
    }
}

/// The state a session shares between the iterating task, its timer and its emitters.
final class SessionCore: Sendable {
    let connection: WebSocketConnection
    private let name: String
    private let clock: any MonotonicClock
    private let report: @Sendable (String) -> Void
    private let state: Locked<State>

    private struct State {
        var machine: SocketIOStateMachine
        var scheduled: MonotonicInstant?
        var generation: UInt64 = 0
        var timer: Task<Void, Never>?
    }

    init(
        connection: WebSocketConnection, machine: SocketIOStateMachine, name: String, clock: any MonotonicClock,
        report: @escaping @Sendable (String) -> Void
    ) {
        self.connection = connection
        self.name = name
        self.clock = clock
        self.report = report
        state = Locked(State(machine: machine))
    }

    func receive(text: String) -> SocketIOStateMachine.Action {
        let now = clock.now()
        return state.withLock { $0.machine.received(text: text, at: now) }
    }

    func receive(binaryByteCount count: Int) -> SocketIOStateMachine.Action {
        let now = clock.now()
        return state.withLock { $0.machine.received(binaryByteCount: count, at: now) }
    }

    func transportClosed(reason: String) -> SocketIOSessionEnd {
        let (end, timer) = state.withLock { state in
            defer {
                state.timer = nil
                state.scheduled = nil
            }
            return (state.machine.transportClosed(reason: reason), state.timer)
        }
        timer?.cancel()
        return end
    }

    /// Carries out what the machine asked for; returns what is for the consumer.
    @discardableResult
    func perform(_ action: SocketIOStateMachine.Action) -> SocketIOStateMachine.Action {
        switch action {
        case .none, .connected, .event, .ack:
            break
        case .send(let frame):
            // A failure means the connection is ending, which the iteration reports.
            try? connection.send(text: frame)
        case .skip(let skipped):
            report("socket.io \(name) \(connection.id): skipped \(skipped); the connection stays up")
        case .close(let goodbye, let end):
            for frame in goodbye { try? connection.send(text: frame) }
            if case .heartbeatTimeout = end {
                // The server is not answering: a close handshake would only wait for nothing.
                connection.abort(reason: "\(end)")
            } else {
                connection.requestClose()
            }
        }
        rescheduleTimer()
        return action
    }

    func emit(_ name: String, _ arguments: [JSONValue], wantsAck: Bool) throws(SocketIOError) -> Int? {
        // `withLock` rethrows untyped: the typed error crosses it as a value.
        let (frame, ackID) = try state.withLock { state in
            Result { () throws(SocketIOError) in try state.machine.emit(name, arguments, wantsAck: wantsAck) }
        }.get()
        try send(frame)
        return ackID
    }

    func acknowledge(id: Int, _ arguments: [JSONValue]) throws(SocketIOError) {
        let frame = try state.withLock { state in
            Result { () throws(SocketIOError) in try state.machine.acknowledge(id: id, arguments: arguments) }
        }.get()
        try send(frame)
    }

    private func send(_ frame: String) throws(SocketIOError) {
        do {
            try connection.send(text: frame)
        } catch WebSocketError.sendQueueFull {
            throw .sendQueueFull
        } catch {
            throw .notConnected
        }
    }

    func close() async {
        perform(state.withLock { $0.machine.close() })
        await connection.close()
    }

    /// The session object was dropped: nothing will read the connection again.
    func abandon() {
        let timer = state.withLock { state in
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
        connection.requestClose()
    }

    /// Keeps one timer task sleeping until the machine's next deadline. A timer that wakes for a
    /// deadline since replaced (its generation is old) does nothing.
    func rescheduleTimer() {
        let (stale, plan) = state.withLock { state -> (Task<Void, Never>?, (MonotonicInstant, UInt64)?) in
            let deadline = state.machine.nextDeadline
            guard deadline != state.scheduled else { return (nil, nil) }
            state.scheduled = deadline
            state.generation &+= 1
            defer { state.timer = nil }
            return (state.timer, deadline.map { ($0, state.generation) })
        }
        // Cancelled outside the lock: cancelling resumes the sleeping task's continuation.
        stale?.cancel()
        guard let (deadline, generation) = plan else { return }
        let clock = self.clock
        let task = Task { [weak self] in
            let delay = deadline.since(clock.now())
            if delay > .zero {
                do { try await Task.sleep(for: delay) } catch { return }
            }
            self?.timerFired(generation)
        }
        let orphaned = state.withLock { state in
            guard state.generation == generation else { return true }
            state.timer = task
            return false
        }
        if orphaned { task.cancel() }
    }

    private func timerFired(_ generation: UInt64) {
        let now = clock.now()
        let action = state.withLock { state -> SocketIOStateMachine.Action? in
            guard state.generation == generation else { return nil }
            state.scheduled = nil
            state.timer = nil
            return state.machine.timerFired(at: now, unreadFrames: connection.hasUnreadEvents)
        }
        guard let action else { return }
        perform(action)
    }
}
