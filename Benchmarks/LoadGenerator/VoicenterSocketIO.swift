import CLibWebSockets
import MutewardenJSON

/// Voicenter's Real-Time API as a socket.io server over WebSocket: the handshake (`EIO` 3 or 4,
/// `transport=websocket`, the login's `token` in the query), the heartbeat each version wants,
/// the snapshot on connecting and on `resync`, `keepalive`, and the generator's events.
extension VoicenterServer {
    /// One Engine.IO session on one WebSocket.
    final class Session {
        let version: EngineIOVersion
        let sid: String
        var established = false
        /// socket.io's `/` is connected: the session has asked for (v4) or been given (v3) it.
        var connected = false
        /// Its snapshot has been queued: every later event is for it too.
        var subscribed = false
        /// Frames that go before any event: the open packet, CONNECT, pongs, answers, acks.
        var control: [[UInt8]] = []
        var pending: [FrameChunk] = []
        /// Frames of `pending[0]` already written.
        var written = 0
        var pendingFrames = 0
        /// v3: when the client last pinged (or the session opened).
        var lastPing: Int64 = 0
        /// v4: the ping awaiting its pong, and when the next one is due.
        var pingSentAt: Int64?
        var nextPing: Int64 = 0
        var closing = false

        init(version: EngineIOVersion, sid: String) {
            self.version = version
            self.sid = sid
        }
    }

    /// At most this many frames in one writable callback, so that one busy session cannot hold
    /// the service thread from the requests that answer it.
    private static let framesPerWritable = 64

    // MARK: - Handshake

    /// The WebSocket upgrade: Engine.IO answers an unsupported version or transport with 400 and a
    /// refused token with 401, before any packet (platform-apis.md §3): a client's `auto` mode
    /// falls back on the first, and logs in again on the second.
    func upgrade(_ connection: Connection) -> Int32 {
        counters.webSocketUpgrades += 1
        let path = header(connection.wsi, WSI_TOKEN_GET_URI) ?? ""
        guard path == settings.socketPath || path == String(settings.socketPath.dropLast()) else {
            counters.badRequests += 1
            return refuse(connection, 404)
        }
        let parameters = query(connection.wsi)
        guard parameters["transport"] == "websocket", let version = parameters["EIO"].flatMap(Int.init).flatMap(EngineIOVersion.init)
        else {
            counters.voicenter?.refusedVersion += 1
            return refuse(connection, 400)
        }
        guard isValid(token: parameters["token"]) else {
            counters.voicenter?.refusedToken += 1
            return refuse(connection, 401)
        }
        connection.session = Session(
            version: version, sid: "lg" + hex(Int(connection.id), digits: 6) + hex(Int.random(in: 0..<(1 << 40)), digits: 10))
        return 0
    }

    /// Refusing in the filter callback alone would close the connection with no answer at all.
    private func refuse(_ connection: Connection, _ status: UInt32) -> Int32 {
        _ = lws_return_http_status(connection.wsi, status, nil)
        return 1
    }

    func established(_ connection: Connection) -> Int32 {
        guard let session = connection.session else { return -1 }
        let now = monotonicNanoseconds()
        session.established = true
        session.lastPing = now
        session.nextPing = now + Int64(settings.pingInterval) * 1_000_000
        counters.handshakes += 1
        if session.version == .v3 { counters.voicenter?.eio3Sessions += 1 } else { counters.voicenter?.eio4Sessions += 1 }
        session.control.append(SocketIOFraming.open(sid: session.sid, pingInterval: settings.pingInterval, pingTimeout: settings.pingTimeout))
        // socket.io 2 connects `/` by itself; 3 and later wait for the client's `40`.
        if session.version == .v3 { connect(connection, session) }
        lws_callback_on_writable(connection.wsi)
        return 0
    }

    /// `/` connected: the snapshot is asked of the generator, and events follow it.
    private func connect(_ connection: Connection, _ session: Session) {
        session.connected = true
        session.control.append(SocketIOFraming.connected(session.version, sid: session.sid))
        counters.connects += 1
        counters.subscriptions += 1
        snapshots.post(connection.id)
        outbox.wake()
    }

    // MARK: - Reading

    func webSocketReceive(_ connection: Connection, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        if let input { connection.incoming.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length)) }
        guard lws_is_final_fragment(connection.wsi) != 0, lws_remaining_packet_payload(connection.wsi) == 0 else { return 0 }
        defer { connection.incoming.removeAll(keepingCapacity: true) }
        guard let session = connection.session else { return -1 }
        switch SocketIOFraming.parse(connection.incoming) {
        case .ping(let payload):
            counters.voicenter?.pingsReceived += 1
            session.lastPing = monotonicNanoseconds()
            session.control.append(SocketIOFraming.pong(payload: payload))
        case .pong:
            counters.voicenter?.pongsReceived += 1
            session.pingSentAt = nil
        case .close:
            return -1
        case .connect(let namespace):
            if namespace != "/" {
                session.control.append(SocketIOFraming.connectError(session.version, namespace: namespace))
            } else if !session.connected {
                connect(connection, session)
            }
        case .disconnect(let namespace):
            if namespace == "/" {
                session.connected = false
                session.subscribed = false
            }
        case .event(let namespace, let name, let arguments, let ack):
            guard namespace == "/", session.connected else {
                counters.voicenter?.unknownEvents += 1
                break
            }
            event(name, arguments, connection: connection, session: session)
            if let ack { session.control.append(SocketIOFraming.ack(ack, namespace: namespace)) }
        case .ignored:
            break
        case .malformed:
            counters.voicenter?.malformedPackets += 1
        }
        if !session.control.isEmpty { lws_callback_on_writable(connection.wsi) }
        return 0
    }

    /// The client's emits Voicenter answers: `keepalive` (its token) and `resync`.
    private func event(_ name: String, _ arguments: [JSONValue], connection: Connection, session: Session) {
        switch name {
        case "keepalive":
            counters.voicenter?.keepalives += 1
            var out = ByteWriter(capacity: 96)
            SocketIOFraming.beginEvent("keepaliveResponse", into: &out)
            out.raw(
                isValid(token: arguments.first?.string)
                    ? #"{"isOk":true,"errorCode":0,"errorDesc":""}"# : #"{"isOk":false,"errorCode":401,"errorDesc":"Invalid token"}"#)
            SocketIOFraming.endEvent(into: &out)
            session.control.append(out.bytes)
        case "resync":
            counters.voicenter?.resyncRequests += 1
            snapshots.post(connection.id)
            outbox.wake()
        default:
            counters.voicenter?.unknownEvents += 1
        }
    }

    // MARK: - Events from the generator

    /// Hands each chunk to its sessions: a snapshot to the one it was made for, which from then
    /// on gets every event; events to every session that has had its snapshot.
    func takeChunks() {
        let chunks = outbox.drain()
        guard !chunks.isEmpty else { return }
        var subscribers = connections.values.compactMap { connection in
            connection.session.flatMap { $0.subscribed ? $0 : nil }
        }
        for chunk in chunks {
            if let recipient = chunk.recipient {
                guard let session = connections[recipient]?.session, session.connected else { continue }
                if !session.subscribed {
                    session.subscribed = true
                    subscribers.append(session)
                }
                enqueue(chunk, session)
                continue
            }
            if subscribers.isEmpty { counters.eventsDropped += chunk.ends.count }
            for session in subscribers { enqueue(chunk, session) }
        }
        for connection in connections.values {
            guard let session = connection.session, session.pendingFrames > 0 else { continue }
            lws_callback_on_writable(connection.wsi)
        }
    }

    private func enqueue(_ chunk: FrameChunk, _ session: Session) {
        session.pending.append(chunk)
        session.pendingFrames += chunk.ends.count
        counters.maximumBacklog = max(counters.maximumBacklog, session.pendingFrames)
    }

    /// v4: the server pings every `pingInterval` and gives up `pingTimeout` after an unanswered
    /// one; v3: the client pings, and the server gives up `pingInterval + pingTimeout` after the
    /// last. Checked whenever the generator wakes the service thread (at least every 100 ms).
    func keepHeartbeats() {
        let now = monotonicNanoseconds()
        let interval = Int64(settings.pingInterval) * 1_000_000
        let timeout = Int64(settings.pingTimeout) * 1_000_000
        for connection in connections.values {
            guard let session = connection.session, session.established, !session.closing else { continue }
            var late = false
            switch session.version {
            case .v3:
                late = now - session.lastPing > interval + timeout
            case .v4:
                if let sent = session.pingSentAt {
                    late = now - sent > timeout
                } else if now >= session.nextPing {
                    session.control.append(SocketIOFraming.ping)
                    session.pingSentAt = now
                    session.nextPing = now + interval
                    counters.voicenter?.pingsSent += 1
                    lws_callback_on_writable(connection.wsi)
                }
            }
            if late {
                counters.voicenter?.heartbeatTimeouts += 1
                session.closing = true
                lws_callback_on_writable(connection.wsi)
            }
        }
    }

    // MARK: - Writing

    /// Control frames first, then events, one frame per `lws_write` (Engine.IO sends one packet
    /// per frame), several per callback while the socket takes them. Each frame's expected
    /// actions are stamped as it is handed to lws.
    func webSocketWritable(_ connection: Connection) -> Int32 {
        guard let session = connection.session else { return 0 }
        if session.closing { return -1 }
        for _ in 0..<Self.framesPerWritable {
            if !session.control.isEmpty {
                let frame = session.control.removeFirst()
                guard frame.withUnsafeBytes({ write(connection.wsi, $0, LWS_WRITE_TEXT) }) else { return -1 }
                counters.webSocketFrames += 1
            } else if !session.pending.isEmpty {
                guard writeNextFrame(connection, session) else { return -1 }
            } else {
                break
            }
            if lws_send_pipe_choked(connection.wsi) != 0 { break }
        }
        if !session.control.isEmpty || session.pendingFrames > 0 { lws_callback_on_writable(connection.wsi) }
        return 0
    }

    private func writeNextFrame(_ connection: Connection, _ session: Session) -> Bool {
        let chunk = session.pending[0]
        let index = session.written
        let range = chunk.frame(index)
        let written = chunk.bytes.withUnsafeBytes { write(connection.wsi, UnsafeRawBufferPointer(rebasing: $0[range]), LWS_WRITE_TEXT) }
        guard written else { return false }
        let now = monotonicNanoseconds()
        counters.webSocketFrames += 1
        if chunk.recipient != nil {
            counters.resyncs += 1
            counters.voicenter?.snapshotBytes = range.count
        } else {
            counters.eventsWritten += 1
        }
        if !chunk.expectations.isEmpty {
            ledger.measuring = status.measuring.load(ordering: .relaxed)
            for expectation in chunk.expectations where expectation.frame == index {
                ledger.expect(expectation.key, kind: expectation.kind, writtenAt: now, generatedAt: chunk.generatedAt)
            }
        }
        session.pendingFrames -= 1
        session.written += 1
        if session.written == chunk.ends.count {
            session.pending.removeFirst()
            session.written = 0
        }
        return true
    }
}
