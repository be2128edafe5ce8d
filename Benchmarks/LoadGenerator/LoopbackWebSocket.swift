import Foundation
import MutewardenJSON

/// One WebSocket connection (RFC 6455) to the generator's own server, with blocking calls: the
/// upgrade, masked text frames out, whole text messages in (fragments joined, pings answered).
/// Just enough client for the websocket reflex, which must cost next to nothing itself; libwebsockets
/// would add the service thread and hand-off that the daemon's figure includes and the floor must not.
final class LoopbackWebSocket {
    private let socket: LoopbackSocket
    /// Bytes read and not yet taken, from `start` on.
    private var pending: [UInt8] = []
    private var start = 0
    /// Any key does: the server only answers it with a hash that this client never checks.
    private static let key = "bXV0ZXdhcmRlbi1yZWZsZXg="
    private static let mask: [UInt8] = [0x6D, 0x77, 0x72, 0x66]

    init(port: Int, path: String, headers: [String]) throws {
        socket = try LoopbackSocket(port: port)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(Self.key)\r\nSec-WebSocket-Version: 13\r\n"
        for header in headers { request += header + "\r\n" }
        try socket.send(Array((request + "\r\n").utf8))
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = find(pending, separator) {
                let head = String(decoding: pending[..<end], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 101") else {
                    throw LoopbackHTTP.Failure(description: "the upgrade was refused: \(head.prefix(80))")
                }
                start = end + 4
                return
            }
            try fill()
        }
    }

    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, Array(text.utf8))
    }

    /// The next whole text message.
    func nextMessage() throws -> [UInt8] {
        var message: [UInt8] = []
        while true {
            guard let frame = nextFrame() else {
                try fill()
                continue
            }
            switch frame.opcode {
            case 0x0, 0x1:
                message.append(contentsOf: frame.payload)
                if frame.final { return message }
            case 0x8: throw LoopbackHTTP.Failure(description: "the server closed the websocket")
            case 0x9: try sendFrame(opcode: 0xA, frame.payload)
            default: break  // pongs, and anything this client never asked for
            }
        }
    }

    /// A whole frame from `pending`, taken; nil until all of it has arrived.
    private func nextFrame() -> (opcode: UInt8, final: Bool, payload: [UInt8])? {
        let available = pending.count - start
        guard available >= 2 else { return nil }
        let first = pending[start]
        let second = pending[start + 1]
        var header = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard available >= 4 else { return nil }
            length = Int(pending[start + 2]) << 8 | Int(pending[start + 3])
            header = 4
        } else if length == 127 {
            guard available >= 10 else { return nil }
            length = (0..<8).reduce(0) { $0 << 8 | Int(pending[start + 2 + $1]) }
            header = 10
        }
        let masked = second & 0x80 != 0
        let maskStart = start + header
        if masked { header += 4 }
        guard available >= header + length else { return nil }
        var payload = Array(pending[(start + header)..<(start + header + length)])
        if masked {
            for index in payload.indices { payload[index] ^= pending[maskStart + index % 4] }
        }
        start += header + length
        return (first & 0x0F, first & 0x80 != 0, payload)
    }

    private func sendFrame(opcode: UInt8, _ payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        frame += Self.mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ Self.mask[index & 3]) }
        try socket.send(frame)
    }

    private func fill() throws {
        if start > 0 {
            pending.removeFirst(start)
            start = 0
        }
        try socket.receive(appendingTo: &pending)
    }
}

/// A CometD websocket client reduced to the loop: the upgrade with the session cookie and Basic
/// credentials (as the daemon sends them), handshake, subscribe to `/v2/me/calls`, one
/// `/meta/connect` held at a time; each message handed back unparsed.
final class BayeuxWebSocket {
    private let socket: LoopbackWebSocket
    private let clientID: String
    private var messageID = 3

    init(port: Int, headers: [String]) throws {
        socket = try LoopbackWebSocket(port: port, path: "/api/v2/notifications", headers: headers)
        try socket.sendText(
            #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]"#)
        var clientID: String?
        while clientID == nil {
            let replies = try JSONValue.parse(socket.nextMessage()).array ?? []
            clientID = replies.first { $0["channel"]?.string == "/meta/handshake" }?["clientId"]?.string
        }
        self.clientID = clientID!
        try socket.sendText(
            #"[{"channel":"/meta/subscribe","clientId":"\#(self.clientID)","subscription":"/v2/me/calls","id":"2"}]"#)
        try connect()
    }

    /// The next message; a `/meta/connect` reply is answered with the next connect, as CometD
    /// clients do, before it is handed back.
    func next() throws -> [UInt8] {
        let message = try socket.nextMessage()
        if Self.isConnectReply(message) { try connect() }
        return message
    }

    private func connect() throws {
        defer { messageID += 1 }
        try socket.sendText(
            #"[{"channel":"/meta/connect","clientId":"\#(clientID)","connectionType":"websocket","id":"\#(messageID)"}]"#)
    }

    /// Cheap enough to run on every frame: event frames start with `[{"channel":"/v2/me/calls"`.
    private static func isConnectReply(_ message: [UInt8]) -> Bool {
        let prefix = Array(#"[{"channel":"/meta/connect""#.utf8)
        return message.count >= prefix.count && message[..<prefix.count].elementsEqual(prefix)
    }
}
