import CLibWebSockets
import CMutewardenShims
import Foundation
import Synchronization

/// The platform side of a run, on one libwebsockets context served by one thread: the GWS REST API
/// and the CometD endpoint, over long-polling and WebSocket, on one port of 127.0.0.1.
///
/// lws is not thread-safe (only `lws_cancel_service` may be called from elsewhere), so this object
/// is created on the service thread, reached only from lws callbacks on that thread through the
/// context's user pointer, and freed there. Other threads talk to it through `Outbox`,
/// `ConfirmationQueue` and `ServerStatus`.
final class GWSServer {
    struct Settings: Sendable {
        var cometdPath = "/api/v2/notifications"
        var authorization: String
        var callList: [UInt8]
        /// How long a `/meta/connect` is held when there is nothing to deliver (the advice timeout).
        var connectHold: Int64 = 10_000_000_000
        /// At most this many events in one long-poll reply or WebSocket frame: the daemon refuses
        /// replies of more than 10,000 messages or 4 MiB.
        var eventsPerReply = 2_000
    }

    final class Connection {
        let id: UInt64
        let wsi: OpaquePointer
        var isWebSocket = false
        var isPost = false
        var path = ""
        var cookie: String?
        var csrfToken: String?
        var authorization: String?
        var body: [UInt8] = []
        var response: Response?
        var headWritten = false
        /// A long-polling `/meta/connect` waiting for events: the client and the connect's id.
        var heldPoll: (clientID: String, messageID: String?, deadline: Int64)?
        // WebSocket.
        var incoming: [UInt8] = []
        var frames: [[UInt8]] = []
        var clientID: String?

        init(id: UInt64, wsi: OpaquePointer) {
            self.id = id
            self.wsi = wsi
        }
    }

    struct Response {
        var status: UInt32
        var headers: [(String, String)] = []
        var body: [UInt8]
        var edges: [(WindowEdge, Int64)] = []
    }

    final class Client {
        let id: String
        var subscribed = false
        var pending: [EventChunk] = []
        var pendingEvents = 0
        var webSocket: UInt64?
        /// A WebSocket `/meta/connect` held until its deadline, as CometD does; events go out in
        /// their own frames meanwhile.
        var heldWebSocketConnect: (messageID: String?, deadline: Int64)?

        init(id: String) { self.id = id }
    }

    let settings: Settings
    let outbox: Outbox
    let confirmations: ConfirmationQueue
    let status: ServerStatus
    private(set) var context: OpaquePointer?
    private var connections: [UInt64: Connection] = [:]
    private var nextConnectionID: UInt64 = 1
    var clients: [String: Client] = [:]
    var nextClientNumber = 0
    private var sessions: [String: String] = [:]
    var ledger = Ledger()
    var counters = ServerStatus.Counters()
    private var writeBuffer: UnsafeMutableRawBufferPointer
    private let pre = mw_lws_pre()

    private init(settings: Settings, outbox: Outbox, confirmations: ConfirmationQueue, status: ServerStatus) {
        self.settings = settings
        self.outbox = outbox
        self.confirmations = confirmations
        self.status = status
        writeBuffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit { writeBuffer.deallocate() }

    /// Starts the service thread; returns the port once the server listens (nil if it cannot).
    static func start(settings: Settings, outbox: Outbox, confirmations: ConfirmationQueue, status: ServerStatus)
        -> (Thread, Int)?
    {
        let started = Mutex<Int?>(nil)
        let thread = Thread {
            run(settings: settings, outbox: outbox, confirmations: confirmations, status: status) { port in
                started.withLock { $0 = port }
            }
        }
        thread.name = "loadgen-lws"
        thread.start()
        while true {
            if let port = started.withLock({ $0 }) { return port > 0 ? (thread, port) : nil }
            usleep(1000)
        }
    }

    private static func run(
        settings: Settings, outbox: Outbox, confirmations: ConfirmationQueue, status: ServerStatus,
        started: (Int) -> Void
    ) {
        // lws's own log is a global setting: errors only (1), before the context exists.
        lws_set_log_level(1, nil)
        guard let protocols = mw_ws_protocols_create(serverCallback, 256 * 1024) else { return started(-1) }
        let server = GWSServer(settings: settings, outbox: outbox, confirmations: confirmations, status: status)
        guard let context = mw_lws_server_context_create(protocols, 0, Unmanaged.passUnretained(server).toOpaque())
        else {
            mw_ws_protocols_free(protocols)
            return started(-1)
        }
        server.context = context
        guard let vhost = lws_get_vhost_by_name(context, "default") else {
            lws_context_destroy(context)
            mw_ws_protocols_free(protocols)
            return started(-1)
        }
        let port = Int(lws_get_vhost_listen_port(vhost))
        server.counters.port = port
        outbox.attach(ServiceWaker(context: context))
        started(port)
        while !status.stopRequested.load(ordering: .acquiring) {
            if lws_service(context, 0) < 0 { break }
            // The main thread reads these while it waits for the daemon and between phases.
            server.publishCounters()
        }
        outbox.detach()
        status.final.withLock {
            $0 = ServerStatus.Final(
                counts: server.ledger.counts, latency: LatencySummary(nanoseconds: server.ledger.latencies),
                latencyFromGeneration: LatencySummary(nanoseconds: server.ledger.latenciesFromGeneration))
        }
        server.publishCounters()
        lws_context_destroy(context)
        server.context = nil
        mw_ws_protocols_free(protocols)
    }

    private func publishCounters() {
        let snapshot = counters
        status.counters.withLock { $0 = snapshot }
    }

    // MARK: - Callbacks

    func handle(
        _ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ length: Int
    ) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            takeEvents()
            return 0
        case LWS_CALLBACK_HTTP:
            return httpRequest(connection(for: wsi), uri: input, length: length)
        case LWS_CALLBACK_HTTP_BODY:
            if let input { connection(for: wsi).body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length)) }
            return 0
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            return httpBodyComplete(connection(for: wsi))
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return httpWritable(connection(for: wsi))
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            let connection = connection(for: wsi)
            readCredentials(connection)
            counters.webSocketUpgrades += 1
            let path = header(wsi, WSI_TOKEN_GET_URI) ?? ""
            guard path == settings.cometdPath else { return 1 }
            if connection.cookie?.contains("JSESSIONID=") == true, connection.authorization == settings.authorization {
                counters.webSocketUpgradesWithCredentials += 1
            }
            return 0
        case LWS_CALLBACK_ESTABLISHED:
            connection(for: wsi).isWebSocket = true
            return 0
        case LWS_CALLBACK_RECEIVE:
            return webSocketReceive(connection(for: wsi), input, length)
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return webSocketWritable(connection(for: wsi))
        case LWS_CALLBACK_CLOSED, LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_WSI_DESTROY:
            forget(wsi)
            return 0
        default:
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
    }

    func connection(for wsi: OpaquePointer) -> Connection {
        let raw = lws_get_opaque_user_data(wsi)
        if let raw, let existing = connections[UInt64(UInt(bitPattern: raw))] { return existing }
        let id = nextConnectionID
        nextConnectionID += 1
        let connection = Connection(id: id, wsi: wsi)
        connections[id] = connection
        lws_set_opaque_user_data(wsi, UnsafeMutableRawPointer(bitPattern: UInt(id)))
        return connection
    }

    private func forget(_ wsi: OpaquePointer) {
        guard let raw = lws_get_opaque_user_data(wsi) else { return }
        let id = UInt64(UInt(bitPattern: raw))
        lws_set_opaque_user_data(wsi, nil)
        guard let connection = connections.removeValue(forKey: id) else { return }
        if let clientID = connection.clientID, let client = clients[clientID], client.webSocket == id {
            client.webSocket = nil
        }
    }

    func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = Int(lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token))
        guard copied >= 0 else { return nil }
        return String(decoding: buffer.prefix(copied).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func customHeader(_ wsi: OpaquePointer, _ name: String) -> String? {
        let length = Int(lws_hdr_custom_length(wsi, name, Int32(name.utf8.count)))
        guard length > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = Int(lws_hdr_custom_copy(wsi, &buffer, Int32(buffer.count), name, Int32(name.utf8.count)))
        guard copied >= 0 else { return nil }
        return String(decoding: buffer.prefix(copied).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func readCredentials(_ connection: Connection) {
        connection.cookie = header(connection.wsi, WSI_TOKEN_HTTP_COOKIE)
        connection.authorization = header(connection.wsi, WSI_TOKEN_HTTP_AUTHORIZATION)
        connection.csrfToken = customHeader(connection.wsi, "x-csrf-token:")
    }

    /// The JSESSIONID of a Cookie header, if the server issued it.
    func session(of connection: Connection) -> String? {
        guard let cookie = connection.cookie else { return nil }
        for part in cookie.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.hasPrefix("JSESSIONID=") {
                let id = String(pair.dropFirst("JSESSIONID=".count))
                return sessions[id] != nil ? id : nil
            }
        }
        return nil
    }

    func newSession() -> (id: String, token: String) {
        let id = hex(Int.random(in: 0..<Int.max), digits: 16) + hex(sessions.count, digits: 8)
        let token = hex(Int.random(in: 0..<Int.max), digits: 16)
        sessions[id] = token
        return (id, token)
    }

    func csrfToken(session: String) -> String? { sessions[session] }

    // MARK: - Writing

    /// Copies `bytes` behind LWS_PRE padding and writes them.
    func write(_ wsi: OpaquePointer, _ bytes: UnsafeRawBufferPointer, _ kind: lws_write_protocol) -> Bool {
        let needed = pre + bytes.count
        if writeBuffer.count < needed {
            writeBuffer.deallocate()
            writeBuffer = .allocate(byteCount: max(needed, writeBuffer.count * 2), alignment: 16)
        }
        let payload = writeBuffer.baseAddress!.advanced(by: pre)
        if let base = bytes.baseAddress { payload.copyMemory(from: base, byteCount: bytes.count) }
        return lws_write(wsi, payload.assumingMemoryBound(to: UInt8.self), bytes.count, kind) >= bytes.count
    }

    func respond(_ connection: Connection, _ response: Response) {
        connection.response = response
        connection.headWritten = false
        lws_callback_on_writable(connection.wsi)
    }

    /// The head in one writable callback, the body in the next: lws wants one write per callback.
    private func httpWritable(_ connection: Connection) -> Int32 {
        if connection.response == nil, connection.heldPoll != nil {
            connection.response = pollReply(connection)
            connection.heldPoll = nil
            connection.headWritten = false
        }
        guard let response = connection.response else { return 0 }
        if !connection.headWritten {
            let names = response.headers.map { strdup($0.0) }
            let values = response.headers.map { strdup($0.1) }
            defer {
                names.forEach { free($0) }
                values.forEach { free($0) }
            }
            let failed = names.map { UnsafePointer($0) }.withUnsafeBufferPointer { namePointers in
                values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                    mw_lws_http_write_head(
                        connection.wsi, response.status, "application/json;charset=UTF-8", response.body.count,
                        namePointers.baseAddress, valuePointers.baseAddress, Int32(response.headers.count))
                }
            }
            if failed != 0 { return -1 }
            connection.headWritten = true
            lws_callback_on_writable(connection.wsi)
            return 0
        }
        let written = response.body.withUnsafeBytes { write(connection.wsi, $0, LWS_WRITE_HTTP_FINAL) }
        if !response.edges.isEmpty {
            let now = monotonicNanoseconds()
            ledger.measuring = status.measuring.load(ordering: .relaxed)
            for (edge, generatedAt) in response.edges { ledger.stamp(edge, writtenAt: now, generatedAt: generatedAt) }
        }
        connection.response = nil
        guard written else { return -1 }
        return lws_http_transaction_completed(connection.wsi) != 0 ? -1 : 0
    }

    // MARK: - Events from the generator

    private func takeEvents() {
        let chunks = outbox.drain()
        let now = monotonicNanoseconds()
        let subscribers = clients.values.filter(\.subscribed)
        for chunk in chunks {
            if subscribers.isEmpty { counters.eventsDropped += chunk.count }
            for client in subscribers {
                client.pending.append(chunk)
                client.pendingEvents += chunk.count
                counters.maximumBacklog = max(counters.maximumBacklog, client.pendingEvents)
            }
        }
        for connection in connections.values {
            if let held = connection.heldPoll, let client = clients[held.clientID] {
                if client.pendingEvents > 0 || now >= held.deadline { lws_callback_on_writable(connection.wsi) }
            }
        }
        for client in subscribers {
            guard let socket = client.webSocket, let connection = connections[socket] else { continue }
            if let held = client.heldWebSocketConnect, now >= held.deadline {
                client.heldWebSocketConnect = nil
                connection.frames.append(Array("[\(connectReply(client: client.id, messageID: held.messageID))]".utf8))
            }
            if client.pendingEvents > 0 || !connection.frames.isEmpty { lws_callback_on_writable(connection.wsi) }
        }
    }

    /// Takes up to `eventsPerReply` pending events of a client as "m1,m2,..." and their edges.
    func takePending(_ client: Client) -> (bytes: [UInt8], count: Int, edges: [(WindowEdge, Int64)]) {
        var bytes: [UInt8] = []
        var count = 0
        var edges: [(WindowEdge, Int64)] = []
        var taken = 0
        for chunk in client.pending {
            if count > 0 && count + chunk.count > settings.eventsPerReply { break }
            if count > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: chunk.bytes)
            count += chunk.count
            for edge in chunk.edges { edges.append((edge, chunk.generatedAt)) }
            taken += 1
        }
        client.pending.removeFirst(taken)
        client.pendingEvents -= count
        counters.eventsWritten += count
        return (bytes, count, edges)
    }
}

/// The callback lws calls for everything: finds the server through the context's user pointer.
private func serverCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let server = lws_context_user(context) else { return 0 }
    return Unmanaged<GWSServer>.fromOpaque(server).takeUnretainedValue().handle(wsi, reason, user, input, length)
}
