import MutewardenBayeux
import MutewardenJSON
import MutewardenModel
import MutewardenSupervisor
import MutewardenWebSocket

/// Bayeux over one WebSocket connection per session (CometD's `websocket` connection type).
///
/// Unlike long-polling, replies do not come back as the answer to a request: the server writes
/// meta replies (matched here to the batch by `id`) and delivers events whenever it likes,
/// between `/meta/connect` replies. Those events are handed to the push handler the client gave
/// in ``open(push:)``, in the order they arrived, and always before a reply that came after them.
///
/// The connection lives exactly as long as a Bayeux session: when it drops, every exchange in
/// flight fails, the session ends, and the client's supervisor backs off and handshakes again on
/// a new connection (and the feed resyncs). The underlying ``WebSocketClient`` would reconnect by
/// itself; ``close()`` stops it, so that reconnection stays the Bayeux client's one decision.
public final class BayeuxWebSocketTransport: BayeuxTransport {
    public struct Configuration: Sendable {
        public var url: WebSocketURL
        public var tls: TLSOptions
        public var connectTimeout: Duration
        /// A larger frame closes the connection (1009); the session then starts again and resyncs.
        public var maximumMessageSize: Int
        public var pingInterval: Duration

        public init(
            url: WebSocketURL, tls: TLSOptions = TLSOptions(), connectTimeout: Duration = .seconds(10),
            maximumMessageSize: Int = 4 << 20, pingInterval: Duration = .seconds(20)
        ) {
            self.url = url
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.maximumMessageSize = maximumMessageSize
            self.pingInterval = pingInterval
        }
    }

    public let connectionType = "websocket"
    private let name: String
    private let configuration: Configuration
    /// Asked at every connection, so that a cookie set by a new login is the one sent.
    private let headers: @Sendable () async -> [WebSocketHeader]
    private let report: @Sendable (String) -> Void
    private let readyForMore: @Sendable () async -> Void
    private let executor: (any TaskExecutor)?
    private let service: WebSocketService
    private let state = Locked(State())

    private struct Pending {
        var waiting: Set<String>
        var replies: [JSONValue] = []
        /// The largest frame a reply came in: the bound `BayeuxMessages.byteCount` promises.
        var largestFrame = 0
        var continuation: CheckedContinuation<BayeuxMessages, any Error>
    }

    private struct State {
        var client: WebSocketClient?
        var reader: Task<Void, Never>?
        var connection: WebSocketConnectionID?
        /// Set once the connection is gone: why, for every exchange that comes after.
        var ended: String?
        var opening: CheckedContinuation<Void, any Error>?
        var push: (@Sendable (BayeuxMessages) -> Void)?
        var pending: [UInt64: Pending] = [:]
        var nextExchange: UInt64 = 0
    }

    /// - Parameters:
    ///   - headers: sent with every upgrade request (a session cookie, credentials).
    ///   - readyForMore: awaited after each frame. A consumer that is behind stops the reading
    ///     here; the WebSocket client's receive buffer then fills and it stops reading the socket,
    ///     so the backlog waits in the server (TCP flow control) rather than in this process.
    ///   - executor: where the reader runs, which is where pushed messages are parsed and handed
    ///     on (``CallUpdateSink/taskExecutor``); nil: anywhere.
    public init(
        name: String, configuration: Configuration, headers: @escaping @Sendable () async -> [WebSocketHeader] = { [] },
        readyForMore: @escaping @Sendable () async -> Void = {}, executor: (any TaskExecutor)? = nil,
        report: @escaping @Sendable (String) -> Void
    ) throws {
        self.name = name
        self.configuration = configuration
        self.headers = headers
        self.readyForMore = readyForMore
        self.executor = executor
        self.report = report
        service = try WebSocketService(name: name, report: report)
    }

    public func open(push: @escaping @Sendable (BayeuxMessages) -> Void) async throws {
        await close()
        let socketConfiguration = WebSocketConfiguration(
            url: configuration.url, headers: await headers(), tls: configuration.tls,
            pingInterval: configuration.pingInterval,
            // Silence is judged by the Bayeux client: a /meta/connect reply is due within the
            // advised timeout, which may well exceed any fixed idle limit here.
            idleTimeout: nil, connectTimeout: configuration.connectTimeout,
            maximumMessageSize: configuration.maximumMessageSize,
            // Only reached if the connection drops before close(): the session is over by then.
            reconnect: ReconnectPolicy(initialDelay: .seconds(30), maximumDelay: .seconds(30)))
        let client = try WebSocketClient(
            name: name, configuration: socketConfiguration, service: service, report: report,
            onStatus: { [weak self] status in
                // The client would retry by itself; a failed attempt ends this session instead, so
                // that the Bayeux client's backoff and re-handshake stay the one reconnection.
                if status.phase == .down { self?.end("the WebSocket is down: \(status.lastError ?? "no reason given")") }
            })
        state.withLock { state in
            state = State(nextExchange: state.nextExchange)
            state.client = client
            state.push = push
        }
        let reader = Task(executorPreference: executor) { [self] in
            for await event in client.events {
                handle(event)
                await readyForMore()
            }
            end("the WebSocket client closed")
        }
        state.withLock { $0.reader = reader }
        client.start()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let already = state.withLock { state -> String?? in
                    if state.connection != nil { return .some(nil) }
                    if let ended = state.ended { return .some(ended) }
                    state.opening = continuation
                    return nil
                }
                switch already {
                case .some(nil): continuation.resume()
                case .some(let reason?): continuation.resume(throwing: BayeuxFailure.connectionLost(reason))
                case nil: break
                }
            }
        } onCancel: {
            end("cancelled")
        }
    }

    public func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages {
        let ids = Set(batch.compactMap { $0["id"]?.string })
        let text = JSONValue.array(batch).serialized
        let exchange = state.withLock { state -> UInt64 in
            state.nextExchange += 1
            return state.nextExchange
        }
        let deadline = Task { [self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { fail(exchange, BayeuxFailure.connectionLost("no reply within \(timeout.compact)")) }
        }
        defer { deadline.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<BayeuxMessages, any Error>) in
                let ready = state.withLock { state -> Result<(WebSocketClient, WebSocketConnectionID), any Error> in
                    if let ended = state.ended { return .failure(BayeuxFailure.connectionLost(ended)) }
                    guard let client = state.client, let connection = state.connection else {
                        return .failure(BayeuxFailure.connectionLost("the WebSocket is not open"))
                    }
                    state.pending[exchange] = Pending(waiting: ids, continuation: continuation)
                    return .success((client, connection))
                }
                switch ready {
                case .failure(let error):
                    continuation.resume(throwing: error)
                case .success(let (client, connection)):
                    do {
                        try client.send(text: text, on: connection)
                        // A batch without ids (none of ours) can expect no reply to match.
                        if ids.isEmpty { finish(exchange) }
                    } catch {
                        fail(exchange, BayeuxFailure.connectionLost("\(error)"))
                    }
                }
            }
        } onCancel: {
            fail(exchange, CancellationError())
        }
    }

    public func close() async {
        let (client, reader) = state.withLock { state in (state.client, state.reader) }
        end("the session ended")
        await client?.close()
        await reader?.value
    }

    /// Stops the service thread: for when the feed itself stops.
    public func shutdown() async {
        await close()
        await service.shutdown()
    }

    // MARK: Incoming

    private func handle(_ event: WebSocketEvent) {
        switch event {
        case .connected(let info):
            let opening = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard state.ended == nil, state.connection == nil else { return nil }
                state.connection = info.id
                defer { state.opening = nil }
                return state.opening
            }
            opening?.resume()
        case .text(let text):
            receive(text)
        case .binary:
            report("bayeux \(name): a binary WebSocket frame; Bayeux is JSON text, skipped")
        case .disconnected(_, let reason):
            end("the WebSocket closed: \(reason)")
        }
    }

    private func receive(_ text: String) {
        let messages: [JSONValue]
        do {
            let value = try JSONValue.parse(Array(text.utf8))
            // CometD servers send arrays; a lone object is accepted as a batch of one.
            if let array = value.array {
                messages = array
            } else if case .object = value {
                messages = [value]
            } else {
                throw BayeuxFailure.malformedReply("neither a message nor an array of messages")
            }
        } catch {
            // A frame that is not JSON cannot be matched to anything: skipped, the session goes on.
            report("bayeux \(name): a WebSocket frame that is not Bayeux JSON (\(error)); skipped")
            return
        }
        let frameBytes = text.utf8.count
        var pushed: [JSONValue] = []
        var completed: [(CheckedContinuation<BayeuxMessages, any Error>, BayeuxMessages)] = []
        let push = state.withLock { state -> (@Sendable (BayeuxMessages) -> Void)? in
            for message in messages {
                guard let id = message["id"]?.string, message["channel"]?.string?.hasPrefix("/meta/") == true,
                    let key = state.pending.first(where: { $0.value.waiting.contains(id) })?.key
                else {
                    pushed.append(message)
                    continue
                }
                state.pending[key]!.waiting.remove(id)
                state.pending[key]!.replies.append(message)
                state.pending[key]!.largestFrame = max(state.pending[key]!.largestFrame, frameBytes)
                if state.pending[key]!.waiting.isEmpty, let done = state.pending.removeValue(forKey: key) {
                    completed.append((done.continuation, BayeuxMessages(done.replies, byteCount: done.largestFrame)))
                }
            }
            return state.push
        }
        // Events first: the server wrote them before any reply that followed them in this frame.
        if !pushed.isEmpty { push?(BayeuxMessages(pushed, byteCount: frameBytes)) }
        for (continuation, replies) in completed { continuation.resume(returning: replies) }
    }

    private func finish(_ exchange: UInt64) {
        guard let done = state.withLock({ $0.pending.removeValue(forKey: exchange) }) else { return }
        done.continuation.resume(returning: BayeuxMessages(done.replies, byteCount: done.largestFrame))
    }

    private func fail(_ exchange: UInt64, _ error: any Error) {
        guard let done = state.withLock({ $0.pending.removeValue(forKey: exchange) }) else { return }
        done.continuation.resume(throwing: error)
    }

    /// The connection is over: everything waiting on it fails with `reason`.
    private func end(_ reason: String) {
        let (opening, pending) = state.withLock { state in
            if state.ended == nil { state.ended = reason }
            defer {
                state.opening = nil
                state.pending = [:]
                state.push = nil
            }
            return (state.opening, Array(state.pending.values))
        }
        opening?.resume(throwing: BayeuxFailure.connectionLost(reason))
        for waiting in pending { waiting.continuation.resume(throwing: BayeuxFailure.connectionLost(reason)) }
    }
}
