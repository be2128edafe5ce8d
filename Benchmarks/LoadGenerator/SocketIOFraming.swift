import MutewardenJSON

/// The Engine.IO revision a session speaks, from the handshake's `EIO` query parameter. The two
/// differ in who keeps the heartbeat and who starts the socket.io session, which is all the
/// server side has to know (engine.io-protocol, branches v3 and main).
enum EngineIOVersion: Int, Sendable {
    /// socket.io 1.x and 2.x, Voicenter's own: the client pings, the server opens `/` by itself.
    case v3 = 3
    /// socket.io 3 and later: the server pings, the client asks for `/` with `40`.
    case v4 = 4
}

/// A text frame from a socket.io client, read as far as the server side of a run needs.
enum ClientPacket: Equatable {
    /// `2`: a v3 client's heartbeat (its payload, e.g. `probe`, comes back in the pong).
    case ping(payload: [UInt8])
    /// `3`: a v4 client's answer to the server's heartbeat.
    case pong
    /// `1`: the client closes the Engine.IO session.
    case close
    /// `40`, `40/admin,` or `40{auth}`: a v4 client asks for a namespace.
    case connect(namespace: String)
    /// `41`: the client leaves a namespace.
    case disconnect(namespace: String)
    /// `42["name",…]`, with an ack id when the client wants one (`4217[…]`).
    case event(namespace: String, name: String, arguments: [JSONValue], ack: Int?)
    /// Anything else the grammar allows (acks, `6` noop): counted and ignored.
    case ignored
    /// Not socket.io: a wrong type byte, a binary packet, an event whose JSON does not parse.
    case malformed
}

/// Engine.IO and socket.io packets as one WebSocket text frame each: what the server reads and
/// writes. The grammar is `<engine type>[<socket.io type>[<#attachments>-][<namespace>,][<ack id>][JSON]]`.
enum SocketIOFraming {
    static func parse(_ frame: [UInt8]) -> ClientPacket {
        guard let engineType = frame.first else { return .malformed }
        switch engineType {
        case UInt8(ascii: "1"): return .close
        case UInt8(ascii: "2"): return .ping(payload: Array(frame.dropFirst()))
        case UInt8(ascii: "3"): return .pong
        case UInt8(ascii: "6"): return .ignored
        case UInt8(ascii: "4"): break
        default: return .malformed
        }
        guard frame.count >= 2 else { return .malformed }
        var index = 2
        // Binary packets (5, 6) announce attachments this server never expects.
        if frame[1] == UInt8(ascii: "5") || frame[1] == UInt8(ascii: "6") { return .malformed }
        var namespace = "/"
        if index < frame.count, frame[index] == UInt8(ascii: "/") {
            guard let comma = frame[index...].firstIndex(of: UInt8(ascii: ",")) else {
                // `41/admin` with nothing after it: the namespace runs to the end.
                return packet(type: frame[1], namespace: String(decoding: frame[index...], as: UTF8.self), ack: nil, json: [])
            }
            namespace = String(decoding: frame[index..<comma], as: UTF8.self)
            index = comma + 1
        }
        var ack: Int?
        while index < frame.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(frame[index]) {
            ack = (ack ?? 0) * 10 + Int(frame[index] - UInt8(ascii: "0"))
            guard ack! < 1 << 40 else { return .malformed }
            index += 1
        }
        return packet(type: frame[1], namespace: namespace, ack: ack, json: frame[index...])
    }

    private static func packet(type: UInt8, namespace: String, ack: Int?, json: ArraySlice<UInt8>) -> ClientPacket {
        switch type {
        case UInt8(ascii: "0"): return .connect(namespace: namespace)
        case UInt8(ascii: "1"): return .disconnect(namespace: namespace)
        case UInt8(ascii: "2"):
            guard let arguments = (try? JSONValue.parse(json))?.array, let name = arguments.first?.string else { return .malformed }
            return .event(namespace: namespace, name: name, arguments: Array(arguments.dropFirst()), ack: ack)
        case UInt8(ascii: "3"), UInt8(ascii: "4"): return .ignored
        default: return .malformed
        }
    }

    // MARK: - What the server writes

    /// The Engine.IO open packet. Neither python-socketio 4.6 nor 5.x sends `maxPayload`
    /// (platform-apis.md §3), so neither does this server: a client must not need it.
    static func open(sid: String, pingInterval: Int, pingTimeout: Int) -> [UInt8] {
        Array(#"0{"sid":"\#(sid)","upgrades":[],"pingInterval":\#(pingInterval),"pingTimeout":\#(pingTimeout)}"#.utf8)
    }

    /// The socket.io CONNECT of `/`: unasked on v3, the answer to `40` on v4.
    static func connected(_ version: EngineIOVersion, sid: String) -> [UInt8] {
        version == .v3 ? Array("40".utf8) : Array(#"40{"sid":"\#(sid)"}"#.utf8)
    }

    /// A CONNECT refused, for a namespace this server does not have.
    static func connectError(_ version: EngineIOVersion, namespace: String) -> [UInt8] {
        // socket.io 2 sends the reason as a JSON string, 3 and later as {"message"}.
        let reason = version == .v3 ? #""Invalid namespace""# : #"{"message":"Invalid namespace"}"#
        return Array("44\(namespace),\(reason)".utf8)
    }

    static let ping: [UInt8] = [UInt8(ascii: "2")]

    static func pong(payload: [UInt8]) -> [UInt8] { [UInt8(ascii: "3")] + payload }

    /// `43<id>[]`: an empty ack, for a client that asked for one.
    static func ack(_ id: Int, namespace: String) -> [UInt8] {
        Array("43\(namespace == "/" ? "" : namespace + ",")\(id)[]".utf8)
    }

    /// Starts `42["name",` in `out`; the caller writes the data and then `endEvent`.
    @inline(__always)
    static func beginEvent(_ name: StaticString, into out: inout ByteWriter) {
        out.raw(#"42[""#)
        out.raw(name)
        out.raw(#"","#)
    }

    @inline(__always)
    static func endEvent(into out: inout ByteWriter) { out.byte("]") }
}
