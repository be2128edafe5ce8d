import MutewardenJSON

/// The Engine.IO protocol revision: 3 for socket.io 1.x and 2.x servers (Voicenter's), 4 for
/// socket.io 3 and later. Asked for in the handshake URL as `EIO=3` or `EIO=4`.
public enum EngineIOVersion: Int, Sendable, Hashable, CustomStringConvertible {
    case v3 = 3
    case v4 = 4

    public var description: String { "Engine.IO v\(rawValue)" }

    /// The other one: what `auto` tries when a server refuses this one.
    public var other: EngineIOVersion { self == .v3 ? .v4 : .v3 }
}

/// The Engine.IO open packet (`0{...}`): the session id and the heartbeat's timing.
public struct EngineIOHandshake: Sendable, Hashable {
    public var sid: String
    public var pingInterval: Duration
    public var pingTimeout: Duration
    public var upgrades: [String]
    /// Sent by Engine.IO v4 servers that limit a payload (python-engineio does not send it).
    public var maximumPayload: Int?

    public init(sid: String, pingInterval: Duration, pingTimeout: Duration, upgrades: [String] = [], maximumPayload: Int? = nil) {
        self.sid = sid
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.upgrades = upgrades
        self.maximumPayload = maximumPayload
    }

    /// Longer than any real server's heartbeat; bounds the deadlines a server can make us keep.
    public static let longestHeartbeat: Duration = .seconds(86_400)
}

/// One Engine.IO packet, as carried by one WebSocket text frame.
public enum EngineIOPacket: Sendable, Hashable {
    case open(EngineIOHandshake)
    case close
    /// With its payload, answered in the pong (`probe` during a transport upgrade).
    case ping(String)
    case pong(String)
    case message(SocketIOPacket)
    case upgrade
    case noop
}

/// One socket.io packet: what an Engine.IO message (`4…`) carries.
///
/// The grammar (socket.io-protocol): `<type>[<#attachments>-][<namespace>,][<ack id>][<JSON>]`,
/// for instance `42["ExtensionEvent",{…}]`, `42/admin,7["tell"]`, `43 7[…]`, `44{"message":…}`.
public enum SocketIOPacket: Sendable, Hashable {
    /// `40`: from the client, asks to join `namespace` (with an auth payload on v4); from the
    /// server, says it was joined (`{"sid":…}` on v4, nothing on v3).
    case connect(namespace: String, payload: JSONValue?)
    case disconnect(namespace: String)
    case event(namespace: String, name: String, arguments: [JSONValue], ackID: Int?)
    case ack(namespace: String, id: Int, arguments: [JSONValue])
    /// `44`: the connection to `namespace` was refused (a token refused by middleware).
    case connectError(namespace: String, message: String?, data: JSONValue?)

    public var namespace: String {
        switch self {
        case .connect(let namespace, _), .disconnect(let namespace), .event(let namespace, _, _, _),
            .ack(let namespace, _, _), .connectError(let namespace, _, _):
            namespace
        }
    }
}

/// Why a frame is not a packet this client can use. Descriptions name the fault and never quote
/// the frame: a packet may carry card data.
public enum SocketIOPacketError: Error, Sendable, Hashable, CustomStringConvertible {
    case empty
    /// The first byte is no Engine.IO packet type (`0`–`6`); the byte is shown as a number.
    case unknownEngineIOType(UInt8)
    case unknownSocketIOType(UInt8)
    /// `45`/`46` (and binary frames): binary attachments, which no platform of ours sends.
    case binaryNotSupported
    case invalidNamespace
    case invalidAckID
    case invalidJSON(JSONError)
    /// The JSON is valid but not what the packet type needs; the text is fixed.
    case invalidPayload(String)
    case invalidHandshake(String)

    public var description: String {
        switch self {
        case .empty: "an empty frame"
        case .unknownEngineIOType(let byte): "an unknown Engine.IO packet type (byte \(byte))"
        case .unknownSocketIOType(let byte): "an unknown socket.io packet type (byte \(byte))"
        case .binaryNotSupported: "a binary socket.io packet, which this client does not support"
        case .invalidNamespace: "an invalid namespace"
        case .invalidAckID: "an invalid acknowledgement id"
        case .invalidJSON(let error): "\(error)"
        case .invalidPayload(let text): text
        case .invalidHandshake(let text): "an invalid Engine.IO open packet: \(text)"
        }
    }
}

// MARK: Decoding

extension EngineIOPacket {
    /// Decodes one text frame. Every input gives a packet or an error: nothing traps.
    public static func decode(_ frame: String) throws(SocketIOPacketError) -> EngineIOPacket {
        var frame = frame
        // Native strings are contiguous; a bridged one is made so first.
        return try frame.withUTF8 { bytes in Result { () throws(SocketIOPacketError) in try decode(bytes) } }.get()
    }

    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(SocketIOPacketError) -> EngineIOPacket {
        guard let type = bytes.first else { throw .empty }
        let rest = UnsafeBufferPointer(rebasing: bytes[1...])
        switch type {
        case UInt8(ascii: "0"): return .open(try EngineIOHandshake.decode(rest))
        case UInt8(ascii: "1"): return .close
        case UInt8(ascii: "2"): return .ping(String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "3"): return .pong(String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "4"): return .message(try SocketIOPacket.decode(rest))
        case UInt8(ascii: "5"): return .upgrade
        case UInt8(ascii: "6"): return .noop
        default: throw .unknownEngineIOType(type)
        }
    }
}

extension EngineIOHandshake {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(SocketIOPacketError) -> EngineIOHandshake {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes, maximumDepth: 8)
        } catch {
            throw .invalidJSON(error)
        }
        guard case .object = value else { throw .invalidHandshake("not a JSON object") }
        guard let sid = value["sid"]?.string, !sid.isEmpty, sid.utf8.count <= 256 else {
            throw .invalidHandshake("no session id")
        }
        func milliseconds(_ key: String) throws(SocketIOPacketError) -> Duration {
            // Checked: a server's number becomes a duration only if it is a whole, sane one.
            guard let number = value[key]?.int,
                number > 0, number <= Int(EngineIOHandshake.longestHeartbeat.seconds * 1000)
            else {
                throw .invalidHandshake("\(key) is missing or not a positive number of milliseconds up to a day")
            }
            return .milliseconds(number)
        }
        let upgrades = value["upgrades"]?.array?.compactMap(\.string) ?? []
        var maximumPayload: Int?
        if let payload = value["maxPayload"], payload != .null {
            guard let limit = payload.int, limit > 0 else { throw .invalidHandshake("maxPayload is not a positive number") }
            maximumPayload = limit
        }
        return EngineIOHandshake(
            sid: sid, pingInterval: try milliseconds("pingInterval"), pingTimeout: try milliseconds("pingTimeout"),
            upgrades: upgrades, maximumPayload: maximumPayload)
    }
}

extension SocketIOPacket {
    /// The longest namespace accepted; real ones are a word or two.
    static let maximumNamespaceBytes = 256

    /// A packet's head: its type, namespace and ack id, and where its JSON starts.
    struct Head {
        var type: UInt8
        var namespace: String
        var ackID: Int?
        var payloadStart: Int
    }

    static func decodeHead(_ bytes: UnsafeBufferPointer<UInt8>) throws(SocketIOPacketError) -> Head {
        guard let typeByte = bytes.first else { throw .empty }
        guard typeByte >= UInt8(ascii: "0"), typeByte <= UInt8(ascii: "6") else { throw .unknownSocketIOType(typeByte) }
        let type = typeByte &- UInt8(ascii: "0")
        if type == 5 || type == 6 { throw .binaryNotSupported }
        var position = 1
        var namespace = "/"
        if position < bytes.count, bytes[position] == UInt8(ascii: "/") {
            var end = position
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") { end += 1 }
            guard end - position <= maximumNamespaceBytes,
                let name = String(validating: UnsafeBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self),
                name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
            else { throw .invalidNamespace }
            namespace = name
            position = end < bytes.count ? end + 1 : end
        }
        var ackID: Int?
        var digits = 0
        var id = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            // At most 15 digits: an id fits an Int, and no real id comes near.
            digits += 1
            guard digits <= 15 else { throw .invalidAckID }
            id = id * 10 + Int(bytes[position] &- UInt8(ascii: "0"))
            position += 1
        }
        if digits > 0 { ackID = id }
        return Head(type: type, namespace: namespace, ackID: ackID, payloadStart: position)
    }

    /// Decodes a socket.io packet (the part after the Engine.IO `4`).
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(SocketIOPacketError) -> SocketIOPacket {
        let head = try decodeHead(bytes)
        let (type, namespace, ackID, position) = (head.type, head.namespace, head.ackID, head.payloadStart)
        var payload: JSONValue?
        if position < bytes.count {
            do {
                payload = try JSONValue.parse(UnsafeBufferPointer(rebasing: bytes[position...]))
            } catch {
                throw .invalidJSON(error)
            }
        }
        switch type {
        case 0:
            guard ackID == nil else { throw .invalidAckID }
            if let payload {
                guard case .object = payload else { throw .invalidPayload("a connect packet's payload is not an object") }
            }
            return .connect(namespace: namespace, payload: payload)
        case 1:
            return .disconnect(namespace: namespace)
        case 2:
            guard case .array(let items)? = payload, case .string(let name)? = items.first else {
                throw .invalidPayload("an event is not an array that starts with its name")
            }
            return .event(namespace: namespace, name: name, arguments: Array(items.dropFirst()), ackID: ackID)
        case 3:
            guard let ackID else { throw .invalidAckID }
            guard let payload else { return .ack(namespace: namespace, id: ackID, arguments: []) }
            guard case .array(let items) = payload else { throw .invalidPayload("an acknowledgement is not an array") }
            return .ack(namespace: namespace, id: ackID, arguments: items)
        default:
            // socket.io 2 (Engine.IO v3) sends the reason as a JSON string, 3+ as {"message", "data"}.
            switch payload {
            case .string(let message)?:
                return .connectError(namespace: namespace, message: message, data: nil)
            case .object?:
                return .connectError(namespace: namespace, message: payload?["message"]?.string, data: payload?["data"])
            default:
                return .connectError(namespace: namespace, message: nil, data: payload)
            }
        }
    }

    public static func decode(_ text: String) throws(SocketIOPacketError) -> SocketIOPacket {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(SocketIOPacketError) in try decode(bytes) } }.get()
    }

    /// The event in an Engine.IO frame (`42…`) for `namespace`, its arguments left unbuilt in a
    /// `JSONDocument`: nil for every other frame, and for any that ``decode(_:)-(UnsafeBufferPointer<UInt8>)``
    /// would refuse or decode to something else, which the caller then decodes that way (with
    /// its errors). When it answers, the event is the one `decode` makes of the frame
    /// (`fuzz-socketio` checks both).
    public static func decodeEvent(frame bytes: UnsafeBufferPointer<UInt8>, namespace: String) -> SocketIOEvent? {
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "4"), bytes[1] == UInt8(ascii: "2") else { return nil }
        let packet = UnsafeBufferPointer(rebasing: bytes[1...])
        guard let head = try? decodeHead(packet), head.type == 2, head.namespace == namespace, head.payloadStart < packet.count,
            let document = try? JSONDocument.parse(UnsafeBufferPointer(rebasing: packet[head.payloadStart...])),
            let name = document.root.element(at: 0)?.string
        else { return nil }
        return SocketIOEvent(name: name, packet: document, ackID: head.ackID)
    }
}

// MARK: Encoding

extension EngineIOPacket {
    /// The text frame for this packet.
    public var encoded: String {
        switch self {
        case .open(let handshake):
            var members: [(String, JSONValue)] = [
                ("sid", .string(handshake.sid)), ("upgrades", .array(handshake.upgrades.map { .string($0) })),
                ("pingInterval", .number(Double(handshake.pingInterval.nanosecondsClamped / 1_000_000))),
                ("pingTimeout", .number(Double(handshake.pingTimeout.nanosecondsClamped / 1_000_000))),
            ]
            if let limit = handshake.maximumPayload { members.append(("maxPayload", .number(Double(limit)))) }
            return "0" + JSONValue.object(members).serialized
        case .close: return "1"
        case .ping(let payload): return "2" + payload
        case .pong(let payload): return "3" + payload
        case .message(let packet): return "4" + packet.encoded
        case .upgrade: return "5"
        case .noop: return "6"
        }
    }
}

extension SocketIOPacket {
    /// The socket.io text of this packet, without the Engine.IO `4` in front.
    public var encoded: String {
        var text = ""
        text.reserveCapacity(64)
        func head(_ type: Character, _ namespace: String) {
            text.append(type)
            // The default namespace is implied; another is written with its comma.
            if namespace != "/" {
                text += namespace
                text += ","
            }
        }
        switch self {
        case .connect(let namespace, let payload):
            head("0", namespace)
            payload?.write(to: &text)
        case .disconnect(let namespace):
            head("1", namespace)
        case .event(let namespace, let name, let arguments, let ackID):
            head("2", namespace)
            if let ackID { text += String(ackID) }
            JSONValue.array([.string(name)] + arguments).write(to: &text)
        case .ack(let namespace, let id, let arguments):
            head("3", namespace)
            text += String(id)
            JSONValue.array(arguments).write(to: &text)
        case .connectError(let namespace, let message, let data):
            head("4", namespace)
            var members: [(String, JSONValue)] = []
            if let message { members.append(("message", .string(message))) }
            if let data { members.append(("data", data)) }
            JSONValue.object(members).write(to: &text)
        }
        return text
    }
}
