import CLibWebSockets
import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel
import Synchronization

/// One libwebsockets context and the one thread that services it.
///
/// libwebsockets is not thread-safe, except for `lws_cancel_service`. So every lws call happens on
/// this service thread; other threads append a ``Command`` to the inbox and call
/// `lws_cancel_service`, which wakes the thread with `LWS_CALLBACK_EVENT_WAIT_CANCELLED`, where it
/// drains the inbox. Results go back through each connection's ``ConnectionSink``.
///
/// Any number of clients may share one service (one thread for all the daemon's WebSocket feeds);
/// a client without one creates its own. Nothing slow ever runs on the service thread: names are
/// resolved before a connection is handed in, and every lws call it makes is non-blocking.
public final class WebSocketService: Sendable {
    public let name: String
    private let inbox: ServiceInbox
    private let finished: ServiceCompletion
    /// Passes of the service loop so far: each is one wake-up of its thread. An idle service
    /// makes none (the tests hold it to that: a timer armed for "now" once made it spin).
    public var passes: UInt64 { passCounter.value.load(ordering: .relaxed) }
    private let passCounter: PassCounter

    /// Starts the thread and creates the context on it. Throws when lws cannot create a context.
    public init(name: String = "websocket", report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.name = name
        LWSLogging.configureOnce()
        let inbox = ServiceInbox()
        let finished = ServiceCompletion()
        let started = Locked<Result<Void, WebSocketError>?>(nil)
        let startedSignal = DispatchSemaphore(value: 0)
        let passes = PassCounter()
        let thread = Thread {
            mw_set_thread_name("mw-lws-\(name)")
            ServiceLoop.run(inbox: inbox, report: report, passes: passes) { result in
                started.withLock { $0 = result }
                startedSignal.signal()
            }
            finished.finish()
        }
        thread.start()
        // Context creation takes milliseconds; the service is unusable without it.
        startedSignal.wait()
        if case .failure(let error) = started.withLock({ $0 })! { throw error }
        self.inbox = inbox
        self.finished = finished
        passCounter = passes
    }

    /// Hands a command to the service thread. False once the service has stopped: the caller
    /// then settles whatever was waiting for an answer.
    @discardableResult
    func submit(_ command: Command) -> Bool { inbox.post(command).accepted }

    /// Closes every connection still open (close frame 1000), waits for the close handshakes (each
    /// bounded by its close timeout), then stops the thread and destroys the context.
    public func shutdown(timeout: Duration = .seconds(5)) async {
        guard inbox.post(.stop).accepted else {
            await finished.wait()
            return
        }
        let inbox = self.inbox
        let force = Task {
            try await Task.sleep(for: timeout)
            inbox.post(.forceStop)
        }
        await finished.wait()
        force.cancel()
    }

    public var isRunning: Bool { !finished.isFinished }
}

/// Work handed to the service thread.
enum Command: Sendable {
    case connect(ConnectRequest)
    case send(WebSocketConnectionID, OutgoingMessage)
    /// A clean close: close frame with `code`, then wait for the peer's answer.
    case close(WebSocketConnectionID, code: UInt16)
    /// Give up on a connection now, without a close handshake, for `reason`.
    case abort(WebSocketConnectionID, reason: String)
    /// The consumer caught up: read from the socket again.
    case resumeReading(WebSocketConnectionID)
    case stop
    case forceStop
}

enum OutgoingMessage: Sendable {
    case text([UInt8])
    case binary([UInt8])
    var count: Int {
        switch self {
        case .text(let bytes), .binary(let bytes): bytes.count
        }
    }
}

/// One connection attempt to one numeric address, with everything the service thread needs.
struct ConnectRequest: Sendable {
    let id: WebSocketConnectionID
    let address: String
    let port: Int
    let secure: Bool
    let tls: TLSOptions
    let hostHeader: String
    let target: String
    let origin: String?
    let subprotocols: [String]
    let headers: [WebSocketHeader]
    let pingInterval: Duration?
    let pongTimeout: Duration
    let idleTimeout: Duration?
    let closeTimeout: Duration
    let maximumMessageSize: Int
    let sink: ConnectionSink
}

/// How a connection ended, in an operator's words, never with a secret in it.
struct ConnectionEnd: Sendable {
    var reason: String
    /// Ended by a close this side asked for (shutdown), not by a failure.
    var requested: Bool
    /// Failed before any HTTP answer (refused, unreachable, TLS): another address may do better.
    var beforeHTTPResponse: Bool
    /// The status of an upgrade the server answered with something else than 101: protocols
    /// read it (a socket.io server says 400 for a version it does not speak, 401 for a token it
    /// refuses).
    var httpStatus: Int? = nil
}

/// The service thread's view of whoever waits on a connection. Every method is called on the
/// service thread; `ended` exactly once per connection.
protocol ConnectionSink: Sendable {
    /// The upgrade succeeded; `.connected` follows as the first event of the first batch.
    func established(_ info: WebSocketConnectionInfo)
    /// Events in order, a batch per service pass; true when the consumer is so far behind that
    /// reading should stop.
    func deliver(_ events: [WebSocketEvent]) -> Bool
    /// The consumer caught up while the pause was being applied: read again at once.
    func drainedWhilePausing() -> Bool
    var readingPaused: Bool { get }
    func sent(bytes: Int)
    func ended(_ end: ConnectionEnd)
}

/// The queue into the service thread. Its wake-up is the one lws call other threads may make,
/// `lws_cancel_service`, which the thread answers with `LWS_CALLBACK_EVENT_WAIT_CANCELLED`, where
/// it drains the queue. The wake-up is attached once the context exists (commands posted before
/// are drained right after) and runs under the mailbox's lock; the thread releases the mailbox
/// before it destroys the context, so a wake-up can never reach a destroyed context.
typealias ServiceInbox = Mailbox<Command>

extension Mailbox where Element == Command {
    convenience init() { self.init(waking: .underLock) }

    /// Service thread, once the context exists.
    func attach(_ context: OpaquePointer) {
        let context = ServiceContext(pointer: context)
        attachWake { lws_cancel_service(context.pointer) }
    }
}

/// The context pointer, for `lws_cancel_service` only. `@unchecked Sendable` is sound because that
/// call is documented as safe from any thread, and it is made only as ``ServiceInbox``'s wake-up:
/// under the inbox's lock (``MailboxWaking/underLock``) and never after ``Mailbox/release()``,
/// which the service thread calls before `lws_context_destroy`.
private struct ServiceContext: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Signals the end of the service thread to any number of waiters.
final class ServiceCompletion: Sendable {
    private struct State {
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    var isFinished: Bool { state.withLock { $0.finished } }

    func finish() {
        let waiters = state.withLock { state in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// lws logs through its own global, unsynchronised setting: set it once, before any context.
/// Off by default (everything that matters reaches the report through callbacks);
/// `MUTEWARDEN_LWS_LOG=<lws level bits>` turns lws's own stderr log on for debugging.
enum LWSLogging {
    private static let configured: Void = {
        let level = ProcessInfo.processInfo.environment["MUTEWARDEN_LWS_LOG"].flatMap { Int32($0) } ?? 0
        lws_set_log_level(level, nil)
    }()

    static func configureOnce() { _ = configured }
}

/// The callback lws calls for everything: finds the loop through the context's user pointer.
private func serviceCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let loop = lws_context_user(context) else { return 0 }
    return Unmanaged<ServiceLoop>.fromOpaque(loop).takeUnretainedValue().handle(wsi, reason, user, input, length)
}

/// The service loop's passes, shared by its thread and the service object.
final class PassCounter: Sendable {
    let value = Atomic<UInt64>(0)
}

/// Everything owned by the service thread: the context, its vhosts and every live connection.
///
/// It is created on the service thread, reached only from lws callbacks on that thread (through
/// the context's user pointer), and freed on it, so it is neither `Sendable` nor shared.
final class ServiceLoop {
    private let inbox: ServiceInbox
    private let report: @Sendable (String) -> Void
    private var context: OpaquePointer?
    private let protocols: UnsafePointer<lws_protocols>
    /// One vhost per TLS configuration (the client SSL_CTX is per vhost in lws 4.1).
    private var vhosts: [TLSOptions: OpaquePointer] = [:]
    private var connections: [UInt64: LiveConnection] = [:]
    /// Connections with events not yet handed over: handing them over once per service pass wakes
    /// the consumer once per socket read instead of once per message (a wake-up per message was
    /// most of the CPU time under load; docs/performance.md).
    private var withPending: [LiveConnection] = []
    private var stopping = false
    private var running = true
    private var writeBuffer: UnsafeMutableRawBufferPointer
    private let clock = SystemClock()
    private let pre = mw_lws_pre()

    private init(inbox: ServiceInbox, report: @escaping @Sendable (String) -> Void, protocols: UnsafePointer<lws_protocols>) {
        self.inbox = inbox
        self.report = report
        self.protocols = protocols
        writeBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit { writeBuffer.deallocate() }

    /// The body of the service thread.
    static func run(
        inbox: ServiceInbox, report: @escaping @Sendable (String) -> Void, passes: PassCounter,
        started: (Result<Void, WebSocketError>) -> Void
    ) {
        // 64 KiB chunks: large messages arrive in few callbacks; small ones are unaffected.
        guard let protocols = mw_ws_protocols_create(serviceCallback, 64 * 1024) else {
            started(.failure(.serviceUnavailable("out of memory")))
            return
        }
        let loop = ServiceLoop(inbox: inbox, report: report, protocols: protocols)
        let user = Unmanaged.passUnretained(loop).toOpaque()
        guard let context = mw_ws_context_create(protocols, user) else {
            mw_ws_protocols_free(protocols)
            for command in inbox.release() { loop.settleUnserved(command) }
            started(.failure(.serviceUnavailable("libwebsockets could not create a context")))
            return
        }
        loop.context = context
        // A vhost must exist before anything else: lws delivers EVENT_WAIT_CANCELLED to the
        // protocols of each vhost, so with none the inbox would never be drained.
        guard loop.vhost(for: TLSOptions()) != nil else {
            lws_context_destroy(context)
            mw_ws_protocols_free(protocols)
            for command in inbox.release() { loop.settleUnserved(command) }
            started(.failure(.serviceUnavailable("libwebsockets could not create a client vhost")))
            return
        }
        inbox.attach(context)
        started(.success(()))
        // Commands posted before `attach` had no wake-up: drain them now.
        loop.drainInbox()
        while loop.running {
            // The timeout is ignored since lws 3.2: lws_service sleeps until its next event,
            // timer or lws_cancel_service.
            if lws_service(context, 0) < 0 {
                report("ERROR: the libwebsockets service loop failed; its WebSocket connections stop")
                break
            }
            passes.value.add(1, ordering: .relaxed)
            loop.flushAll()
        }
        let leftovers = inbox.release()
        lws_context_destroy(context)
        loop.context = nil
        for connection in loop.connections.values {
            loop.finish(connection, reason: "the WebSocket service stopped")
        }
        for command in leftovers { loop.settleUnserved(command) }
        mw_ws_protocols_free(protocols)
    }

    /// A command that will never be served: answer whatever waits on it.
    private func settleUnserved(_ command: Command) {
        if case .connect(let request) = command {
            request.sink.ended(
                ConnectionEnd(
                    reason: "the WebSocket service stopped", requested: false,
                    beforeHTTPResponse: false))
        }
    }

    private func vhost(for tls: TLSOptions) -> OpaquePointer? {
        var key = tls
        key.insecure = false  // a per-connection flag, not part of the SSL_CTX
        if let vhost = vhosts[key] { return vhost }
        guard let context else { return nil }
        let vhost = mw_ws_vhost_create(
            context, protocols, "mw-\(vhosts.count)", key.caBundlePath, key.clientCertificatePath, key.clientKeyPath,
            key.clientKeyPassword)
        if let vhost { vhosts[key] = vhost }
        return vhost
    }

    // MARK: Commands

    private func drainInbox() {
        for command in inbox.take() {
            switch command {
            case .connect(let request):
                connect(request)
            case .send(let id, let message):
                guard let connection = connections[id.rawValue], connection.established, let wsi = connection.wsi else {
                    continue
                }
                connection.outgoing.append(message)
                lws_callback_on_writable(wsi)
            case .close(let id, let code):
                guard let connection = connections[id.rawValue] else { continue }
                requestClose(connection, code: code)
            case .abort(let id, let reason):
                guard let connection = connections[id.rawValue] else { continue }
                connection.endReason = connection.endReason ?? reason
                kill(connection)
            case .resumeReading(let id):
                guard let connection = connections[id.rawValue] else { continue }
                resumeReading(connection)
            case .stop:
                stopping = true
                for connection in connections.values { requestClose(connection, code: 1000) }
                if connections.isEmpty { running = false }
            case .forceStop:
                if !connections.isEmpty {
                    report("websocket service: \(connections.count) connection(s) had not closed in time; dropping them")
                }
                running = false
            }
        }
    }

    private func connect(_ request: ConnectRequest) {
        guard !stopping, let context else {
            settleUnserved(.connect(request))
            return
        }
        guard let vhost = vhost(for: request.tls) else {
            request.sink.ended(
                ConnectionEnd(
                    reason: "could not set up TLS (\(request.tls)): check that the files exist, are PEM and match",
                    requested: false, beforeHTTPResponse: false))
            return
        }
        let connection = LiveConnection(request: request, now: clock.now())
        connections[request.id.rawValue] = connection
        let subprotocols = request.subprotocols.isEmpty ? nil : request.subprotocols.joined(separator: ", ")
        // lws may call back (even with CLIENT_CONNECTION_ERROR) before this returns; the connection
        // is registered already, so those callbacks find it.
        let wsi = mw_ws_connect(
            context, vhost, request.address, Int32(request.port), request.secure ? 1 : 0,
            request.tls.insecure ? 1 : 0, request.target, request.hostHeader, request.origin, subprotocols,
            request.id.rawValue)
        if let current = connections[request.id.rawValue] {
            if let wsi {
                current.wsi = wsi
            } else {
                finish(current, reason: current.endReason ?? "libwebsockets could not start a connection to \(request.address)")
            }
        }
    }

    private func requestClose(_ connection: LiveConnection, code: UInt16) {
        guard connection.closeCode == nil else { return }
        connection.closeCode = code
        connection.requested = true
        guard connection.established, let wsi = connection.wsi else {
            connection.endReason = connection.endReason ?? "closed before the connection was up"
            kill(connection)
            return
        }
        connection.closeDeadline = clock.now() + connection.request.closeTimeout
        lws_callback_on_writable(wsi)
        scheduleTimer(connection)
    }

    /// Drops a connection without a close handshake: lws closes it on its next pass, and its
    /// CLOSED (or CONNECTION_ERROR) callback then reports `endReason`.
    private func kill(_ connection: LiveConnection) {
        guard let wsi = connection.wsi, !connection.killed else { return }
        connection.killed = true
        mw_ws_kill(wsi)
    }

    private func resumeReading(_ connection: LiveConnection) {
        guard connection.paused, let wsi = connection.wsi else { return }
        connection.paused = false
        lws_rx_flow_control(wsi, 1)
        // Nothing was read while paused, pongs included: time starts again from now.
        let now = clock.now()
        connection.lastReceived = now
        connection.pongDeadline = nil
        scheduleTimer(connection)
    }

    // MARK: Callbacks

    fileprivate func handle(
        _ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ length: Int
    ) -> Int32 {
        switch reason {
        case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
            // Only to remember why: returning 0 leaves OpenSSL's verdict as it is (lws returns a
            // failed verification as failed whatever we answer, and 0 means "no objection").
            if length == 0, let user, let connection = connection(wsi), connection.endReason == nil,
                let error = mw_ws_certificate_error(user)
            {
                connection.endReason =
                    "the server certificate of \(connection.request.hostHeader) did not verify: \(String(cString: error))"
            }
            return 0
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainInbox()
            return 0
        case LWS_CALLBACK_CLIENT_RECEIVE:
            guard let connection = connection(wsi) else { return -1 }
            return receive(connection, wsi, input, length)
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            guard let connection = connection(wsi) else { return -1 }
            return writeable(connection, wsi)
        case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
            guard let connection = connection(wsi) else { return -1 }
            connection.lastReceived = clock.now()
            connection.pongDeadline = nil
            return 0
        case LWS_CALLBACK_TIMER:
            guard let connection = connection(wsi) else { return 0 }
            return timer(connection, wsi)
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
            guard let connection = connection(wsi), let input else { return -1 }
            for header in connection.request.headers
            where mw_ws_append_header(wsi, input, length, header.name, header.value) != 0 {
                connection.endReason = "the request headers do not fit in the handshake buffer"
                return -1
            }
            return 0
        case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
            // The response headers are gone by ESTABLISHED; this is the last look at them.
            guard let connection = connection(wsi) else { return -1 }
            var buffer = [CChar](repeating: 0, count: 128)
            let length = lws_hdr_copy(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_PROTOCOL)
            if length > 0 {
                connection.subprotocol = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            return 0
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            guard let connection = connection(wsi) else { return -1 }
            established(connection, wsi)
            return 0
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if let connection = connection(wsi) {
                var code: UInt16?
                if let input, length >= 2 {
                    let bytes = input.assumingMemoryBound(to: UInt8.self)
                    code = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
                }
                connection.peerCloseCode = code ?? 1005
            }
            return 0  // lws answers the close frame, then closes
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            guard let connection = connection(wsi) else { return 0 }
            // The status of the server's answer, 0 when there was none: what tells a refused
            // upgrade (and which refusal) from a connection that failed.
            let status = Int(lws_http_client_http_response(wsi))
            let detail = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
            let refused = connection.endReason == nil && status != 0 && status != 101
            finish(
                connection, reason: connection.endReason ?? failureReason(connection, status: status, detail: detail),
                beforeHTTPResponse: connection.endReason == nil && status == 0, httpStatus: refused ? status : nil)
            return 0
        case LWS_CALLBACK_CLIENT_CLOSED:
            guard let connection = connection(wsi) else { return 0 }
            finish(connection, reason: closedReason(connection))
            return 0
        case LWS_CALLBACK_WSI_DESTROY:
            // The backstop: a connection lws tore down without CLOSED or CONNECTION_ERROR (killed
            // while connecting, or the context going away) still gets its answer.
            if let connection = connection(wsi) {
                finish(connection, reason: connection.endReason ?? closedReason(connection))
            }
            return 0
        default:
            return 0
        }
    }

    private func connection(_ wsi: OpaquePointer) -> LiveConnection? {
        let id = mw_ws_connection_id(wsi)
        return id == 0 ? nil : connections[id]
    }

    private func established(_ connection: LiveConnection, _ wsi: OpaquePointer) {
        connection.established = true
        connection.wsi = wsi
        let now = clock.now()
        connection.lastReceived = now
        if let interval = connection.request.pingInterval { connection.nextPing = now + interval }
        let info = WebSocketConnectionInfo(
            id: connection.request.id, subprotocol: connection.subprotocol, address: connection.request.address)
        connection.request.sink.established(info)
        queue(connection, .connected(info))
        if connection.request.sink.readingPaused { pause(connection, wsi) }
        if connection.closeCode != nil {
            // close() arrived while connecting.
            connection.closeDeadline = now + connection.request.closeTimeout
            lws_callback_on_writable(wsi)
        }
        scheduleTimer(connection)
    }

    private func receive(
        _ connection: LiveConnection, _ wsi: OpaquePointer, _ input: UnsafeMutableRawPointer?, _ length: Int
    ) -> Int32 {
        connection.lastReceived = clock.now()
        // After our close frame, lws may still deliver what was in flight; nobody wants it.
        guard connection.closeCode == nil else { return 0 }
        let chunk = UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : length)
        let first = lws_is_first_fragment(wsi) != 0
        let final = lws_is_final_fragment(wsi) != 0
        if first {
            connection.message.removeAll(keepingCapacity: connection.message.capacity <= 64 * 1024)
            connection.messageIsBinary = lws_frame_is_binary(wsi) != 0
        }
        let limit = connection.request.maximumMessageSize
        guard connection.message.count + chunk.count <= limit else {
            return protocolClose(
                connection, wsi, code: 1009,
                reason: "a message was larger than the \(Self.size(limit)) limit (closed with 1009)")
        }
        let event: WebSocketEvent
        if first && final {
            // The common case, one chunk: no copy into the assembly buffer.
            guard let message = makeEvent(binary: connection.messageIsBinary, bytes: chunk) else {
                return protocolClose(connection, wsi, code: 1007, reason: "a text message was not valid UTF-8 (closed with 1007)")
            }
            event = message
        } else {
            connection.message.append(contentsOf: chunk)
            guard final else { return 0 }
            let message = connection.message.withUnsafeBytes { makeEvent(binary: connection.messageIsBinary, bytes: $0) }
            connection.message.removeAll(keepingCapacity: connection.message.capacity <= 64 * 1024)
            guard let message else {
                return protocolClose(connection, wsi, code: 1007, reason: "a text message was not valid UTF-8 (closed with 1007)")
            }
            event = message
        }
        queue(connection, event)
        return 0
    }

    private func queue(_ connection: LiveConnection, _ event: WebSocketEvent) {
        if connection.pending.isEmpty { withPending.append(connection) }
        connection.pending.append(event)
        // A long pass (a large read of small messages) still hands over in bounded batches.
        if connection.pending.count >= 1024 { flush(connection) }
    }

    /// After each service pass: hand every connection's events to its consumer.
    fileprivate func flushAll() {
        guard !withPending.isEmpty else { return }
        for connection in withPending { flush(connection) }
        withPending.removeAll(keepingCapacity: true)
    }

    private func flush(_ connection: LiveConnection) {
        guard !connection.pending.isEmpty else { return }
        let batch = connection.pending
        connection.pending.removeAll(keepingCapacity: true)
        let behind = connection.request.sink.deliver(batch)
        if behind, !connection.paused, !connection.finished, let wsi = connection.wsi { pause(connection, wsi) }
    }

    private func makeEvent(binary: Bool, bytes: UnsafeRawBufferPointer) -> WebSocketEvent? {
        if binary { return .binary(Array(bytes)) }
        guard let text = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else { return nil }
        return .text(text)
    }

    private func pause(_ connection: LiveConnection, _ wsi: OpaquePointer) {
        connection.paused = true
        lws_rx_flow_control(wsi, 0)
        if connection.request.sink.drainedWhilePausing() { resumeReading(connection) }
    }

    /// Closes with `code` for a protocol violation by the peer, and remembers why.
    ///
    /// The close frame goes out from the next WRITEABLE rather than by returning -1 here: lws
    /// 4.1.6 corrupts its heap ("double free or corruption") when RECEIVE returns -1 with the rest
    /// of a large frame still buffered (found with a 10 MiB message). Until the close is written,
    /// the rest of the message is dropped unread by `receive`.
    private func protocolClose(_ connection: LiveConnection, _ wsi: OpaquePointer, code: UInt16, reason: String) -> Int32 {
        connection.endReason = connection.endReason ?? reason
        connection.closeCode = code
        connection.message = []
        connection.closeDeadline = clock.now() + connection.request.closeTimeout
        lws_callback_on_writable(wsi)
        scheduleTimer(connection)
        return 0
    }

    private func writeable(_ connection: LiveConnection, _ wsi: OpaquePointer) -> Int32 {
        if let code = connection.closeCode {
            let words = [1000: "bye", 1007: "invalid utf-8", 1009: "message too big"]
            var text = Array((words[Int(code)] ?? "closing").utf8)
            lws_close_reason(wsi, lws_close_status(rawValue: UInt32(code)), &text, text.count)
            return -1
        }
        if connection.pingDue {
            connection.pingDue = false
            guard write(wsi, bytes: [], LWS_WRITE_PING) else {
                connection.endReason = connection.endReason ?? "writing a ping failed"
                return -1
            }
            if connection.hasOutgoing { lws_callback_on_writable(wsi) }
            return 0
        }
        guard connection.hasOutgoing else { return 0 }
        // One write per WRITEABLE, as lws asks: a partial write is buffered by lws and finished
        // before the next WRITEABLE.
        let message = connection.outgoing[connection.outgoingHead]
        connection.outgoingHead += 1
        if connection.outgoingHead == connection.outgoing.count {
            connection.outgoing.removeAll(keepingCapacity: true)
            connection.outgoingHead = 0
        }
        let ok =
            switch message {
            case .text(let bytes): write(wsi, bytes: bytes, LWS_WRITE_TEXT)
            case .binary(let bytes): write(wsi, bytes: bytes, LWS_WRITE_BINARY)
            }
        connection.request.sink.sent(bytes: message.count)
        guard ok else {
            connection.endReason = connection.endReason ?? "writing a message failed"
            return -1
        }
        if connection.hasOutgoing { lws_callback_on_writable(wsi) }
        return 0
    }

    /// lws_write needs LWS_PRE writable bytes in front of the payload for the frame header.
    private func write(_ wsi: OpaquePointer, bytes: [UInt8], _ kind: lws_write_protocol) -> Bool {
        let needed = pre + bytes.count
        if writeBuffer.count < needed {
            writeBuffer.deallocate()
            writeBuffer = .allocate(byteCount: max(needed, writeBuffer.count * 2), alignment: 16)
        }
        let payload = writeBuffer.baseAddress!.advanced(by: pre)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { payload.copyMemory(from: base, byteCount: source.count) }
        }
        let written = lws_write(wsi, payload.assumingMemoryBound(to: UInt8.self), bytes.count, kind)
        return written >= bytes.count
    }

    private func timer(_ connection: LiveConnection, _ wsi: OpaquePointer) -> Int32 {
        let now = clock.now()
        if let deadline = connection.closeDeadline, now >= deadline {
            connection.endReason = connection.endReason ?? "the server did not answer the close frame"
            kill(connection)
            return 0
        }
        if connection.established && connection.closeCode == nil && !connection.paused {
            if let deadline = connection.pongDeadline, now >= deadline {
                connection.endReason = "no pong within \(connection.request.pongTimeout.compact) of a ping"
                kill(connection)
                return 0
            }
            if let idle = connection.request.idleTimeout, now.since(connection.lastReceived) >= idle {
                connection.endReason = "nothing received for \(idle.compact)"
                kill(connection)
                return 0
            }
        }
        if connection.established, connection.closeCode == nil, let interval = connection.request.pingInterval,
            let next = connection.nextPing, now >= next
        {
            // One ping in flight at a time: its deadline decides.
            if connection.pongDeadline == nil && !connection.paused {
                connection.pingDue = true
                connection.pongDeadline = now + connection.request.pongTimeout
                lws_callback_on_writable(wsi)
            }
            connection.nextPing = now + interval
        }
        scheduleTimer(connection)
        return 0
    }

    /// Arms the connection's one lws timer for its nearest deadline.
    private func scheduleTimer(_ connection: LiveConnection) {
        guard let wsi = connection.wsi, !connection.killed else { return }
        var deadlines: [MonotonicInstant] = []
        if let closeDeadline = connection.closeDeadline { deadlines.append(closeDeadline) }
        if connection.established && connection.closeCode == nil {
            if let nextPing = connection.nextPing { deadlines.append(nextPing) }
            if !connection.paused {
                if let pongDeadline = connection.pongDeadline { deadlines.append(pongDeadline) }
                if let idle = connection.request.idleTimeout { deadlines.append(connection.lastReceived + idle) }
            }
        }
        guard let next = deadlines.min() else {
            // Not LWS_SET_TIMER_USEC_CANCEL: lws 4.1.6 schedules -1 µs as "now", so a
            // connection with no deadline (socket.io's, whose heartbeat is Engine.IO's) had its
            // timer fire on every pass of the service loop, a whole core spent in poll(…, 0).
            // An hour away, re-armed here when it fires, is as good as none.
            lws_set_timer_usecs(wsi, 3_600_000_000)
            return
        }
        let micros = max(next.since(clock.now()).nanosecondsClamped / 1000, 1000)
        lws_set_timer_usecs(wsi, lws_usec_t(micros))
    }

    // MARK: Ending

    private func failureReason(_ connection: LiveConnection, status: Int, detail: String) -> String {
        let request = connection.request
        let peer = "\(request.address):\(request.port)"
        if status != 0 && status != 101 {
            return "the server refused the WebSocket upgrade with HTTP \(status)"
        }
        // lws's texts are short and fixed ("connect failed", "HS: ws upgrade response not 101",
        // TLS verification errors); quoted so that an operator can search for them.
        let text = detail.isEmpty ? "connection failed" : detail
        return "could not connect to \(peer) (\(request.hostHeader)): \(text)"
    }

    private func closedReason(_ connection: LiveConnection) -> String {
        if let reason = connection.endReason { return reason }
        if connection.requested { return "closed" }
        if let code = connection.peerCloseCode { return "the server closed the connection (code \(code))" }
        return connection.established ? "the connection was lost" : "the connection failed before the upgrade"
    }

    private func finish(_ connection: LiveConnection, reason: String, beforeHTTPResponse: Bool = false, httpStatus: Int? = nil) {
        guard connections.removeValue(forKey: connection.request.id.rawValue) != nil else { return }
        // Finished first, so that the flush cannot pause a wsi that lws is tearing down (or, after
        // the loop, one whose context is gone); its last messages go before its `.disconnected`.
        connection.finished = true
        flush(connection)
        // No lws call here: this may run inside WSI_DESTROY or context destruction. lws drops the
        // wsi's timer with the wsi, and a TIMER that still fires finds no connection.
        connection.request.sink.ended(
            ConnectionEnd(
                reason: reason,
                requested: connection.requested && connection.endReason == nil,
                beforeHTTPResponse: beforeHTTPResponse && !connection.established, httpStatus: httpStatus))
        if stopping && connections.isEmpty { running = false }
    }

    private static func size(_ bytes: Int) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes)-byte"
    }
}

/// The service thread's state for one connection.
private final class LiveConnection {
    let request: ConnectRequest
    var wsi: OpaquePointer?
    var established = false
    var killed = false
    var finished = false
    /// Received and not yet handed over; see `ServiceLoop.withPending`.
    var pending: [WebSocketEvent] = []
    /// Why this side ended the connection, when it did; reported instead of lws's words.
    var endReason: String?
    var requested = false
    var closeCode: UInt16?
    var closeDeadline: MonotonicInstant?
    var peerCloseCode: UInt16?
    var subprotocol: String?
    var message: [UInt8] = []
    var messageIsBinary = false
    /// A queue: `outgoing[outgoingHead...]` is still to be written.
    var outgoing: [OutgoingMessage] = []
    var outgoingHead = 0
    var hasOutgoing: Bool { outgoingHead < outgoing.count }
    var pingDue = false
    var nextPing: MonotonicInstant?
    var pongDeadline: MonotonicInstant?
    var lastReceived: MonotonicInstant
    var paused = false

    init(request: ConnectRequest, now: MonotonicInstant) {
        self.request = request
        lastReceived = now
    }
}
