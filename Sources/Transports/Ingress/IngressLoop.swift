import CLibWebSockets
import CMutewardenShims
import Foundation
import MutewardenModel

/// The callback lws calls for everything: finds the loop through the context's user pointer.
private func ingressCallback(
    _ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?, _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let loop = lws_context_user(context) else { return 0 }
    return Unmanaged<IngressLoop>.fromOpaque(loop).takeUnretainedValue().handle(wsi, reason, user, input, length)
}

/// Everything the ingress thread owns: the context and every connection's state.
///
/// Created on the service thread, reached only from lws callbacks on that thread (through the
/// context's user pointer) and freed there, so it is neither `Sendable` nor shared.
final class IngressLoop {
    struct Environment: Sendable {
        let configuration: IngressConfiguration
        let routes: IngressRouteTable
        let statistics: IngressStatistics
        let health: @Sendable () -> IngressHealth
        let report: @Sendable (AuditSeverity, String, AuditFields) -> Void
        let inbox: Mailbox<IngressCommand>
    }

    /// Where a connection's current request stands.
    enum Phase {
        /// Waiting for a request's headers (a new connection, or one kept alive).
        case awaitingHead
        /// Headers in; a deferred authenticator is deciding, and reading is stopped.
        case authenticating
        /// Accepted: reading the body.
        case reading
        /// The body is with the route's handler.
        case handling
        /// An answer is being written.
        case responding
    }

    final class Connection {
        let id: UInt64
        let wsi: OpaquePointer
        var phase = Phase.awaitingHead
        /// Numbers the connection's requests, so that a late answer to an earlier one is dropped.
        var request: UInt64 = 0
        var head: IngressRequestHead?
        var route: IngressRoute?
        var principal: String?
        var limit = 0
        var body: [UInt8] = []
        var bodyComplete = false
        var paused = false
        var expectsContinue = false
        var response: IngressResponse?
        var closeAfterResponse = false
        var headWritten = false
        var deadline: MonotonicInstant?

        init(id: UInt64, wsi: OpaquePointer) {
            self.id = id
            self.wsi = wsi
        }
    }

    private let environment: Environment
    private var configuration: IngressConfiguration { environment.configuration }
    private var context: OpaquePointer?
    private var connections: [UInt64: Connection] = [:]
    private var nextConnectionID: UInt64 = 1
    private var running = true
    private let clock = SystemClock()
    private let recorder: RefusalRecorder
    private let uriArgsToken = lws_token_indexes(rawValue: UInt32(mw_ingress_uri_args_token()))
    private let tokenCount = Int(mw_ingress_token_count())
    private var writeBuffer: UnsafeMutableRawBufferPointer
    private let pre = mw_lws_pre()

    private init(_ environment: Environment) {
        self.environment = environment
        recorder = RefusalRecorder(
            interval: environment.configuration.refusalRecordInterval, label: environment.configuration.label, report: environment.report)
        writeBuffer = .allocate(byteCount: 16 * 1024, alignment: 16)
    }

    deinit { writeBuffer.deallocate() }

    /// The body of the service thread.
    static func run(_ environment: Environment, started: (Result<Int, IngressError>) -> Void) {
        let configuration = environment.configuration
        // lws logs through a global setting: errors only, never request contents.
        lws_set_log_level(1, nil)
        guard let protocols = mw_ws_protocols_create(ingressCallback, 16 * 1024) else {
            environment.inbox.release()
            return started(.failure(IngressError("ingress: out of memory")))
        }
        let loop = IngressLoop(environment)
        let user = Unmanaged.passUnretained(loop).toOpaque()
        var certificate: String?
        var key: String?
        if case .tls(let certificatePath, let keyPath) = configuration.security {
            certificate = certificatePath
            key = keyPath
        }
        let everywhere = configuration.address == "0.0.0.0" || configuration.address == "::"
        // lws's own deadlines are a backstop behind ours: they close without an answer.
        let backstop = [
            configuration.headerTimeout, configuration.bodyTimeout, configuration.authenticationTimeout,
            configuration.handlerTimeout,
        ].max()!
        let backstopSeconds = UInt32(clamping: backstop.components.seconds + 5)
        let context = mw_ingress_context_create(
            protocols, user, everywhere && configuration.address == "0.0.0.0" ? nil : configuration.address,
            Int32(configuration.port), certificate, key, backstopSeconds, UInt32(configuration.maximumConnections),
            UInt32(configuration.maximumHeaderSize))
        guard let context else {
            mw_ws_protocols_free(protocols)
            environment.inbox.release()
            // lws says only that it failed: binding the same address again says why.
            let why =
                IngressBindProbe.problem(address: configuration.address, port: configuration.port)
                ?? (configuration.isTLS
                    ? "is the address in use, or the certificate or key unreadable or mismatched?"
                    : "is the address in use, or not one of this machine's?")
            return started(.failure(IngressError("\(configuration.label): cannot listen on \(configuration.summary): \(why)")))
        }
        loop.context = context
        let port = Int(mw_ingress_listen_port(context))
        let pointer = IngressContextPointer(pointer: context)
        environment.inbox.attachWake { lws_cancel_service(pointer.pointer) }
        started(.success(port))
        loop.drainInbox()
        while loop.running {
            if lws_service(context, 0) < 0 {
                environment.report(
                    .error, "the \(configuration.label)'s service loop failed; it no longer answers requests", [.result: "failed"])
                break
            }
        }
        environment.inbox.release()
        lws_context_destroy(context)
        loop.context = nil
        mw_ws_protocols_free(protocols)
        environment.statistics.openConnections.store(0, ordering: .relaxed)
    }

    // MARK: Callbacks

    func handle(
        _ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ length: Int
    ) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainInbox()
            return 0
        case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
            // Before the connection gets a wsi: closing it here costs nothing but the accept.
            guard connections.count < configuration.maximumConnections else {
                environment.statistics.count(.overCapacity)
                return 1
            }
            return 0
        case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
            let connection = Connection(id: nextConnectionID, wsi: wsi)
            nextConnectionID += 1
            connections[connection.id] = connection
            lws_set_opaque_user_data(wsi, UnsafeMutableRawPointer(bitPattern: UInt(connection.id)))
            environment.statistics.openConnections.store(connections.count, ordering: .relaxed)
            arm(connection, configuration.headerTimeout)
            return 0
        case LWS_CALLBACK_HTTP:
            guard let connection = connection(wsi) else { return -1 }
            return head(connection, uri: input, length: length)
        case LWS_CALLBACK_HTTP_BODY:
            guard let connection = connection(wsi) else { return -1 }
            return bodyChunk(connection, input, length)
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            guard let connection = connection(wsi) else { return -1 }
            connection.bodyComplete = true
            if connection.phase == .reading { dispatch(connection) }
            return 0
        case LWS_CALLBACK_HTTP_WRITEABLE:
            guard let connection = connection(wsi) else { return -1 }
            return writeable(connection)
        case LWS_CALLBACK_TIMER:
            guard let connection = connection(wsi) else { return 0 }
            return timer(connection)
        case LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_WSI_DESTROY:
            forget(wsi)
            return 0
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            // No WebSocket upgrades: the ingress takes callbacks only.
            return 1
        default:
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
    }

    private func connection(_ wsi: OpaquePointer) -> Connection? {
        guard let raw = lws_get_opaque_user_data(wsi) else { return nil }
        return connections[UInt64(UInt(bitPattern: raw))]
    }

    private func forget(_ wsi: OpaquePointer) {
        guard let raw = lws_get_opaque_user_data(wsi) else { return }
        lws_set_opaque_user_data(wsi, nil)
        connections[UInt64(UInt(bitPattern: raw))] = nil
        environment.statistics.openConnections.store(connections.count, ordering: .relaxed)
    }

    // MARK: A request

    /// The headers are in: route, check the declared length, authenticate. No byte of the body has
    /// been handed to anyone yet, and none will be unless the authenticator accepts.
    private func head(_ connection: Connection, uri: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        connection.request += 1
        connection.body.removeAll(keepingCapacity: false)
        connection.bodyComplete = false
        connection.principal = nil
        connection.route = nil
        connection.expectsContinue = false
        let wsi = connection.wsi
        var uriToken: Int32 = 0
        guard let methodPointer = mw_ingress_method(wsi, &uriToken) else {
            return answer(connection, .methodNotAllowed, status: 405, close: true)
        }
        let method = String(cString: methodPointer)
        let path = header(wsi, lws_token_indexes(rawValue: UInt32(uriToken))) ?? "/"
        let head = IngressRequestHead(
            method: method, path: path, query: query(wsi), headers: headers(wsi), peer: peer(wsi), contentLength: nil)
        var request = head
        let declared = request.header("content-length")
        let chunked = request.header("transfer-encoding") != nil
        if let declared {
            guard let value = Int(declared.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                return answer(connection, .lengthRequired, status: 400, close: true)
            }
            request.contentLength = value
        }
        connection.head = request

        if path == "/healthz" && (method == "GET" || method == "HEAD") {
            let health = environment.health()
            let checks = health.checks.map { "\"\(Self.jsonEscaped($0.name))\":\"\($0.value)\"" }.joined(separator: ",")
            let body = "{\"status\":\"\(health.healthy ? "ok" : "unavailable")\",\"checks\":{\(checks)}}"
            environment.statistics.count(.health)
            return respond(
                connection, IngressResponse(status: health.healthy ? 200 : 503, json: body), close: chunked || (request.contentLength ?? 0) > 0)
        }
        guard let route = environment.routes.route(for: path) else {
            return answer(connection, .notFound, status: 404, close: true)
        }
        connection.route = route
        guard route.methods.contains(method) else {
            return answer(connection, .methodNotAllowed, status: 405, close: true)
        }
        // lws 4.1 does not decode a chunked request body; a callback without a length is refused.
        guard !chunked else { return answer(connection, .lengthRequired, status: 411, close: true) }
        let limit = min(route.maximumBodySize ?? configuration.maximumBodySize, configuration.maximumBodySize)
        connection.limit = limit
        if let declaredLength = request.contentLength, declaredLength > limit {
            refuse(
                connection, status: 413, outcome: .tooLarge,
                IngressRefusal(reason: "body-too-large", detail: "declared \(declaredLength) bytes, the cap is \(limit)"))
            return 0
        }
        connection.expectsContinue = request.header("expect")?.lowercased() == "100-continue"
        switch route.authenticator.authenticate(request) {
        case .decided(let decision):
            return decide(connection, decision)
        case .deferred(let decide):
            connection.phase = .authenticating
            pause(connection)
            arm(connection, configuration.authenticationTimeout)
            let inbox = environment.inbox
            let (id, serial) = (connection.id, connection.request)
            Task { inbox.post(.decided(connection: id, request: serial, await decide())) }
            return 0
        }
    }

    private func decide(_ connection: Connection, _ decision: IngressDecision) -> Int32 {
        switch decision {
        case .refuse(let refusal):
            refuse(connection, status: refusal.status, outcome: refusal.status == 503 ? .unavailable : .unauthorized, refusal)
            return 0
        case .accept(let principal):
            connection.principal = principal
            connection.phase = .reading
            if connection.paused {
                connection.paused = false
                lws_rx_flow_control(connection.wsi, 1)
            }
            if connection.expectsContinue && !connection.bodyComplete && connection.body.isEmpty {
                if mw_ingress_write_continue(connection.wsi) != 0 { return -1 }
            }
            if connection.bodyComplete || (connection.head?.contentLength ?? 0) == 0 {
                dispatch(connection)
            } else {
                arm(connection, configuration.bodyTimeout)
            }
            return 0
        }
    }

    private func bodyChunk(_ connection: Connection, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        switch connection.phase {
        case .authenticating, .reading:
            // While authenticating, these are bytes lws had already taken from the socket with the
            // headers: kept, not looked at, and dropped if the caller is refused.
            guard connection.body.count + length <= connection.limit else {
                refuse(
                    connection, status: 413, outcome: .tooLarge,
                    IngressRefusal(reason: "body-too-large", detail: "more than \(connection.limit) bytes sent"))
                return 0
            }
            if let input, length > 0 { connection.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length)) }
            return 0
        case .awaitingHead, .handling, .responding:
            // Bytes of a body already refused or answered: ignored until the connection closes.
            return 0
        }
    }

    /// The whole body is in: hand it to the handler on a task, and wait for its answer.
    private func dispatch(_ connection: Connection) {
        guard let route = connection.route, let head = connection.head else { return }
        connection.phase = .handling
        arm(connection, configuration.handlerTimeout)
        let request = IngressRequest(head: head, body: connection.body, principal: connection.principal)
        connection.body = []
        let inbox = environment.inbox
        let (id, serial) = (connection.id, connection.request)
        Task { inbox.post(.respond(connection: id, request: serial, await route.handler(request))) }
    }

    /// Refuses the request with `status` and one rate-limited record; the connection closes after
    /// the answer, since the body that may follow will not be read.
    private func refuse(_ connection: Connection, status: Int, outcome: IngressOutcome, _ refusal: IngressRefusal) {
        let head = connection.head
        recorder.refused(
            status: status, reason: refusal.reason, detail: refusal.detail, peer: head?.peer ?? "unknown",
            path: connection.route?.path ?? head?.path ?? "", owner: connection.route?.owner, now: clock.now())
        _ = answer(connection, outcome, status: status, close: true)
    }

    private func answer(_ connection: Connection, _ outcome: IngressOutcome, status: Int, close: Bool) -> Int32 {
        environment.statistics.count(outcome)
        let words = [
            400: "bad request", 401: "unauthorized", 404: "not found", 405: "method not allowed", 408: "request timeout",
            411: "length required", 413: "payload too large", 503: "unavailable",
        ]
        return respond(connection, IngressResponse(status: status, json: "{\"error\":\"\(words[status] ?? "error")\"}"), close: close)
    }

    private func respond(_ connection: Connection, _ response: IngressResponse, close: Bool) -> Int32 {
        if connection.paused {
            // The answer must go out; what the socket still holds is never read (the connection closes).
            connection.paused = false
            lws_rx_flow_control(connection.wsi, 1)
        }
        connection.phase = .responding
        connection.response = response
        connection.closeAfterResponse = close
        connection.headWritten = false
        arm(connection, configuration.bodyTimeout)
        lws_callback_on_writable(connection.wsi)
        return 0
    }

    private func pause(_ connection: Connection) {
        connection.paused = true
        lws_rx_flow_control(connection.wsi, 0)
    }

    // MARK: Writing

    /// The head in one writable callback, the body in the next: lws wants one write per callback.
    private func writeable(_ connection: Connection) -> Int32 {
        guard connection.phase == .responding, let response = connection.response else { return 0 }
        let wsi = connection.wsi
        if !connection.headWritten {
            let extra: [(String, String)] = connection.closeAfterResponse ? [("connection", "close")] : []
            let names = extra.map { strdup($0.0) }
            let values = extra.map { strdup($0.1) }
            defer {
                names.forEach { free($0) }
                values.forEach { free($0) }
            }
            let failed = names.map { UnsafePointer($0) }.withUnsafeBufferPointer { namePointers in
                values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                    mw_lws_http_write_head(
                        wsi, UInt32(clamping: response.status), response.contentType, response.body.count,
                        namePointers.baseAddress, valuePointers.baseAddress, Int32(extra.count))
                }
            }
            if failed != 0 { return -1 }
            connection.headWritten = true
            if !response.body.isEmpty {
                lws_callback_on_writable(wsi)
                return 0
            }
        } else {
            guard write(wsi, response.body) else { return -1 }
        }
        connection.response = nil
        if connection.closeAfterResponse { return -1 }
        connection.phase = .awaitingHead
        connection.head = nil
        connection.route = nil
        if lws_http_transaction_completed(wsi) != 0 { return -1 }
        // The next request's headers are due within the header timeout, counted from now.
        arm(connection, configuration.headerTimeout)
        return 0
    }

    private func write(_ wsi: OpaquePointer, _ bytes: [UInt8]) -> Bool {
        let needed = pre + bytes.count
        if writeBuffer.count < needed {
            writeBuffer.deallocate()
            writeBuffer = .allocate(byteCount: max(needed, writeBuffer.count * 2), alignment: 16)
        }
        let payload = writeBuffer.baseAddress!.advanced(by: pre)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { payload.copyMemory(from: base, byteCount: source.count) }
        }
        return lws_write(wsi, payload.assumingMemoryBound(to: UInt8.self), bytes.count, LWS_WRITE_HTTP_FINAL) >= bytes.count
    }

    // MARK: Deadlines

    /// The connection's one deadline: what it is for depends on its phase.
    private func arm(_ connection: Connection, _ timeout: Duration) {
        connection.deadline = clock.now() + timeout
        lws_set_timer_usecs(connection.wsi, lws_usec_t(max(timeout.nanosecondsClamped / 1000, 1000)))
    }

    private func timer(_ connection: Connection) -> Int32 {
        guard let deadline = connection.deadline else { return 0 }
        let now = clock.now()
        guard now >= deadline else {
            lws_set_timer_usecs(connection.wsi, lws_usec_t(max(deadline.since(now).nanosecondsClamped / 1000, 1000)))
            return 0
        }
        connection.deadline = nil
        switch connection.phase {
        case .awaitingHead:
            // A request that has not finished its headers cannot be answered: lws still owns
            // them. A kept-alive connection that sends nothing is closed the same way.
            if connection.request == 0 || connection.head != nil { environment.statistics.count(.headerTimeout) }
            mw_ws_kill(connection.wsi)
        case .reading:
            refuse(
                connection, status: 408, outcome: .bodyTimeout,
                IngressRefusal(reason: "body-timeout", detail: "the body did not arrive within \(configuration.bodyTimeout.compact)"))
        case .authenticating:
            _ = answer(connection, .unavailable, status: 503, close: true)
        case .handling:
            _ = answer(connection, .unavailable, status: 503, close: true)
        case .responding:
            // The peer does not read its answer.
            mw_ws_kill(connection.wsi)
        }
        return 0
    }

    // MARK: Commands

    private func drainInbox() {
        for command in environment.inbox.take() {
            switch command {
            case .stop:
                running = false
            // Every connection goes: lws closes them with the context.
            case .decided(let id, let serial, let decision):
                guard let connection = connections[id], connection.request == serial, connection.phase == .authenticating else { continue }
                if decide(connection, decision) != 0 { mw_ws_kill(connection.wsi) }
            case .respond(let id, let serial, let response):
                guard let connection = connections[id], connection.request == serial, connection.phase == .handling else { continue }
                environment.statistics.count(.handled)
                _ = respond(connection, response, close: false)
            }
        }
    }

    // MARK: Reading the head

    private func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        let copied = Int(lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token))
        guard copied >= 0 else { return nil }
        return String(decoding: buffer.prefix(copied).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Every header lws parsed into one of its tokens (all the standard ones), lower-case names.
    private func headers(_ wsi: OpaquePointer) -> [IngressField] {
        var fields: [IngressField] = []
        for index in 0..<tokenCount {
            let token = lws_token_indexes(rawValue: UInt32(index))
            guard token != uriArgsToken, lws_hdr_total_length(wsi, token) > 0, let name = lws_token_to_string(token) else { continue }
            var text = String(cString: name)
            // lws's names carry their colon ("authorization:"); the method tokens are "post " etc.
            guard text.hasSuffix(":") else { continue }
            text.removeLast()
            if let value = header(wsi, token) { fields.append(IngressField(text.lowercased(), value)) }
        }
        return fields
    }

    private func query(_ wsi: OpaquePointer) -> [IngressField] {
        var fields: [IngressField] = []
        let total = Int(lws_hdr_total_length(wsi, uriArgsToken))
        guard total > 0 else { return [] }
        var buffer = [CChar](repeating: 0, count: total + 1)
        // lws keeps each `&`-separated argument as one fragment, already %-decoded.
        for index in 0..<64 {
            let copied = Int(lws_hdr_copy_fragment(wsi, &buffer, Int32(buffer.count), uriArgsToken, Int32(index)))
            guard copied >= 0 else { break }
            let text = String(decoding: buffer.prefix(copied).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                fields.append(IngressField(String(text[..<equals]), String(text[text.index(after: equals)...])))
            } else {
                fields.append(IngressField(text, ""))
            }
        }
        return fields
    }

    private func peer(_ wsi: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        guard lws_get_peer_simple(wsi, &buffer, buffer.count) != nil else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func jsonEscaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += "?"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
