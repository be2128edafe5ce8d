import Foundation
import MutewardenJSON
import MutewardenModel
import MutewardenSocketIO
import MutewardenSupervisor
import MutewardenTesting
import MutewardenWebSocket
import Testing

/// An ExtensionEvent shaped as Voicenter sends it, trimmed.
let extensionEvent: JSONValue = .object([
    ("eventName", .string("ExtensionEvent")), ("reason", .string("NEWCALL")),
    (
        "data",
        .object([
            ("extenUser", .string("KGpK4iWq")), ("number", .number(201)),
            (
                "calls",
                .array([
                    .object([
                        ("ivrid", .string("1234567890123456789-123")), ("callstatus", .string("Ringing")),
                        ("direction", .string("Incoming")), ("recording", .object([("IsMuted", .number(0))])),
                    ])
                ])
            ),
        ])
    ),
    ("servertime", .number(1_700_000_000)),
])

extension SocketIOPeerTests {
    @Test(arguments: [EngineIOVersion.v3, .v4])
    func connectsAndReceivesEvents(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version)
        try await withPeer(peer.process) { _ in
            let (client, reports) = try makeClient(peer)
            let session = try await client.connect()
            #expect(session.info.version == version)
            #expect(session.info.address == "127.0.0.1")
            #expect(!session.info.sid.isEmpty)
            try await peer.waitForLine("connected no-auth")
            try please(
                session,
                .object([("action", .string("emit")), ("event", .string("ExtensionEvent")), ("data", extensionEvent), ("count", .number(3))]))
            for _ in 0..<3 {
                let event = try await nextEvent(session)
                guard case .event(let message) = event else {
                    Issue.record("not an event: \(event)")
                    return
                }
                #expect(message.name == "ExtensionEvent")
                #expect(message.payload == extensionEvent)
                #expect(message.connection == session.info.connection)
            }
            await session.close()
            #expect(await session.next() == .ended(.closedByClient))
            #expect(await session.next() == nil)
            try await peer.waitForLine("disconnected")
            await client.shutdown()
            reports.expectNoLeak(of: [SocketIOPeer.token])
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func emitsAndGetsRepliesAndAcknowledgements(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version)
        try await withPeer(peer.process) { _ in
            let (client, _) = try makeClient(peer)
            let session = try await client.connect()
            // Voicenter's application keepalive, answered by an event.
            try session.emit("keepalive", .string(SocketIOPeer.token))
            let reply = try await nextEvent(session)
            #expect(
                reply
                    == .event(
                        SocketIOMessage(
                            connection: session.info.connection,
                            event: SocketIOEvent(
                                name: "keepaliveResponse", arguments: [.object([("isOk", .bool(true)), ("errorCode", .number(0))])]))))
            // An emit with an ack id: the server's answer comes back as the ack, and as an event.
            let id = try session.emitWithAck("echo", .string("é"), .object([("n", .number(2))]))
            var gotAck = false
            var gotEcho = false
            while !(gotAck && gotEcho) {
                switch try await nextEvent(session) {
                case .ack(let ackID, let arguments, _):
                    #expect(ackID == id)
                    #expect(arguments == [.array([.string("é"), .object([("n", .number(2))])])])
                    gotAck = true
                case .event(let message):
                    #expect(message.name == "echoed")
                    gotEcho = true
                case .ended(let end):
                    Issue.record("ended: \(end)")
                    return
                }
            }
            await session.close()
            await client.shutdown()
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aRefusedTokenIsAuthRefusedAndNeverLogged(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version)
        try await withPeer(peer.process) { _ in
            let wrong = "stale-token-0c7d55aa"
            let (client, reports) = try makeClient(peer, token: wrong)
            do {
                _ = try await client.connect()
                Issue.record("connected with a refused token")
            } catch let error as SocketIOError {
                #expect(error.requiresLogin)
                guard case .authRefused(let text) = error else {
                    Issue.record("not authRefused: \(error)")
                    return
                }
                // v3 refuses at the handshake, v4 with a CONNECT error, after which this side closes.
                #expect(
                    text
                        == (version == .v3
                            ? "the server refused the handshake with HTTP 401"
                            : "the server refused the socket.io connection: token refused"))
                #expect(!"\(error)".contains(wrong))
            }
            try await peer.waitForLine("refused a token")
            if version == .v4 {
                // The Engine.IO session the server kept open was closed by the client.
                try await peer.waitForLine("engine.io closed")
            }
            await client.shutdown()
            reports.expectNoLeak(of: [wrong])
        }
    }

    @Test func autoFallsBackToEngineIOv3WhenV4IsRefusedWithHTTP400() async throws {
        let peer = try await SocketIOPeer.start(.v3)
        try await withPeer(peer.process) { _ in
            let (client, reports) = try makeClient(peer, version: .auto)
            #expect(client.nextVersion == .v4)
            let session = try await client.connect()
            #expect(session.info.version == .v3)
            #expect(client.nextVersion == .v3)
            #expect(
                reports.all.contains(
                    "socket.io test: \(try WebSocketURL("ws://127.0.0.1:\(peer.port)/socket.io/")) refused Engine.IO v4 (HTTP 400); trying Engine.IO v3"
                ))
            await session.close()
            // Learned: the next session asks for v3 at once.
            let again = try await client.connect()
            #expect(again.info.version == .v3)
            #expect(reports.all.filter { $0.contains("HTTP 400") }.count == 1)
            await again.close()
            await client.shutdown()
            reports.expectNoLeak(of: [SocketIOPeer.token])
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aFixedVersionTheServerDoesNotSpeakIsVersionRefused(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version.other)
        try await withPeer(peer.process) { _ in
            let (client, _) = try makeClient(peer, version: version == .v3 ? .v3 : .v4)
            await #expect(throws: SocketIOError.versionRefused(version, status: 400)) { _ = try await client.connect() }
            // And auto against a v4 server takes v4 at once.
            if version == .v3 {
                let (auto, reports) = try makeClient(peer, version: .auto)
                let session = try await auto.connect()
                #expect(session.info.version == .v4)
                #expect(reports.all.allSatisfy { !$0.contains("HTTP 400") })
                await session.close()
                await auto.shutdown()
            }
            await client.shutdown()
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aStoppedHeartbeatIsTheConnectionDownWithinItsDeadline(version: EngineIOVersion) async throws {
        // Pings every 400 ms, due within 600 ms: v3 must see a pong within 600 ms of its ping,
        // v4 a ping within a second of the last.
        // The server itself waits 10 s once connected: python-engineio closes a socket with
        // nothing to send for interval + timeout, the very deadline the v4 client keeps, and on a
        // loaded machine it could close first and hide the client's own detection.
        let peer = try await SocketIOPeer.start(version, pingInterval: 0.4, pingTimeout: 0.6, serverTimeout: 10)
        try await withPeer(peer.process) { _ in
            let (client, _) = try makeClient(peer)
            let session = try await client.connect()
            #expect(session.info.handshake.pingInterval == .milliseconds(400))
            #expect(session.info.handshake.pingTimeout == .milliseconds(600))
            // Alive over several heartbeats first: five events 400 ms apart, and no end between.
            try please(
                session,
                .object([("action", .string("emit")), ("event", .string("tick")), ("count", .number(5)), ("every", .number(0.4))]))
            for _ in 0..<5 {
                let event = try await nextEvent(session)
                guard case .event(let message) = event, message.name == "tick" else {
                    Issue.record("not a tick: \(event)")
                    return
                }
            }

            try please(session, .object([("action", .string("mute"))]))
            let muted = ContinuousClock.now
            let end = try await firstEvent(session) { if case .ended = $0 { true } else { false } }
            let took = ContinuousClock.now - muted
            let expected: SocketIOSessionEnd =
                version == .v3
                ? .heartbeatTimeout("no pong within 600ms of a ping") : .heartbeatTimeout("no ping from the server within 1s")
            #expect(end == .ended(expected))
            // v3: the next ping within 400 ms, its pong due 600 ms later; v4: a second after the
            // last ping. Bounded generously for a loaded machine.
            #expect(took < .seconds(5), "down after \(took)")
            #expect(took >= .milliseconds(500), "down after \(took), before any deadline could pass")
            try await peer.waitForLine(version == .v3 ? "ping unanswered" : "pings stopped")
            await client.shutdown()
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func malformedPacketsAreSkippedWithoutTheirContentAndTheConnectionStaysUp(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version)
        try await withPeer(peer.process) { _ in
            let (client, reports) = try makeClient(peer)
            let session = try await client.connect()
            let pan = "4111 1111 1111 1111"
            let frames: [JSONValue] = [
                .string(#"42["ExtensionEvent",{"customdata":{"card":"\#(pan)"}"#),  // cut short
                .string(#"42{"card":"\#(pan)"}"#), .string("4"), .string("49\(pan)"), .string("x\(pan)"), .string(""),
                .string(#"451-["ExtensionEvent",{"_placeholder":true,"num":0}]"#), .string(#"42/elsewhere,["x","\#(pan)"]"#),
            ]
            try please(session, .object([("action", .string("raw")), ("frames", .array(frames))]))
            try please(session, .object([("action", .string("emit")), ("event", .string("after")), ("data", .string("ok"))]))
            let event = try await nextEvent(session)
            #expect(
                event
                    == .event(
                        SocketIOMessage(connection: session.info.connection, event: SocketIOEvent(name: "after", arguments: [.string("ok")]))))
            let skipped = reports.all.filter { $0.contains("skipped") }
            #expect(skipped.count == frames.count, "\(skipped)")
            #expect(skipped.allSatisfy { $0.hasSuffix("; the connection stays up") })
            #expect(skipped.contains { $0.contains("a packet (") && $0.contains("for another namespace") })
            reports.expectNoLeak(of: [pan, "1111", "customdata", "card", "elsewhere", SocketIOPeer.token])
            await session.close()
            await client.shutdown()
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aServerDisconnectEndsTheSessionAndASupervisorStartsANewOne(version: EngineIOVersion) async throws {
        let peer = try await SocketIOPeer.start(version)
        try await withPeer(peer.process) { _ in
            let (client, _) = try makeClient(peer)
            let ends = Locked<[String]>([])
            let sessions = Locked<[WebSocketConnectionID]>([])
            // How a feed holds a socket.io connection: the shared supervision reconnects, each
            // session is one attempt, and its end is the attempt's error.
            let supervisor = ConnectionSupervisor(
                name: "test", policy: ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200)),
                randomSeed: 3, onChange: { status in if status.phase == .down { ends.withLock { $0.append(status.lastError ?? "") } } })
            let run = Task {
                await supervisor.run { handle in
                    let session = try await client.connect()
                    handle.markUp()
                    let count = sessions.withLock { sessions in
                        sessions.append(session.info.connection)
                        return sessions.count
                    }
                    // The first session asks to be thrown out; the second stays.
                    if count == 1 { try please(session, .object([("action", .string("disconnect"))])) }
                    for await event in session {
                        if case .ended(let end) = event { throw SocketIOError.ended(end) }
                    }
                }
            }
            try await eventually("a second session") { sessions.withLock { $0.count >= 2 } ? true : nil }
            #expect(ends.withLock { $0 } == ["the server disconnected the socket.io session"])
            let ids = sessions.withLock { $0 }
            #expect(ids[0] != ids[1])
            run.cancel()
            await run.value
            await client.shutdown()
            #expect(peer.count("please disconnect") == 1)
        }
    }
}
