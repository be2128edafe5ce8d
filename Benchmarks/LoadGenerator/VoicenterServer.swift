import CLibWebSockets
import CMutewardenShims
import Foundation
import Synchronization

/// The platform side of a Voicenter run, on one libwebsockets context served by one thread, on one
/// port of 127.0.0.1: the Real-Time API's REST login and refresh (`VoicenterRoutes`), its
/// socket.io server over WebSocket (`VoicenterSocketIO`), and the monitor server's
/// `MuteUnmuteCalls`.
///
/// As with `GWSServer`, lws is not thread-safe: this object is created, used and freed on the
/// service thread only, reached from lws callbacks through the context's user pointer. Other
/// threads talk to it through the outbox, `ConfirmationQueue`, `SnapshotRequests` and
/// `ServerStatus`.
final class VoicenterServer {
    struct Settings: Sendable {
        var loginPath = "/monitorAPI"
        var socketPath = "/socket.io/"
        var mutePath = "/api/MuteUnmuteCalls"
        /// The account's monitor token, which `POST {login}/Login/Token` takes.
        var accountToken: String
        /// The socket tokens' life (`TokenExpiry`), in seconds: long enough that no run refreshes
        /// unless asked to (`--token-life`).
        var tokenLife = 3600
        /// Engine.IO heartbeat, milliseconds: the defaults of socket.io 2 and 4 for the interval;
        /// the timeout is v4's 20 s on both, since a v3 client on a loaded host can be late by
        /// more than v3's 5 s and the run is not about heartbeats.
        var pingInterval = 25_000
        var pingTimeout = 20_000
    }

    final class Connection {
        let id: UInt64
        let wsi: OpaquePointer
        var isPost = false
        var path = ""
        var query: [String: String] = [:]
        var authorization: String?
        var body: [UInt8] = []
        var response: Response?
        var headWritten = false
        var incoming: [UInt8] = []
        /// The Engine.IO session of an upgraded connection.
        var session: Session?

        init(id: UInt64, wsi: OpaquePointer) {
            self.id = id
            self.wsi = wsi
        }
    }

    struct Response {
        var status: UInt32
        var body: [UInt8]
    }

    let settings: Settings
    let outbox: ChunkOutbox<FrameChunk>
    let confirmations: ConfirmationQueue
    let snapshots: SnapshotRequests
    let status: ServerStatus
    private(set) var context: OpaquePointer?
    var connections: [UInt64: Connection] = [:]
    private var nextConnectionID: UInt64 = 1
    /// Socket tokens and refresh tokens issued, with their expiry (wall-clock seconds).
    var tokens: [String: Int] = [:]
    var refreshTokens: [String: Int] = [:]
    var ledger = Ledger()
    var counters = ServerStatus.Counters(voicenter: ServerStatus.VoicenterCounters())
    private var writeBuffer: UnsafeMutableRawBufferPointer
    private let pre = mw_lws_pre()

    private init(
        settings: Settings, outbox: ChunkOutbox<FrameChunk>, confirmations: ConfirmationQueue, snapshots: SnapshotRequests,
        status: ServerStatus
    ) {
        self.settings = settings
        self.outbox = outbox
        self.confirmations = confirmations
        self.snapshots = snapshots
        self.status = status
        writeBuffer = .allocate(byteCount: 4 << 20, alignment: 16)
    }

    deinit { writeBuffer.deallocate() }

    /// Starts the service thread; returns the port once the server listens (nil if it cannot).
    static func start(
        settings: Settings, outbox: ChunkOutbox<FrameChunk>, confirmations: ConfirmationQueue, snapshots: SnapshotRequests,
        status: ServerStatus
    ) -> Int? {
        let started = Mutex<Int?>(nil)
        let thread = Thread {
            lws_set_log_level(1, nil)
            guard let protocols = mw_ws_protocols_create(voicenterCallback, 256 * 1024) else { return started.withLock { $0 = -1 } }
            let server = VoicenterServer(
                settings: settings, outbox: outbox, confirmations: confirmations, snapshots: snapshots, status: status)
            server.serve(protocols: protocols) { port in started.withLock { $0 = port } }
            mw_ws_protocols_free(protocols)
        }
        thread.name = "loadgen-lws"
        thread.start()
        while true {
            if let port = started.withLock({ $0 }) { return port > 0 ? port : nil }
            usleep(1000)
        }
    }

    private func serve(protocols: UnsafePointer<lws_protocols>, started: (Int) -> Void) {
        guard let context = mw_lws_server_context_create(protocols, 0, Unmanaged.passUnretained(self).toOpaque()) else {
            return started(-1)
        }
        self.context = context
        guard let vhost = lws_get_vhost_by_name(context, "default") else {
            lws_context_destroy(context)
            return started(-1)
        }
        counters.port = Int(lws_get_vhost_listen_port(vhost))
        outbox.attach(ServiceWaker(context: context))
        started(counters.port)
        while !status.stopRequested.load(ordering: .acquiring) {
            if lws_service(context, 0) < 0 { break }
            publishCounters()
        }
        outbox.detach()
        status.final.withLock {
            $0 = ServerStatus.Final(
                counts: ledger.counts, latency: LatencySummary(nanoseconds: ledger.latencies),
                latencyFromGeneration: LatencySummary(nanoseconds: ledger.latenciesFromGeneration),
                newCallLatency: LatencySummary(nanoseconds: ledger.newCallLatencies))
        }
        publishCounters()
        lws_context_destroy(context)
        self.context = nil
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
            takeChunks()
            keepHeartbeats()
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
            return upgrade(connection(for: wsi))
        case LWS_CALLBACK_ESTABLISHED:
            return established(connection(for: wsi))
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
        lws_set_opaque_user_data(wsi, nil)
        connections[UInt64(UInt(bitPattern: raw))] = nil
    }

    func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = Int(lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token))
        guard copied >= 0 else { return nil }
        return String(decoding: buffer.prefix(copied).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The query's parameters, which lws keeps apart from the path (and has percent-decoded).
    func query(_ wsi: OpaquePointer) -> [String: String] {
        var parameters: [String: String] = [:]
        var buffer = [CChar](repeating: 0, count: 4096)
        var index: Int32 = 0
        while true {
            let length = Int(lws_hdr_copy_fragment(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_URI_ARGS, index))
            guard length >= 0 else { break }
            let text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                parameters[String(text[..<equals])] = String(text[text.index(after: equals)...])
            } else {
                parameters[text] = ""
            }
            index += 1
        }
        return parameters
    }

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

    func respond(_ connection: Connection, _ status: UInt32, _ body: String) {
        connection.response = Response(status: status, body: Array(body.utf8))
        connection.headWritten = false
        lws_callback_on_writable(connection.wsi)
    }

    /// The head in one writable callback, the body in the next: lws wants one write per callback.
    private func httpWritable(_ connection: Connection) -> Int32 {
        guard let response = connection.response else { return 0 }
        if !connection.headWritten {
            if mw_lws_http_write_head(
                connection.wsi, response.status, "application/json; charset=utf-8", response.body.count, nil, nil, 0) != 0
            {
                return -1
            }
            connection.headWritten = true
            lws_callback_on_writable(connection.wsi)
            return 0
        }
        let written = response.body.withUnsafeBytes { write(connection.wsi, $0, LWS_WRITE_HTTP_FINAL) }
        connection.response = nil
        guard written else { return -1 }
        return lws_http_transaction_completed(connection.wsi) != 0 ? -1 : 0
    }
}

/// The callback lws calls for everything: finds the server through the context's user pointer.
private func voicenterCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let server = lws_context_user(context) else { return 0 }
    return Unmanaged<VoicenterServer>.fromOpaque(server).takeUnretainedValue().handle(wsi, reason, user, input, length)
}
