import Foundation
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Testing

@testable import MutewardenWebSocket

extension WebSocketTests {
    @Test func echoesTextAndBinaryThroughThePythonPeer() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)/echo"))
        client.start()
        let info = try await eventually("connected") { recorder.connections.first }
        try client.send(text: "hello", on: info.id)
        try client.send(binary: [0, 1, 2, 255])
        try client.send(text: String(repeating: "é", count: 100_000))
        try await eventually("the echoes") { recorder.events.withLock { $0.count >= 4 } ? true : nil }
        let events = recorder.events.withLock { $0 }
        #expect(events[1] == .text("hello"))
        #expect(events[2] == .binary([0, 1, 2, 255]))
        #expect(events[3] == .text(String(repeating: "é", count: 100_000)))
        #expect(client.status?.phase == .up)
        #expect(client.statusLine.contains(": up for"))

        await client.close()
        await recorder.finished()
        // The close frame the server received is a normal closure.
        try await peer.waitForLine("closed /echo 1000")
        #expect(client.status?.phase == .stopped)
        #expect(throws: WebSocketError.closed) { try client.send(text: "late") }
    }

    @Test func sendsHeadersQueryTokenSubprotocolAndOriginWithoutReportingThem() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let token = "tok-5c1f0a9e7d"
        let bearer = "Bearer eyJhbGciOi.secret-bearer"
        let cookie = "session=cookie-3f9a2b"
        let configuration = try testConfiguration("ws://127.0.0.1:\(peer.port)/headers?token=\(token)&v=3") {
            $0.headers = [WebSocketHeader("Authorization", bearer), WebSocketHeader("Cookie", cookie)]
            $0.subprotocols = ["mw.test.v2", "nope"]
            $0.origin = "https://agent.example"
        }
        let (client, recorder) = try makeClient(configuration)
        client.start()
        let first = try await eventually("the header report") { recorder.texts.first }
        let report = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let headers = try #require(report["headers"] as? [String: String])
        #expect(report["path"] as? String == "/headers?token=\(token)&v=3")
        #expect(headers["authorization"] == bearer)
        #expect(headers["cookie"] == cookie)
        #expect(headers["origin"] == "https://agent.example")
        #expect(headers["host"] == "127.0.0.1:\(peer.port)")
        #expect(report["subprotocol"] as? String == "mw.test.v2")
        #expect(recorder.connections.first?.subprotocol == "mw.test.v2")
        await client.close()

        let secrets = [token, bearer, cookie, "secret-bearer"]
        recorder.expectNoLeak(of: secrets)
        for text in ["\(configuration)", "\(configuration.url)", "\(configuration.headers)", client.statusLine] {
            for secret in secrets { #expect(!text.contains(secret)) }
        }
        #expect("\(configuration.url)" == "ws://127.0.0.1:\(peer.port)/headers?…")
    }

    @Test func reassemblesFragmentedMessages() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(testConfiguration("ws://127.0.0.1:\(peer.port)/fragments"))
        client.start()
        try await eventually("both messages") { recorder.events.withLock { $0.count >= 3 } ? true : nil }
        let events = recorder.events.withLock { $0 }
        #expect(events[1] == .text("hello world été"))
        #expect(events[2] == .binary([0, 1, 2, 3, 4]))
        await client.close()
    }

    @Test func aCleanShutdownSendsCloseFrame1000AndStopsTheServiceThread() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "shutdown")
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/quiet"), service: service)
        client.start()
        _ = try await eventually("connected") { recorder.connections.first }
        await client.close()
        await recorder.finished()
        try await peer.waitForLine("closed /quiet 1000")
        #expect(service.isRunning)
        await service.shutdown()
        #expect(!service.isRunning)
        let statuses = recorder.statuses.withLock { $0.map(\.phase) }
        // A loaded host may show the close as a brief "down" before the stop; never anything else.
        #expect(Array(statuses.prefix(2)) == [.connecting, .up] && statuses.last == .stopped, "\(statuses)")
        #expect(statuses.dropFirst(2).dropLast().allSatisfy { $0 == .down }, "\(statuses)")
        #expect(recorder.disconnections == ["closed"])
    }

    @Test func interoperatesWithLibwebsocketsTestServer() async throws {
        let server = try await WebSocketPeer.lwsTestServer()
        defer { Task { await server.stop() } }
        let service = try WebSocketService(name: "interop")
        defer { Task { await service.shutdown() } }

        // dumb-increment-protocol: the server counts up, one text message every 50 ms.
        let (counter, counted) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(server.port)/") { $0.subprotocols = ["dumb-increment-protocol"] },
            service: service, name: "dumb-increment")
        // lws-mirror-protocol: every message goes back to every client of the protocol.
        let (mirror, mirrored) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(server.port)/") { $0.subprotocols = ["lws-mirror-protocol"] },
            service: service, name: "mirror")
        counter.start()
        mirror.start()
        let numbers = try await eventually("five numbers") { counted.texts.count >= 5 ? counted.texts : nil }
        let values = numbers.compactMap { Int($0) }
        #expect(values.count == numbers.count)
        #expect(zip(values, values.dropFirst()).allSatisfy { $1 == $0 + 1 })
        #expect(counted.connections.first?.subprotocol == "dumb-increment-protocol")

        let info = try await eventually("mirror connected") { mirrored.connections.first }
        #expect(info.subprotocol == "lws-mirror-protocol")
        for index in 0..<20 { try mirror.send(text: "round trip \(index)", on: info.id) }
        let back = try await eventually("20 mirrored messages") { mirrored.texts.count >= 20 ? mirrored.texts : nil }
        #expect(back == (0..<20).map { "round trip \($0)" })
        await counter.close()
        await mirror.close()
    }

    @Test func runClosesWhenTheBodyReturnsOrTheTaskIsCancelled() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let client = try WebSocketClient(
            name: "run", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/tick?every=0.02"),
            report: { _ in })
        let first = await client.run { events -> String? in
            for await event in events { if case .text(let text) = event { return text } }
            return nil
        }
        #expect(first == "0")
        try await peer.waitForLine("closed /tick 1000")
        #expect(client.status?.phase == .stopped)

        let cancelled = try WebSocketClient(
            name: "cancelled", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/quiet"),
            report: { _ in })
        let task = Task {
            await cancelled.run { events in
                for await _ in events {}
            }
        }
        try await eventually("connected") { cancelled.status?.phase == .up ? true : nil }
        task.cancel()
        await task.value
        try await peer.waitForLine("closed /quiet 1000")
        #expect(cancelled.status?.phase == .stopped)
    }
}
