import Foundation
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Testing

@testable import MutewardenWebSocket

/// Waits for `count` failed attempts and checks that they back off: consecutive failures count up
/// (no connection lasted `stableAfter`) and every wait is within the policy's ceiling.
@discardableResult
func expectBackingOff(
    _ recorder: Recorder, count: Int, policy: ReconnectPolicy = testReconnect, timeout: Duration = .seconds(20),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> [ConnectionStatus] {
    let downs = try await eventually("\(count) failed attempts", timeout: timeout) {
        recorder.downs.count >= count ? recorder.downs : nil
    }
    #expect(downs.prefix(count).map(\.consecutiveFailures) == Array(1...count), sourceLocation: sourceLocation)
    for down in downs {
        let wait = try #require(down.retryIn, sourceLocation: sourceLocation)
        #expect(wait >= .zero && wait <= policy.ceiling(afterFailures: down.consecutiveFailures), sourceLocation: sourceLocation)
    }
    return downs
}

extension WebSocketTests {
    @Test func aPeerThatDropsTheConnectionMidMessageIsReconnectedWithBackoff() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)/dropmid"))
        client.start()
        let downs = try await expectBackingOff(recorder, count: 4)
        #expect(downs.allSatisfy { $0.lastError == "the connection was lost" })
        #expect(recorder.connections.count >= 4)
        #expect(recorder.texts.isEmpty, "no part of the cut message is delivered")
        #expect(recorder.ups >= 4)
        await client.close()
    }

    @Test func aPeerThatStopsAnsweringPingsIsDroppedAtThePongDeadline() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/silent") {
                $0.pingInterval = .milliseconds(200)
                $0.pongTimeout = .milliseconds(300)
            })
        let started = ContinuousClock.now
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "no pong within 300ms of a ping" })
        // Ping at 200 ms, deadline 300 ms later: the first failure comes well before a second.
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(recorder.texts.first == "hello")
        await client.close()
    }

    @Test func aQuietPeerIsDroppedAtTheIdleTimeoutUnlessPongsKeepItAlive() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (idle, idleRecorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/quiet") {
                $0.pingInterval = nil
                $0.idleTimeout = .milliseconds(400)
            }, name: "idle")
        // Pongs count as traffic: with pings every 150 ms the same quiet peer stays up.
        let (pinged, pingedRecorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/quiet") {
                $0.pingInterval = .milliseconds(150)
                $0.pongTimeout = .seconds(1)
                $0.idleTimeout = .milliseconds(400)
            }, name: "pinged")
        idle.start()
        pinged.start()
        let downs = try await expectBackingOff(idleRecorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "nothing received for 400ms" })
        // That the pinged client stays up is shown by nothing happening: for 600 ms, one and a
        // half idle timeouts more, on top of the time the idle client's two drops took.
        try await Task.sleep(for: .milliseconds(600))
        #expect(pingedRecorder.downs.isEmpty)
        #expect(pinged.status?.phase == .up)
        await idle.close()
        await pinged.close()
    }

    @Test func aTenMebibyteMessageClosesWith1009AndReconnects() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)/big?size=10485760"))
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "a message was larger than the 1 MiB limit (closed with 1009)" })
        try await peer.waitForLine("closed /big 1009")
        #expect(recorder.texts.isEmpty)
        await client.close()

        // Exactly the limit is allowed.
        let (exact, exactRecorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)/big?size=1048576"))
        exact.start()
        let text = try await eventually("the 1 MiB message") { exactRecorder.texts.first }
        #expect(text.utf8.count == 1 << 20)
        #expect(exactRecorder.downs.isEmpty)
        await exact.close()
    }

    @Test(arguments: ["/badutf8", "/badutf8-split"])
    func invalidUTF8ClosesWith1007AndReconnects(path: String) async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)\(path)"))
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "a text message was not valid UTF-8 (closed with 1007)" })
        try await peer.waitForLine("closed \(path) 1007")
        #expect(recorder.texts.isEmpty)
        await client.close()
    }

    @Test(arguments: [401, 503])
    func aRefusedUpgradeIsReportedWithItsStatusAndRetriedWithBackoff(status: Int) async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let token = "refused-token-77aa"
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/\(status)?token=\(token)") {
                $0.headers = [WebSocketHeader("Authorization", "Bearer \(token)")]
            })
        client.start()
        let downs = try await expectBackingOff(recorder, count: 4)
        #expect(downs.allSatisfy { $0.lastError == "the server refused the WebSocket upgrade with HTTP \(status)" })
        #expect(recorder.connections.isEmpty)
        #expect(recorder.ups == 0)
        // The peer's log line can trail the answer the client already acted on: waited for.
        try await eventually("four refusals in the peer's log") {
            peer.lines.filter { $0 == "refused /\(status)" }.count >= 4 ? true : nil
        }
        #expect(client.statusLine.contains("HTTP \(status)"))
        await client.close()
        recorder.expectNoLeak(of: [token])
    }

    @Test func aServerRestartedOnTheSamePortIsReconnected() async throws {
        let first = try await WebSocketPeer.python()
        let port = first.port
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(port)/echo"))
        client.start()
        let before = try await eventually("connected") { recorder.connections.first }
        try client.send(text: "before", on: before.id)
        try await eventually("echo before") { recorder.texts == ["before"] ? true : nil }

        await first.stop()  // websockets closes its connections with 1001 going away
        let downs = try await expectBackingOff(recorder, count: 3)
        #expect(downs[0].lastError == "the server closed the connection (code 1001)")
        #expect(downs[1].lastError?.hasPrefix("could not connect to 127.0.0.1:\(port)") == true)
        #expect(client.status?.phase != .up)
        #expect(throws: WebSocketError.notConnected) { try client.send(text: "while down") }

        let second = try await WebSocketPeer.python(port: port)
        defer { Task { await second.stop() } }
        let after = try await eventually("reconnected", timeout: .seconds(10)) {
            recorder.connections.count == 2 ? recorder.connections[1] : nil
        }
        #expect(after.id != before.id)
        #expect(throws: WebSocketError.notConnected) { try client.send(text: "stale", on: before.id) }
        try client.send(text: "after", on: after.id)
        try await eventually("echo after") { recorder.texts == ["before", "after"] ? true : nil }
        #expect(client.status?.phase == .up)
        #expect(client.status?.consecutiveFailures == 0)
        await client.close()
    }

    @Test func backoffStartsOverAfterAConnectionWasStable() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        // Closed by the server at once: never stable, so the failures add up.
        let (flapping, flapped) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/closeafter?ms=0"), name: "flapping")
        // Up for 400 ms each time, longer than stableAfter: every drop is a first failure.
        let stable = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(400), stableAfter: .milliseconds(250))
        let (steady, steadied) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/closeafter?ms=400") { $0.reconnect = stable }, name: "steady")
        flapping.start()
        steady.start()
        let flaps = try await expectBackingOff(flapped, count: 4)
        #expect(flaps.allSatisfy { $0.lastError == "the server closed the connection (code 1000)" })
        let drops = try await eventually("three drops of the steady client") {
            steadied.downs.count >= 3 ? steadied.downs : nil
        }
        #expect(drops.map(\.consecutiveFailures).allSatisfy { $0 == 1 })
        await flapping.close()
        await steady.close()
    }
}
