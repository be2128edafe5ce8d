import MutewardenJSON
import Testing

@testable import MutewardenSocketIO

@Suite struct PacketTests {
    @Test func decodesTheOpenPacketsOfBothVersions() throws {
        // python-engineio 3.14 (no maxPayload) and a socket.io 4 server (with it).
        let v3 = try EngineIOPacket.decode(#"0{"sid":"a1b2","upgrades":[],"pingTimeout":60000,"pingInterval":25000}"#)
        #expect(v3 == .open(EngineIOHandshake(sid: "a1b2", pingInterval: .seconds(25), pingTimeout: .seconds(60))))
        let v4 = try EngineIOPacket.decode(
            #"0{"sid":"x","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)
        #expect(
            v4
                == .open(
                    EngineIOHandshake(
                        sid: "x", pingInterval: .seconds(25), pingTimeout: .seconds(20), upgrades: ["websocket"],
                        maximumPayload: 1_000_000)))
    }

    @Test(arguments: [
        (#"0"#, "invalid JSON at byte 0: unexpected end of document"),
        (#"0[]"#, "an invalid Engine.IO open packet: not a JSON object"),
        (#"0{"pingInterval":1,"pingTimeout":1}"#, "an invalid Engine.IO open packet: no session id"),
        (
            #"0{"sid":"s","pingInterval":-5,"pingTimeout":1}"#,
            "an invalid Engine.IO open packet: pingInterval is missing or not a positive number of milliseconds up to a day"
        ),
        (
            #"0{"sid":"s","pingInterval":1e300,"pingTimeout":1}"#,
            "an invalid Engine.IO open packet: pingInterval is missing or not a positive number of milliseconds up to a day"
        ),
        (
            #"0{"sid":"s","pingInterval":2.5,"pingTimeout":1}"#,
            "an invalid Engine.IO open packet: pingInterval is missing or not a positive number of milliseconds up to a day"
        ),
        (
            #"0{"sid":"s","pingInterval":1000,"pingTimeout":"20000"}"#,
            "an invalid Engine.IO open packet: pingTimeout is missing or not a positive number of milliseconds up to a day"
        ),
        (
            #"0{"sid":"s","pingInterval":1000,"pingTimeout":1000,"maxPayload":-1}"#,
            "an invalid Engine.IO open packet: maxPayload is not a positive number"
        ),
    ])
    func refusesBadOpenPackets(frame: String, reason: String) {
        #expect(throws: SocketIOPacketError.self) { try EngineIOPacket.decode(frame) }
        do {
            _ = try EngineIOPacket.decode(frame)
        } catch {
            #expect("\(error)" == reason)
        }
    }

    @Test func decodesEngineIOControlPackets() throws {
        #expect(try EngineIOPacket.decode("1") == .close)
        #expect(try EngineIOPacket.decode("2") == .ping(""))
        #expect(try EngineIOPacket.decode("2probe") == .ping("probe"))
        #expect(try EngineIOPacket.decode("3") == .pong(""))
        #expect(try EngineIOPacket.decode("5") == .upgrade)
        #expect(try EngineIOPacket.decode("6") == .noop)
        #expect(throws: SocketIOPacketError.empty) { try EngineIOPacket.decode("") }
        #expect(throws: SocketIOPacketError.unknownEngineIOType(UInt8(ascii: "9"))) { try EngineIOPacket.decode("9") }
        #expect(throws: SocketIOPacketError.unknownEngineIOType(UInt8(ascii: "x"))) { try EngineIOPacket.decode("x42") }
    }

    @Test func decodesSocketIOPackets() throws {
        #expect(try EngineIOPacket.decode("40") == .message(.connect(namespace: "/", payload: nil)))
        #expect(
            try EngineIOPacket.decode(#"40{"sid":"abc"}"#)
                == .message(.connect(namespace: "/", payload: .object([("sid", .string("abc"))]))))
        #expect(try EngineIOPacket.decode("40/admin,") == .message(.connect(namespace: "/admin", payload: nil)))
        #expect(try EngineIOPacket.decode("40/admin") == .message(.connect(namespace: "/admin", payload: nil)))
        #expect(try EngineIOPacket.decode("41") == .message(.disconnect(namespace: "/")))
        #expect(try EngineIOPacket.decode("41/admin,") == .message(.disconnect(namespace: "/admin")))
        #expect(
            try EngineIOPacket.decode(#"42["ExtensionEvent",{"reason":"NEWCALL"}]"#)
                == .message(
                    .event(
                        namespace: "/", name: "ExtensionEvent", arguments: [.object([("reason", .string("NEWCALL"))])],
                        ackID: nil)))
        #expect(
            try EngineIOPacket.decode(#"42/admin,17["tell",1,"two"]"#)
                == .message(.event(namespace: "/admin", name: "tell", arguments: [.number(1), .string("two")], ackID: 17)))
        #expect(try EngineIOPacket.decode(#"42["ping"]"#) == .message(.event(namespace: "/", name: "ping", arguments: [], ackID: nil)))
        #expect(try EngineIOPacket.decode(#"433["ok"]"#) == .message(.ack(namespace: "/", id: 3, arguments: [.string("ok")])))
        #expect(try EngineIOPacket.decode("430") == .message(.ack(namespace: "/", id: 0, arguments: [])))
        #expect(
            try EngineIOPacket.decode(#"44{"message":"token refused","data":{"code":1}}"#)
                == .message(
                    .connectError(namespace: "/", message: "token refused", data: .object([("code", .number(1))]))))
        // socket.io 2 sends the reason as a JSON string.
        #expect(
            try EngineIOPacket.decode(#"44"Not authorized""#)
                == .message(.connectError(namespace: "/", message: "Not authorized", data: nil)))
        #expect(try EngineIOPacket.decode("44") == .message(.connectError(namespace: "/", message: nil, data: nil)))
    }

    @Test(arguments: [
        ("4", SocketIOPacketError.empty),
        ("49", .unknownSocketIOType(UInt8(ascii: "9"))),
        ("4x", .unknownSocketIOType(UInt8(ascii: "x"))),
        (#"451-["file",{"_placeholder":true,"num":0}]"#, .binaryNotSupported),
        (#"461-[{"_placeholder":true,"num":0}]"#, .binaryNotSupported),
        (#"42"#, .invalidPayload("an event is not an array that starts with its name")),
        (#"42[]"#, .invalidPayload("an event is not an array that starts with its name")),
        (#"42[1,2]"#, .invalidPayload("an event is not an array that starts with its name")),
        (#"42{"a":1}"#, .invalidPayload("an event is not an array that starts with its name")),
        (#"43["late"]"#, .invalidAckID),
        (#"431{"a":1}"#, .invalidPayload("an acknowledgement is not an array")),
        (#"4012{"sid":"x"}"#, .invalidAckID),
        (#"40[1]"#, .invalidPayload("a connect packet's payload is not an object")),
        (#"421234567890123456["x"]"#, .invalidAckID),
        ("42/\u{1}bad,[\"x\"]", .invalidNamespace),
        ("42/" + String(repeating: "n", count: 300) + ",[\"x\"]", .invalidNamespace),
    ])
    func refusesMalformedSocketIOPackets(frame: String, error: SocketIOPacketError) {
        #expect(throws: error) { try EngineIOPacket.decode(frame) }
    }

    @Test func reportsInvalidJSONWithoutQuotingIt() {
        let frame = #"42["ExtensionEvent",{"customdata":"4111 1111 1111 1111""#
        do {
            _ = try EngineIOPacket.decode(frame)
            Issue.record("decoded")
        } catch {
            guard case .invalidJSON = error else {
                Issue.record("not a JSON error: \(error)")
                return
            }
            #expect(!"\(error)".contains("4111"))
            #expect(!"\(error)".contains("customdata"))
        }
    }

    @Test func encodesWhatItDecodes() throws {
        let packets: [EngineIOPacket] = [
            .close, .ping(""), .pong("probe"), .upgrade, .noop,
            .open(EngineIOHandshake(sid: "s", pingInterval: .seconds(25), pingTimeout: .seconds(5))),
            .message(.connect(namespace: "/", payload: nil)),
            .message(.connect(namespace: "/", payload: .object([("token", .string("t"))]))),
            .message(.connect(namespace: "/ns", payload: nil)),
            .message(.disconnect(namespace: "/")),
            .message(.event(namespace: "/", name: "keepalive", arguments: [.string("tok")], ackID: nil)),
            .message(.event(namespace: "/ns", name: "é \"quoted\"", arguments: [.null, .bool(true)], ackID: 42)),
            .message(.ack(namespace: "/", id: 7, arguments: [])),
            .message(.connectError(namespace: "/", message: "no", data: nil)),
        ]
        for packet in packets {
            #expect(try EngineIOPacket.decode(packet.encoded) == packet, "\(packet.encoded)")
        }
        #expect(EngineIOPacket.message(.connect(namespace: "/", payload: nil)).encoded == "40")
        #expect(EngineIOPacket.message(.connect(namespace: "/ns", payload: nil)).encoded == "40/ns,")
        #expect(
            EngineIOPacket.message(.event(namespace: "/", name: "keepalive", arguments: [.string("tok")], ackID: nil)).encoded
                == #"42["keepalive","tok"]"#)
        #expect(EngineIOPacket.message(.event(namespace: "/", name: "e", arguments: [], ackID: 12)).encoded == #"4212["e"]"#)
        #expect(EngineIOPacket.message(.disconnect(namespace: "/")).encoded == "41")
    }

    @Test func noInputTraps() {
        // Every prefix of realistic frames, and a spread of hostile ones: a value or an error, always.
        var frames = [
            #"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#,
            #"42/admin,17["tell",{"a":[1,2,{"b":null}]}]"#, #"44{"message":"m"}"#, #"433["ok"]"#,
            "4" + String(repeating: "[", count: 5000), "42" + String(repeating: "9", count: 100), "42/", "42/,", "0{",
            "\u{0}", "4\u{FF}", "2\u{1F600}",
        ]
        for frame in frames { frames += (0...frame.count).map { String(frame.prefix($0)) } }
        for frame in frames { _ = try? EngineIOPacket.decode(frame) }
    }
}
