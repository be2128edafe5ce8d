import MutewardenModel
import MutewardenSupervisor
import Synchronization

/// A WebSocket connection that stays up: it connects, reconnects with backoff when the connection
/// fails or goes quiet, and delivers every message of every connection through ``events``.
///
/// ```swift
/// let client = try WebSocketClient(name: "voicenter", configuration: configuration, report: { print($0) })
/// client.start()
/// for await event in client.events {
///     switch event {
///     case .connected(let info): try client.send(text: "40", on: info.id)
///     case .text(let text): handle(text)
///     case .binary, .disconnected: break
///     }
/// }
/// // elsewhere, on shutdown:
/// await client.close()
/// ```
///
/// The lws work happens on a ``WebSocketService`` thread; this object only hands it commands, so
/// every method here returns at once and none blocks the caller. Call ``close()`` when done: the
/// client keeps itself alive (and reconnecting) until then.
///
/// Each attempt dials as a ``WebSocketConnection`` does (the same `Dialer`), and delivers into
/// this one stream. A protocol that owns its session and decides itself when to connect again
/// (socket.io, which must log in again after a refused token) uses ``WebSocketConnection``.
public final class WebSocketClient: Sendable {
    public let name: String
    public let configuration: WebSocketConfiguration
    /// Every event of every connection, in order; finishes after ``close()``.
    public let events: WebSocketEvents

    private let service: WebSocketService
    private let ownsService: Bool
    private let resolver: any HostResolver
    private let clock: any MonotonicClock
    private let randomSeed: UInt64
    private let report: @Sendable (String) -> Void
    private let onStatus: @Sendable (ConnectionStatus) -> Void
    private let redact: Redactor
    private let continuation: AsyncStream<[WebSocketEvent]>.Continuation
    private let flow: ReceiveFlow
    private let state: Locked<State>

    /// At most this much may wait to be written on one connection before `send` refuses more.
    public static let sendQueueLimit = 16 << 20

    private struct State {
        var status: ConnectionStatus?
        var started = false
        var closing = false
        var supervisor: Task<Void, Never>?
        var current: AttemptChannel?
    }

    /// - Parameters:
    ///   - service: the thread to run on; by default the client makes its own and stops it on close.
    ///   - resolver: how names become addresses, on a thread of their own (tests inject slow ones).
    ///   - report: operator messages (state changes, warnings). Never given a header value or token.
    ///   - onStatus: every change of ``status``, for a status line.
    public init(
        name: String, configuration: WebSocketConfiguration, service: WebSocketService? = nil,
        resolver: any HostResolver = SystemResolver(), clock: any MonotonicClock = SystemClock(),
        randomSeed: UInt64 = UInt64.random(in: 0...UInt64.max),
        report: @escaping @Sendable (String) -> Void,
        onStatus: @escaping @Sendable (ConnectionStatus) -> Void = { _ in }
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
        self.randomSeed = randomSeed
        self.report = report
        self.onStatus = onStatus
        redact = Redactor(secrets: configuration.secrets)
        let (stream, continuation) = AsyncStream<[WebSocketEvent]>.makeStream(bufferingPolicy: .unbounded)
        self.continuation = continuation
        flow = ReceiveFlow(limit: configuration.receiveBufferLimit)
        events = WebSocketEvents(stream: stream, flow: flow)
        state = Locked(State())
        flow.onResume { [weak self] in
            guard let self, let id = self.state.withLock({ $0.current?.id }) else { return }
            self.service.submit(.resumeReading(id))
        }
    }

    /// The connection's state now: connecting, up, down since when and why, or stopped; nil
    /// before ``start()``.
    public var status: ConnectionStatus? { state.withLock { $0.status } }

    /// A one-line summary for logs and a status line.
    public var statusLine: String {
        guard let status = self.status else { return "websocket \(name) \(configuration.url): not started" }
        let since = clock.now().since(status.since)
        return "websocket \(name) \(configuration.url): \(status.phase.rawValue) for \(since.compact)"
            + (status.phase == .up ? "" : status.lastError.map { ", last error: \($0)" } ?? "")
            + (status.consecutiveFailures > 0 ? ", \(status.consecutiveFailures) failed attempts" : "")
    }

    /// Starts connecting, and keeps reconnecting until ``close()``. Later calls do nothing.
    public func start() {
        let begin = state.withLock { state -> Bool in
            guard !state.started, !state.closing else { return false }
            state.started = true
            return true
        }
        guard begin else { return }
        report("websocket \(name): \(configuration)")
        Dialer(name: name, configuration: configuration, service: service, resolver: resolver, clock: clock, report: report)
            .warnIfInsecure()
        let supervisor = ConnectionSupervisor(
            name: name, policy: configuration.reconnect, clock: clock, randomSeed: randomSeed,
            onChange: { [weak self] status in self?.statusChanged(status) })
        let task = Task { [self] in
            await supervisor.run { handle in try await self.attempt(handle) }
        }
        state.withLock { $0.supervisor = task }
    }

    /// Starts, hands ``events`` to `body`, and closes when `body` returns or throws or the calling
    /// task is cancelled: the structured way to hold a client for as long as a feed runs.
    public func run<Result>(_ body: (WebSocketEvents) async throws -> Result) async rethrows -> Result {
        start()
        do {
            let result = try await withTaskCancellationHandler {
                try await body(events)
            } onCancel: {
                // Finishing the events lets `body` see the end; close() below does the rest.
                self.continuation.finish()
            }
            await close()
            return result
        } catch {
            await close()
            throw error
        }
    }

    /// Queues a text message for the connection that is up, or for `connection` only (so that a
    /// message meant for a connection that went down is not sent on the next one).
    public func send(text: String, on connection: WebSocketConnectionID? = nil) throws {
        try send(.text(Array(text.utf8)), on: connection)
    }

    public func send(binary: [UInt8], on connection: WebSocketConnectionID? = nil) throws {
        try send(.binary(binary), on: connection)
    }

    private func send(_ message: OutgoingMessage, on connection: WebSocketConnectionID?) throws {
        let channel = try state.withLock { state -> AttemptChannel in
            guard !state.closing else { throw WebSocketError.closed }
            guard let current = state.current, current.isUp, connection == nil || connection == current.id else {
                throw WebSocketError.notConnected
            }
            return current
        }
        try channel.reserve(bytes: message.count, limit: Self.sendQueueLimit)
        guard service.submit(.send(channel.id, message)) else {
            channel.sent(bytes: message.count)
            throw WebSocketError.closed
        }
    }

    /// Closes the connection cleanly (close frame 1000, bounded by `closeTimeout`), stops
    /// reconnecting, finishes ``events``, and stops the service thread if the client made it.
    public func close() async {
        let (task, current, first) = state.withLock { state in
            let first = !state.closing
            state.closing = true
            return (state.supervisor, state.current, first)
        }
        if first, let current { service.submit(.close(current.id, code: 1000)) }
        task?.cancel()
        await task?.value
        continuation.finish()
        if ownsService { await service.shutdown() }
    }

    // MARK: Connecting

    private func statusChanged(_ status: ConnectionStatus) {
        state.withLock { $0.status = status }
        let line = "websocket \(name): \(status)"
        report(status.phase == .up ? line + " (\(configuration.url))" : line)
        onStatus(status)
    }

    /// One connection, from name resolution to its end. Returns when it ended because of close();
    /// throws (with the reason) when it failed or was lost, for the supervisor to back off.
    private func attempt(_ handle: ConnectionHandle) async throws {
        if state.withLock({ $0.closing }) { throw CancellationError() }
        let dialer = Dialer(
            name: name, configuration: configuration, service: service, resolver: resolver, clock: clock, report: report)
        let channel: AttemptChannel
        do {
            channel = try await dialer.dial(
                { [continuation, flow, redact] id in
                    AttemptChannel(
                        id: id, events: continuation, flow: flow, redact: redact, onUp: { handle.markUp() })
                },
                adopt: { channel in
                    let closing = state.withLock { state -> Bool in
                        if !state.closing { state.current = channel }
                        return state.closing
                    }
                    if closing { throw CancellationError() }
                })
        } catch {
            forget()
            throw error
        }
        let service = self.service
        // As in `dial`: cancellation asks for a clean close, whose answer ends the wait.
        let end = await withTaskCancellationHandler {
            await channel.waitForEnd()
        } onCancel: {
            service.submit(.close(channel.id, code: 1000))
        }
        forget(channel)
        if end.requested { return }
        throw dialer.error(for: end)
    }

    /// The connection that just ended is no longer the one to send on.
    private func forget(_ channel: AttemptChannel? = nil) {
        state.withLock { state in
            if channel == nil || state.current === channel { state.current = nil }
        }
    }
}

/// One connection as the client sees it: the service thread reports into it (``ConnectionSink``)
/// and the attempt task waits on it.
final class AttemptChannel: ConnectionSink {
    let id: WebSocketConnectionID
    let redact: Redactor
    /// The events of this connection alone, for a ``WebSocketConnection``; nil when the channel
    /// delivers into a ``WebSocketClient``'s events, shared by all its connections.
    let ownEvents: WebSocketEvents?
    private let events: AsyncStream<[WebSocketEvent]>.Continuation
    private let flow: ReceiveFlow
    private let onUp: @Sendable () -> Void
    private let state = Locked(State())
    private let queuedBytes = Atomic<Int>(0)

    private struct State {
        var up = false
        var info: WebSocketConnectionInfo?
        var end: ConnectionEnd?
        var waiters: [CheckedContinuation<ConnectionEnd, Never>] = []
        var upWaiter: CheckedContinuation<ConnectionEnd?, Never>?
    }

    init(
        id: WebSocketConnectionID, events: AsyncStream<[WebSocketEvent]>.Continuation, flow: ReceiveFlow,
        redact: Redactor, onUp: @escaping @Sendable () -> Void
    ) {
        self.id = id
        self.redact = redact
        self.events = events
        self.flow = flow
        self.onUp = onUp
        ownEvents = nil
    }

    /// A channel with events of its own, which end after its `.disconnected`.
    init(ownStreamFor id: WebSocketConnectionID, limit: Int, service: WebSocketService, redact: Redactor) {
        let (stream, continuation) = AsyncStream<[WebSocketEvent]>.makeStream(bufferingPolicy: .unbounded)
        let flow = ReceiveFlow(limit: limit)
        flow.onResume { [weak service] in service?.submit(.resumeReading(id)) }
        self.id = id
        self.redact = redact
        events = continuation
        self.flow = flow
        onUp = {}
        ownEvents = WebSocketEvents(stream: stream, flow: flow)
    }

    var info: WebSocketConnectionInfo? { state.withLock { $0.info } }
    var hasEnded: Bool { state.withLock { $0.end != nil } }
    var hasUnreadEvents: Bool { flow.bufferedBytes > 0 || flow.isPaused }

    var isUp: Bool { state.withLock { $0.up && $0.end == nil } }

    func reserve(bytes: Int, limit: Int) throws {
        let total = queuedBytes.add(bytes, ordering: .relaxed).newValue
        if total > limit && total != bytes {
            queuedBytes.subtract(bytes, ordering: .relaxed)
            throw WebSocketError.sendQueueFull
        }
    }

    func waitForEnd() async -> ConnectionEnd {
        await withCheckedContinuation { continuation in
            let end = state.withLock { state -> ConnectionEnd? in
                if let end = state.end { return end }
                state.waiters.append(continuation)
                return nil
            }
            if let end { continuation.resume(returning: end) }
        }
    }

    /// Nil once the connection is up; its end if it ended before. One waiter at a time (the
    /// attempt that made it).
    func waitUntilUp() async -> ConnectionEnd? {
        await withCheckedContinuation { continuation in
            let settled = state.withLock { state -> ConnectionEnd?? in
                if let end = state.end { return .some(end) }
                if state.up { return .some(nil) }
                state.upWaiter = continuation
                return nil
            }
            if let settled { continuation.resume(returning: settled) }
        }
    }

    // MARK: ConnectionSink (service thread)

    func established(_ info: WebSocketConnectionInfo) {
        let waiter = state.withLock { state in
            state.up = true
            state.info = info
            defer { state.upWaiter = nil }
            return state.upWaiter
        }
        onUp()
        waiter?.resume(returning: nil)
    }

    func deliver(_ batch: [WebSocketEvent]) -> Bool {
        var size = 0
        for event in batch { size += event.bufferedSize }
        events.yield(batch)
        return flow.delivered(size)
    }

    func drainedWhilePausing() -> Bool { flow.drainedWhilePausing() }

    var readingPaused: Bool { flow.isPaused }

    func sent(bytes: Int) { queuedBytes.subtract(bytes, ordering: .relaxed) }

    func ended(_ end: ConnectionEnd) {
        let (waiters, upWaiter, wasUp) = state.withLock { state in
            state.end = end
            defer {
                state.waiters = []
                state.upWaiter = nil
            }
            return (state.waiters, state.upWaiter, state.up)
        }
        if wasUp { events.yield([.disconnected(id, reason: redact(end.reason))]) }
        if ownEvents != nil { events.finish() }
        upWaiter?.resume(returning: end)
        for waiter in waiters { waiter.resume(returning: end) }
    }
}
