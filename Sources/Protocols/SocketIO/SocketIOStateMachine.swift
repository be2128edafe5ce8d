import MutewardenJSON
import MutewardenModel

/// How a socket.io session ended. Descriptions are for operators: fixed texts, the durations
/// involved, and the server's refusal message cut short; never a packet's content or a token.
public enum SocketIOSessionEnd: Sendable, Hashable, CustomStringConvertible {
    /// This side closed it (`close()`).
    case closedByClient
    /// The server sent a socket.io DISCONNECT (`41`).
    case serverDisconnected
    /// The server closed the Engine.IO session (`1`).
    case engineClosed
    /// The server refused the socket.io CONNECT (`44`): on Voicenter and every token-checking
    /// server, the token is no longer good. A new login is needed, not a blind reconnect.
    case connectRefused(message: String?)
    /// The heartbeat stopped: no pong in time (Engine.IO v3), or no ping in time (v4).
    case heartbeatTimeout(String)
    /// The server did not complete the handshake (open packet, then CONNECT) in time.
    case handshakeTimeout(String)
    /// The server broke the protocol in a way that leaves nothing to go on.
    case protocolViolation(String)
    /// The WebSocket connection ended first; why, in the WebSocket layer's words.
    case transportClosed(String)

    /// Whether the credentials must be renewed before connecting again.
    public var requiresLogin: Bool {
        if case .connectRefused = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .closedByClient: "closed"
        case .serverDisconnected: "the server disconnected the socket.io session"
        case .engineClosed: "the server closed the Engine.IO session"
        case .connectRefused(let message):
            "the server refused the socket.io connection" + (message.map { ": \(SocketIOSessionEnd.shortened($0))" } ?? "")
        case .heartbeatTimeout(let text), .handshakeTimeout(let text), .protocolViolation(let text): text
        case .transportClosed(let reason): "the WebSocket connection ended: \(reason)"
        }
    }

    /// A server's message as a log may show it: one line, at most 120 characters.
    static func shortened(_ text: String) -> String {
        let line = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : Character($0) })
        return line.count > 120 ? line.prefix(120) + "…" : line
    }
}

/// A packet that was skipped. The session goes on; the description never quotes the packet.
public enum SocketIOSkipped: Sendable, Hashable, CustomStringConvertible {
    case malformed(SocketIOPacketError, byteCount: Int)
    /// A binary WebSocket frame: socket.io binary attachments are not supported.
    case binaryFrame(byteCount: Int)
    case otherNamespace(byteCount: Int)
    /// A well-formed packet that makes no sense now; the text is fixed.
    case unexpected(String)

    public var description: String {
        switch self {
        case .malformed(let error, let count): "a malformed packet (\(count) bytes): \(error)"
        case .binaryFrame(let count): "a binary frame (\(count) bytes): binary socket.io packets are not supported"
        case .otherNamespace(let count): "a packet (\(count) bytes) for another namespace"
        case .unexpected(let text): text
        }
    }
}

/// An event the server emitted. A received event keeps its arguments as the frame's parsed but
/// unbuilt `JSONDocument`: a reader takes ``payloadNode`` and reads only what it uses, and
/// ``arguments`` builds them on demand.
public struct SocketIOEvent: Sendable, Hashable {
    public var name: String
    /// Set when the server waits for an acknowledgement (`acknowledge(id:arguments:)`).
    public var ackID: Int?
    private var storage: Storage

    private enum Storage: Sendable {
        case values([JSONValue])
        /// The packet's whole array, `[name, arguments…]`.
        case packet(JSONDocument)
    }

    public init(name: String, arguments: [JSONValue], ackID: Int? = nil) {
        self.name = name
        self.ackID = ackID
        storage = .values(arguments)
    }

    /// An event decoded from `packet`, a document whose value is an array that starts with `name`.
    init(name: String, packet: JSONDocument, ackID: Int?) {
        self.name = name
        self.ackID = ackID
        storage = .packet(packet)
    }

    public var arguments: [JSONValue] {
        get {
            switch storage {
            case .values(let values): values
            case .packet(let document): document.root.elements.map { Array($0.dropFirst().map(\.value)) } ?? []
            }
        }
        set { storage = .values(newValue) }
    }

    /// The first argument: what platforms send an event with (`42["ExtensionEvent",{…}]`).
    public var payload: JSONValue {
        switch storage {
        case .values(let values): values.first ?? .null
        case .packet: payloadNode.value
        }
    }

    /// The first argument, unbuilt (`null` when there is none).
    public var payloadNode: JSONNode {
        switch storage {
        case .values(let values): JSONDocument(values.first ?? .null).root
        case .packet(let document): document.root.element(at: 1) ?? JSONDocument.null.root
        }
    }

    public static func == (lhs: SocketIOEvent, rhs: SocketIOEvent) -> Bool {
        lhs.name == rhs.name && lhs.ackID == rhs.ackID && lhs.arguments == rhs.arguments
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(ackID)
        hasher.combine(arguments)
    }
}

/// A socket.io session with the I/O taken out: each input (a frame received, the time passing, an
/// emit) returns the one ``Action`` its driver must carry out. It reads no clock (the time is an
/// argument) and owns no socket, so every sequence of packets and times can be tested without a
/// server, as async-http-client tests its connection state machines.
///
/// Engine.IO v3 and v4 differ in who keeps the heartbeat and who starts the socket.io session:
///
/// | | v3 (socket.io 1.x/2.x) | v4 (socket.io 3+) |
/// |---|---|---|
/// | heartbeat | the client pings every `pingInterval` and wants a pong within `pingTimeout` | the server pings; no ping within `pingInterval + pingTimeout` means the connection is gone |
/// | socket.io CONNECT | the server sends `40` by itself | the client sends `40` (with its auth), the server answers `40{"sid"}` or `44{"message"}` |
///
/// A `44` ends the session from this side (the server keeps the Engine.IO session open and
/// pinging): ``Action/close(goodbye:end:)`` with ``SocketIOSessionEnd/connectRefused(message:)``.
public struct SocketIOStateMachine: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var version: EngineIOVersion
        public var namespace: String
        /// The CONNECT payload (Engine.IO v4 only): a token, for servers that take it there.
        public var auth: JSONValue?
        /// How long the open packet, then the socket.io CONNECT, may each take.
        public var handshakeTimeout: Duration

        public init(
            version: EngineIOVersion, namespace: String = "/", auth: JSONValue? = nil, handshakeTimeout: Duration = .seconds(10)
        ) {
            self.version = version
            self.namespace = namespace
            self.auth = auth
            self.handshakeTimeout = handshakeTimeout
        }
    }

    /// What the driver must do next.
    public enum Action: Sendable, Hashable {
        case none
        /// Write this text frame.
        case send(String)
        /// The socket.io session is up: report it. `sid` is the socket.io session id on v4 and
        /// the Engine.IO one on v3.
        case connected(sid: String, handshake: EngineIOHandshake)
        case event(SocketIOEvent)
        /// The server acknowledged an emit made with an ack id.
        case ack(id: Int, arguments: [JSONValue])
        /// Report this (it never holds packet content) and go on.
        case skip(SocketIOSkipped)
        /// Write `goodbye`, then close the WebSocket connection (at once for a heartbeat
        /// timeout, cleanly otherwise), and report `end` when it has closed.
        case close(goodbye: [String], end: SocketIOSessionEnd)
    }

    public enum Phase: Sendable, Hashable {
        /// The WebSocket is up; the Engine.IO open packet is due.
        case awaitingOpen
        /// Engine.IO is open; the socket.io CONNECT is due.
        case awaitingConnect
        case connected
        /// Closing: nothing more is delivered; the end is known.
        case closing
        case closed
    }

    public let configuration: Configuration
    public private(set) var phase: Phase = .awaitingOpen
    public private(set) var handshake: EngineIOHandshake?
    /// How the session ended, or is ending; nil while it runs.
    public private(set) var end: SocketIOSessionEnd?
    private var handshakeDeadline: MonotonicInstant?
    /// v3: when the next ping goes out (nil while one is unanswered).
    private var nextPing: MonotonicInstant?
    /// v3: the pong to the ping in flight is due by then.
    private var pongDeadline: MonotonicInstant?
    private var lastPingSent: MonotonicInstant?
    /// v4: the server's next ping is due by then.
    private var serverPingDeadline: MonotonicInstant?
    private var nextAckID = 0

    /// A session whose WebSocket connection came up at `now`.
    public init(configuration: Configuration, transportUpAt now: MonotonicInstant) {
        self.configuration = configuration
        handshakeDeadline = now + configuration.handshakeTimeout
    }

    /// The earliest instant at which ``timerFired(at:unreadFrames:)`` has something to do; nil for never.
    public var nextDeadline: MonotonicInstant? {
        guard phase != .closing && phase != .closed else { return nil }
        return [handshakeDeadline, nextPing, pongDeadline, serverPingDeadline].compactMap { $0 }.min()
    }

    public var isConnected: Bool { phase == .connected }

    // MARK: Inputs

    /// A text frame arrived.
    public mutating func received(text: String, at now: MonotonicInstant) -> Action {
        guard phase != .closing && phase != .closed else { return .none }
        if phase == .connected {
            // Nearly every frame of a live session is an event: its arguments are validated but
            // not built. Any other frame, or one this path refuses, takes the full decoder below,
            // which then answers as it always has.
            var frame = text
            let namespace = configuration.namespace
            if let event = frame.withUTF8({ SocketIOPacket.decodeEvent(frame: $0, namespace: namespace) }) { return .event(event) }
        }
        let packet: EngineIOPacket
        do {
            packet = try EngineIOPacket.decode(text)
        } catch {
            if phase == .awaitingOpen {
                return close(.protocolViolation("the server's first packet was not an Engine.IO open packet: \(error)"))
            }
            return .skip(.malformed(error, byteCount: text.utf8.count))
        }
        return received(packet, byteCount: text.utf8.count, at: now)
    }

    /// A binary frame arrived: skipped, since binary attachments are not supported.
    public mutating func received(binaryByteCount count: Int, at now: MonotonicInstant) -> Action {
        guard phase != .closing && phase != .closed else { return .none }
        return .skip(.binaryFrame(byteCount: count))
    }

    /// A decoded packet arrived (``received(text:at:)`` decodes, then calls this).
    public mutating func received(_ packet: EngineIOPacket, byteCount: Int, at now: MonotonicInstant) -> Action {
        guard phase != .closing && phase != .closed else { return .none }
        switch packet {
        case .open(let handshake):
            guard phase == .awaitingOpen else { return .skip(.unexpected("a second Engine.IO open packet")) }
            return opened(handshake, at: now)
        case .close:
            return close(.engineClosed)
        case .ping(let payload):
            if configuration.version == .v4, let handshake {
                serverPingDeadline = now + handshake.pingInterval + handshake.pingTimeout
            }
            // A v3 server never pings; answering one that does costs nothing.
            return .send(EngineIOPacket.pong(payload).encoded)
        case .pong:
            if configuration.version == .v3, pongDeadline != nil {
                pongDeadline = nil
                // Keep the cadence: the next ping is due an interval after the last one left.
                if let handshake, let sent = lastPingSent { nextPing = max(now, sent + handshake.pingInterval) }
            }
            return .none
        case .upgrade, .noop:
            return .none
        case .message(let message):
            guard phase != .awaitingOpen else {
                return close(.protocolViolation("the server sent a socket.io packet before the Engine.IO open packet"))
            }
            guard message.namespace == configuration.namespace else { return .skip(.otherNamespace(byteCount: byteCount)) }
            return received(message)
        }
    }

    private mutating func opened(_ handshake: EngineIOHandshake, at now: MonotonicInstant) -> Action {
        self.handshake = handshake
        phase = .awaitingConnect
        handshakeDeadline = now + configuration.handshakeTimeout
        switch configuration.version {
        case .v3:
            nextPing = now + handshake.pingInterval
            // The server joins the default namespace by itself; another must be asked for.
            guard configuration.namespace != "/" else { return .none }
            return .send(EngineIOPacket.message(.connect(namespace: configuration.namespace, payload: nil)).encoded)
        case .v4:
            serverPingDeadline = now + handshake.pingInterval + handshake.pingTimeout
            return .send(EngineIOPacket.message(.connect(namespace: configuration.namespace, payload: configuration.auth)).encoded)
        }
    }

    private mutating func received(_ message: SocketIOPacket) -> Action {
        switch message {
        case .connect(_, let payload):
            guard phase == .awaitingConnect, let handshake else { return .skip(.unexpected("a second socket.io CONNECT")) }
            phase = .connected
            handshakeDeadline = nil
            let sid = payload?["sid"]?.string.flatMap { $0.isEmpty || $0.utf8.count > 256 ? nil : $0 } ?? handshake.sid
            return .connected(sid: sid, handshake: handshake)
        case .connectError(_, let message, _):
            return close(.connectRefused(message: message))
        case .disconnect:
            return close(.serverDisconnected)
        case .event(_, let name, let arguments, let ackID):
            guard phase == .connected else { return .skip(.unexpected("an event before the socket.io CONNECT")) }
            return .event(SocketIOEvent(name: name, arguments: arguments, ackID: ackID))
        case .ack(_, let id, let arguments):
            guard phase == .connected else { return .skip(.unexpected("an acknowledgement before the socket.io CONNECT")) }
            return .ack(id: id, arguments: arguments)
        }
    }

    /// The time has come for ``nextDeadline``: a ping to send, or a deadline missed.
    ///
    /// - Parameter unreadFrames: whether frames have arrived that the consumer has not taken yet.
    ///   Frames are run through the machine as the consumer takes them, so a consumer that fell
    ///   behind may hold the very pong (v3) or ping (v4) a heartbeat deadline waits for: the
    ///   deadline then moves on by `pingTimeout` instead of ending the session. The WebSocket
    ///   layer does the same for its own pongs while reading is paused.
    public mutating func timerFired(at now: MonotonicInstant, unreadFrames: Bool = false) -> Action {
        guard phase != .closing && phase != .closed else { return .none }
        if let deadline = handshakeDeadline, now >= deadline {
            let what = phase == .awaitingOpen ? "Engine.IO open packet" : "socket.io CONNECT"
            return close(.handshakeTimeout("no \(what) within \(configuration.handshakeTimeout.compact)"))
        }
        guard let handshake else { return .none }
        if let deadline = pongDeadline, now >= deadline {
            guard !unreadFrames else {
                pongDeadline = now + handshake.pingTimeout
                return .none
            }
            return close(.heartbeatTimeout("no pong within \(handshake.pingTimeout.compact) of a ping"))
        }
        if let deadline = serverPingDeadline, now >= deadline {
            guard !unreadFrames else {
                serverPingDeadline = now + handshake.pingTimeout
                return .none
            }
            return close(
                .heartbeatTimeout("no ping from the server within \((handshake.pingInterval + handshake.pingTimeout).compact)"))
        }
        if configuration.version == .v3, let due = nextPing, now >= due {
            // One ping in flight at a time: its pong deadline decides.
            nextPing = nil
            lastPingSent = now
            pongDeadline = now + handshake.pingTimeout
            return .send(EngineIOPacket.ping("").encoded)
        }
        return .none
    }

    /// The frame for an event to the server, and the ack id it was given if `wantsAck`.
    /// Throws ``SocketIOError/notConnected`` unless the session is connected.
    public mutating func emit(_ name: String, _ arguments: [JSONValue], wantsAck: Bool = false) throws(SocketIOError)
        -> (frame: String, ackID: Int?)
    {
        guard phase == .connected else { throw .notConnected }
        var ackID: Int?
        if wantsAck {
            ackID = nextAckID
            // Ids wrap well inside what every implementation parses (JavaScript's numbers).
            nextAckID = nextAckID >= 1 << 31 ? 0 : nextAckID + 1
        }
        let packet = SocketIOPacket.event(namespace: configuration.namespace, name: name, arguments: arguments, ackID: ackID)
        return (EngineIOPacket.message(packet).encoded, ackID)
    }

    /// The frame that acknowledges the server's event `id`.
    public func acknowledge(id: Int, arguments: [JSONValue]) throws(SocketIOError) -> String {
        guard phase == .connected else { throw .notConnected }
        return EngineIOPacket.message(.ack(namespace: configuration.namespace, id: id, arguments: arguments)).encoded
    }

    /// This side ends the session: a socket.io DISCONNECT if it was connected, then a clean close.
    public mutating func close() -> Action {
        guard phase != .closing && phase != .closed else { return .none }
        let goodbye =
            phase == .connected ? [EngineIOPacket.message(.disconnect(namespace: configuration.namespace)).encoded] : []
        return close(.closedByClient, goodbye: goodbye)
    }

    /// The WebSocket connection has ended, for `reason`: returns how the session ended, which is
    /// the reason this side gave if it was closing.
    public mutating func transportClosed(reason: String) -> SocketIOSessionEnd {
        let end = self.end ?? .transportClosed(reason)
        self.end = end
        phase = .closed
        clearDeadlines()
        return end
    }

    private mutating func close(_ end: SocketIOSessionEnd, goodbye: [String] = []) -> Action {
        self.end = end
        phase = .closing
        clearDeadlines()
        return .close(goodbye: goodbye, end: end)
    }

    private mutating func clearDeadlines() {
        handshakeDeadline = nil
        nextPing = nil
        pongDeadline = nil
        serverPingDeadline = nil
    }
}
