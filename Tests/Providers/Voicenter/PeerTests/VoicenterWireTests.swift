import Foundation
import MutewardenJSON
import MutewardenTesting
import Testing

/// What only the wire has, on both Engine.IO versions: the heartbeat, fail-over between real
/// servers, reconnections with their resync and their token, malformed packets.
@Suite(.serialized) struct VoicenterWireTests {
    static let wires: [Wire] = [.engineIO3, .engineIO4]

    @Test(arguments: wires)
    func aServerThatStopsItsHeartbeatIsFeedDownThenTheFeedReconnectsAndResyncs(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            let server = try await SocketServer(engineIO: try #require(wire.engineIO), pingInterval: 1, pingTimeout: 1)
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call", wire: wire, server: server)
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            // v3: the client's pings go unanswered; v4: the server stops pinging.
            try await server.please(.object([("action", .string("mute"))]))
            #expect(await running.waitForLine("audit=feed.down", "feed=vc"))
            #expect(await waitUntil { running.count("audit=feed.up", "feed=vc", "result=up") >= 2 })
            #expect(server.peer.count("snapshot sent") >= 1)
            #expect(try await running.finish() == 0)
        }
    }

    @Test(arguments: wires)
    func theFeedFailsOverFromADeadServerToTheNextOne(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            let server = try await SocketServer(engineIO: try #require(wire.engineIO))
            // The login names a server that refuses connections; the configured list has the live one.
            let running = try await RunningDaemon(
                peer: peer, scope: "call", by: "call", wire: wire, server: server, advertised: "http://127.0.0.1:1",
                servers: [server.peer.url])
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            #expect(running.lines().contains { $0.contains("audit=feed.down") && $0.contains("127.0.0.1:1") })
            try await running.account.change("A", reason: "ANSWER") { $0 = [.init(ivrid: "F-1", stage: "CARD")] }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=F-1"))
            #expect(try await running.finish() == 0)
        }
    }

    @Test(arguments: wires)
    func aCallThatEndedWhileTheFeedWasDownIsReleasedByTheResyncAfterTheReconnection(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call", wire: wire)
            let server = try #require(running.server)
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            try await running.account.change("A", reason: "ANSWER") { $0 = [.init(ivrid: "R-1", stage: "CARD")] }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=R-1"))
            // The feed goes down and stays down while the call ends: no event tells it.
            try await server.control(.post, "/test/refuse", .object([("count", .number(1_000))]))
            try await server.please(.object([("action", .string("disconnect"))]))
            #expect(await running.waitForLine("audit=feed.down", "feed=vc"))
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            try await server.control(.post, "/test/refuse", .object([("count", .number(0))]))
            #expect(await waitUntil(timeout: .seconds(30)) { running.count("audit=feed.up", "feed=vc", "result=up") >= 2 })
            #expect(await running.waitForLine("audit=window.closed", "call=R-1"))
            #expect(!running.lines().contains { $0.contains("audit=action.failed") })
            #expect(try await running.finish() == 0)
        }
    }

    @Test(arguments: wires)
    func aTokenRenewedBeforeItsExpiryIsTheOneTheNextConnectionPresents(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"token_life": 4}"#)
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call", wire: wire)
            let server = try #require(running.server)
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            #expect(await running.waitForLine("result=token-renewed", "feed=vc"))
            let refreshes = try await peer.requests("refresh")
            #expect(!refreshes.isEmpty)
            try await server.please(.object([("action", .string("disconnect"))]))
            #expect(await waitUntil { running.count("audit=feed.up", "feed=vc", "result=up") >= 2 })
            let offered = try await server.control(.get, "/test/state")["tokens"]?.array?.compactMap(\.string) ?? []
            let issued = try await peer.issuedTokens()
            #expect(offered.count >= 2 && offered.first != offered.last)
            #expect(offered.last.map(issued.contains) == true)
            for token in issued { #expect(!running.lines().contains { $0.contains(token) }) }
            #expect(try await running.finish() == 0)
        }
    }

    @Test(arguments: wires)
    func malformedPacketsAreSkippedWithTheConnectionKept(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call", wire: wire)
            let server = try #require(running.server)
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            let card = "4111111111111111"
            try await server.please(
                .object([
                    ("action", .string("raw")),
                    (
                        "frames",
                        .array([
                            .string("42[\"ExtensionEvent\",{\"data\":\(card)"), .string("42[1,2]"), .string("4{"),
                            .string("42[\"ExtensionEvent\",\"not an object \(card)\"]"),
                        ])
                    ),
                ]))
            #expect(await waitUntil { running.count("feed=vc", "skipped") + running.count("feed=vc", "malformed") >= 2 })
            try await running.account.change("A", reason: "ANSWER") { $0 = [.init(ivrid: "M-1", stage: "CARD")] }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=M-1"))
            #expect(running.count("audit=feed.up", "feed=vc", "result=up") == 1)
            #expect(!running.lines().contains { $0.contains(card) })
            #expect(try await running.finish() == 0)
        }
    }

    @Test(arguments: wires)
    func aCardNumberInCustomdataNeverReachesTheLogWhileALuhnValidIvridStaysWhole(_ wire: Wire) async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"error_code_type": "number"}"#)
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call", wire: wire)
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(try await running.feedUp())
            let ivrid = "4509123456789012343"
            try await running.account.change("A", reason: "ANSWER") {
                $0 = [.init(ivrid: ivrid, stage: "CARD", extra: [("NOTE", .string("card 4111 1111 1111 1111 read out"))])]
            }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=\(ivrid)"))
            let lines = running.lines()
            #expect(!lines.contains { $0.contains("4111 1111 1111 1111") || $0.contains("4111111111111111") })
            #expect(lines.contains { $0.contains("call=\(ivrid)") })
            #expect(try await running.finish() == 0)
        }
    }
}
