import CLibWebSockets
import MutewardenJSON

/// The GWS REST API and the CometD endpoint's Bayeux messages, as far as the daemon uses them.
extension GWSServer {
    // MARK: - HTTP

    func httpRequest(_ connection: Connection, uri: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        connection.isPost = lws_hdr_total_length(connection.wsi, WSI_TOKEN_POST_URI) > 0
        connection.path = uri.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
        connection.body.removeAll(keepingCapacity: true)
        readCredentials(connection)
        // A POST answers once its body is in (HTTP_BODY_COMPLETION).
        if connection.isPost { return 0 }
        if connection.path == "/api/v2/me" {
            return login(connection)
        }
        if connection.path == "/api/v2/me/calls" {
            guard session(of: connection) != nil || connection.authorization == settings.authorization else {
                respond(connection, Response(status: 401, body: Array(#"{"statusCode":20}"#.utf8)))
                return 0
            }
            counters.resyncs += 1
            respond(connection, Response(status: 200, body: settings.callList))
            return 0
        }
        counters.badRequests += 1
        respond(connection, Response(status: 404, body: Array(#"{"statusCode":6,"statusMessage":"No resource"}"#.utf8)))
        return 0
    }

    /// `GET /api/v2/me`: Basic credentials open a session (JSESSIONID) with its CSRF token.
    private func login(_ connection: Connection) -> Int32 {
        guard connection.authorization == settings.authorization else {
            respond(
                connection,
                Response(
                    status: 401, headers: [("WWW-Authenticate", #"Basic realm="GWS""#)],
                    body: Array(#"{"statusCode":20,"statusMessage":"Access denied: not authenticated"}"#.utf8)))
            return 0
        }
        counters.logins += 1
        var headers: [(String, String)] = []
        let sessionID: String
        if let existing = session(of: connection) {
            sessionID = existing
        } else {
            let created = newSession()
            sessionID = created.id
            headers.append(("Set-Cookie", "JSESSIONID=\(created.id); Path=/; HttpOnly"))
        }
        headers.append(("X-CSRF-HEADER", "X-CSRF-TOKEN"))
        headers.append(("X-CSRF-TOKEN", csrfToken(session: sessionID) ?? ""))
        respond(
            connection,
            Response(
                status: 200, headers: headers,
                body: Array(#"{"statusCode":0,"user":{"id":"loadgen-agent","userName":"agent1","roles":["ROLE_AGENT"]}}"#.utf8)))
        return 0
    }

    func httpBodyComplete(_ connection: Connection) -> Int32 {
        let now = monotonicNanoseconds()
        if connection.path == settings.cometdPath {
            return bayeuxOverHTTP(connection)
        }
        let prefix = "/api/v2/me/calls/"
        if connection.path.hasPrefix(prefix) {
            let callID = String(connection.path.dropFirst(prefix.count))
            counters.actionRequests += 1
            guard let sessionID = session(of: connection), connection.csrfToken == csrfToken(session: sessionID) else {
                // As GWS does: no session cookie or no matching CSRF token, no operation.
                counters.csrfMissing += 1
                respond(connection, Response(status: 403, body: Array(#"{"statusCode":3,"statusMessage":"Invalid CSRF token"}"#.utf8)))
                return 0
            }
            let name = (try? JSONValue.parse(connection.body))?["operationName"]?.string
            guard let name, let operation = Operation(name: name) else {
                counters.badRequests += 1
                respond(connection, Response(status: 200, body: Array(#"{"statusCode":10}"#.utf8)))
                return 0
            }
            ledger.measuring = status.measuring.load(ordering: .relaxed)
            ledger.arrived(callID: callID, operation: operation, at: now)
            confirmations.post(.init(callID: callID, operation: operation))
            outbox.wake()
            respond(connection, Response(status: 200, body: Array(#"{"statusCode":0}"#.utf8)))
            return 0
        }
        counters.badRequests += 1
        respond(connection, Response(status: 404, body: Array(#"{"statusCode":6,"statusMessage":"No resource"}"#.utf8)))
        return 0
    }

    // MARK: - Bayeux

    /// One long-polling POST: meta messages answered in order; a `/meta/connect` with nothing to
    /// deliver is held until events come or `connectHold` passes.
    private func bayeuxOverHTTP(_ connection: Connection) -> Int32 {
        guard let messages = (try? JSONValue.parse(connection.body))?.array else {
            counters.badRequests += 1
            respond(connection, Response(status: 400, body: Array("[]".utf8)))
            return 0
        }
        var replies: [String] = []
        for message in messages {
            if message["channel"]?.string == "/meta/connect", let clientID = message["clientId"]?.string,
                let client = clients[clientID]
            {
                counters.connects += 1
                if client.pendingEvents == 0 {
                    connection.heldPoll = (clientID, message["id"]?.string, monotonicNanoseconds() + settings.connectHold)
                    // Held: lws must not time the connection out while the poll waits.
                    lws_set_timeout(connection.wsi, NO_PENDING_TIMEOUT, 0)
                    return 0
                }
                connection.heldPoll = (clientID, message["id"]?.string, 0)
                lws_callback_on_writable(connection.wsi)
                return 0
            }
            replies.append(meta(message, transport: "long-polling", connection: connection))
        }
        respond(connection, Response(status: 200, body: Array("[\(replies.joined(separator: ","))]".utf8)))
        return 0
    }

    /// The reply to a held long poll: the client's pending events, then the connect reply.
    func pollReply(_ connection: Connection) -> Response {
        guard let held = connection.heldPoll else { return Response(status: 500, body: []) }
        counters.pollReplies += 1
        guard let client = clients[held.clientID] else {
            return Response(status: 200, body: Array("[\(connectReply(client: held.clientID, messageID: held.messageID))]".utf8))
        }
        var body: [UInt8] = [UInt8(ascii: "[")]
        let taken = takePending(client)
        body.append(contentsOf: taken.bytes)
        if taken.count > 0 { body.append(UInt8(ascii: ",")) }
        body.append(contentsOf: connectReply(client: client.id, messageID: held.messageID).utf8)
        body.append(UInt8(ascii: "]"))
        return Response(status: 200, body: body, edges: taken.edges)
    }

    func connectReply(client: String, messageID: String?) -> String {
        let id = messageID.map { #","id":"\#($0)""# } ?? ""
        guard clients[client] != nil else {
            counters.unknownClient += 1
            return
                #"{"channel":"/meta/connect","successful":false,"error":"402::Unknown client","advice":{"reconnect":"handshake","interval":0}\#(id)}"#
        }
        return
            #"{"channel":"/meta/connect","successful":true,"clientId":"\#(client)","advice":{"reconnect":"retry","interval":0,"timeout":\#(settings.connectHold / 1_000_000)}\#(id)}"#
    }

    /// Handshake, subscribe and disconnect, for either transport.
    private func meta(_ message: JSONValue, transport: String, connection: Connection) -> String {
        let channel = message["channel"]?.string ?? ""
        let id = message["id"]?.string.map { #","id":"\#($0)""# } ?? ""
        switch channel {
        case "/meta/handshake":
            counters.handshakes += 1
            if counters.handshakes == 1 { noteDaemonMemory() }
            nextClientNumber += 1
            let client = Client(id: "lg" + hex(nextClientNumber, digits: 6) + hex(Int.random(in: 0..<(1 << 40)), digits: 10))
            clients[client.id] = client
            if connection.isWebSocket {
                client.webSocket = connection.id
                connection.clientID = client.id
            }
            return
                #"{"channel":"/meta/handshake","successful":true,"version":"1.0","clientId":"\#(client.id)","supportedConnectionTypes":["long-polling","websocket"],"advice":{"reconnect":"retry","interval":0,"timeout":\#(settings.connectHold / 1_000_000)}\#(id)}"#
        case "/meta/subscribe":
            let subscription = message["subscription"]?.string ?? ""
            guard let clientID = message["clientId"]?.string, let client = clients[clientID] else {
                counters.unknownClient += 1
                return
                    #"{"channel":"/meta/subscribe","successful":false,"subscription":"\#(subscription)","error":"402::Unknown client","advice":{"reconnect":"handshake"}\#(id)}"#
            }
            if subscription == "/v2/me/calls" {
                client.subscribed = true
                counters.subscriptions += 1
            }
            return #"{"channel":"/meta/subscribe","successful":true,"clientId":"\#(clientID)","subscription":"\#(subscription)"\#(id)}"#
        case "/meta/disconnect":
            if let clientID = message["clientId"]?.string { clients[clientID] = nil }
            return #"{"channel":"/meta/disconnect","successful":true\#(id)}"#
        default:
            counters.badRequests += 1
            return #"{"channel":"\#(channel)","successful":false,"error":"400::unsupported"\#(id)}"#
        }
    }

    /// Memory before the daemon tracks any call: its first handshake comes before its resync.
    private func noteDaemonMemory() {
        let pid = status.daemonPID.load(ordering: .relaxed)
        guard pid > 0, let memory = ProcessProbe(pid: pid).memory() else { return }
        status.rssAtHandshake.withLock { $0 = memory.rssKiB }
    }

    // MARK: - WebSocket

    func webSocketReceive(_ connection: Connection, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        if let input { connection.incoming.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length)) }
        guard lws_is_final_fragment(connection.wsi) != 0, lws_remaining_packet_payload(connection.wsi) == 0 else { return 0 }
        defer { connection.incoming.removeAll(keepingCapacity: true) }
        guard let messages = (try? JSONValue.parse(connection.incoming))?.array else {
            counters.badRequests += 1
            return -1
        }
        var replies: [String] = []
        for message in messages {
            if message["channel"]?.string == "/meta/connect" {
                counters.connects += 1
                let clientID = message["clientId"]?.string ?? ""
                guard let client = clients[clientID] else {
                    replies.append(connectReply(client: clientID, messageID: message["id"]?.string))
                    continue
                }
                client.webSocket = connection.id
                connection.clientID = client.id
                // A new connect releases the one held before it, as CometD does.
                if let held = client.heldWebSocketConnect {
                    replies.append(connectReply(client: client.id, messageID: held.messageID))
                }
                client.heldWebSocketConnect = (message["id"]?.string, monotonicNanoseconds() + settings.connectHold)
                continue
            }
            replies.append(meta(message, transport: "websocket", connection: connection))
        }
        if !replies.isEmpty {
            connection.frames.append(Array("[\(replies.joined(separator: ","))]".utf8))
            lws_callback_on_writable(connection.wsi)
        }
        return 0
    }

    /// One frame per writable callback: replies first, then the client's pending events.
    func webSocketWritable(_ connection: Connection) -> Int32 {
        if !connection.frames.isEmpty {
            let frame = connection.frames.removeFirst()
            guard frame.withUnsafeBytes({ write(connection.wsi, $0, LWS_WRITE_TEXT) }) else { return -1 }
            counters.webSocketFrames += 1
        } else if let clientID = connection.clientID, let client = clients[clientID], client.subscribed,
            client.pendingEvents > 0
        {
            let taken = takePending(client)
            var frame: [UInt8] = [UInt8(ascii: "[")]
            frame.append(contentsOf: taken.bytes)
            frame.append(UInt8(ascii: "]"))
            guard frame.withUnsafeBytes({ write(connection.wsi, $0, LWS_WRITE_TEXT) }) else { return -1 }
            counters.webSocketFrames += 1
            if !taken.edges.isEmpty {
                let now = monotonicNanoseconds()
                ledger.measuring = status.measuring.load(ordering: .relaxed)
                for (edge, generatedAt) in taken.edges { ledger.stamp(edge, writtenAt: now, generatedAt: generatedAt) }
            }
        }
        let client = connection.clientID.flatMap { clients[$0] }
        if !connection.frames.isEmpty || (client?.pendingEvents ?? 0) > 0 { lws_callback_on_writable(connection.wsi) }
        return 0
    }
}
