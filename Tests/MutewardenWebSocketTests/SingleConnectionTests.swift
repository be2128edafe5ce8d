import Foundation
import MutewardenModel
import MutewardenTesting
import Testing

@testable import MutewardenWebSocket

extension WebSocketTests {
    @Test func aSingleConnectionDeliversItsEventsThenEndsWithoutReconnecting() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "single")
        let connection = try await WebSocketConnection.open(
            name: "single", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/echo"), service: service)
        #expect(connection.isUp)
        try connection.send(text: "one")
        try connection.send(binary: [7, 8])
        var events: [WebSocketEvent] = []
        for await event in connection.events {
            events.append(event)
            if events.count == 3 { await connection.close() }
        }
        // The sequence ends by itself after `.disconnected`: nothing reconnects.
        #expect(events.count == 4)
        #expect(events[0] == .connected(connection.info))
        #expect(events[1] == .text("one"))
        #expect(events[2] == .binary([7, 8]))
        guard case .disconnected(let id, let reason) = events[3] else {
            Issue.record("the last event is not .disconnected: \(events[3])")
            return
        }
        #expect(id == connection.id)
        #expect(reason == "closed")
        #expect(!connection.isUp)
        #expect(throws: WebSocketError.notConnected) { try connection.send(text: "late") }
        try await peer.waitForLine("closed /echo 1000")
        #expect(peer.lines.filter { $0 == "open /echo" }.count == 1)
        await service.shutdown()
    }

    @Test(arguments: [400, 401, 503])
    func aSingleConnectionRefusedAtTheUpgradeThrowsItsStatus(status: Int) async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "refused")
        let token = "refused-token-4b1d"
        let reports = Locked<[String]>([])
        do {
            _ = try await WebSocketConnection.open(
                name: "refused", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/\(status)?token=\(token)"),
                service: service, report: { line in reports.withLock { $0.append(line) } })
            Issue.record("the connection opened")
        } catch let error as WebSocketError {
            #expect(error == .handshakeRefused(status: status))
            #expect(error.httpStatus == status)
            #expect("\(error)" == "the server refused the WebSocket upgrade with HTTP \(status)")
        }
        // One attempt, and no other.
        try await peer.waitForLine("refused /\(status)")
        #expect(peer.lines.filter { $0 == "refused /\(status)" }.count == 1)
        #expect(reports.withLock { $0 }.allSatisfy { !$0.contains(token) })
        await service.shutdown()
    }

    @Test func aSingleConnectionThatCannotConnectSaysWhyAndAServerDropEndsItsEvents() async throws {
        let service = try WebSocketService(name: "single-failures")
        let port = try freePort()
        await #expect {
            _ = try await WebSocketConnection.open(
                name: "nobody", configuration: try testConfiguration("ws://127.0.0.1:\(port)/echo"), service: service)
        } throws: { error in
            guard let error = error as? WebSocketError, case .connection(let reason) = error else { return false }
            return reason.hasPrefix("could not connect to 127.0.0.1:\(port)") && error.httpStatus == nil
        }

        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let connection = try await WebSocketConnection.open(
            name: "dropped", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/closeafter?ms=100"),
            service: service)
        var last: WebSocketEvent?
        for await event in connection.events { last = event }
        #expect(last == .disconnected(connection.id, reason: "the server closed the connection (code 1000)"))
        #expect(await connection.waitForEnd() == "the server closed the connection (code 1000)")
        await service.shutdown()
    }

    @Test func anAbortedSingleConnectionEndsWithTheGivenReason() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "aborted")
        let connection = try await WebSocketConnection.open(
            name: "aborted", configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/quiet"), service: service)
        connection.abort(reason: "no ping from the server within 2s")
        #expect(await connection.waitForEnd() == "no ping from the server within 2s")
        var reasons: [String] = []
        for await event in connection.events {
            if case .disconnected(_, let reason) = event { reasons.append(reason) }
        }
        #expect(reasons == ["no ping from the server within 2s"])
        await service.shutdown()
    }
}

extension WebSocketTests {
    @Test func aConnectionWithNoDeadlineLeavesItsServiceThreadAsleep() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "idle")
        // socket.io's connections: no WebSocket pings and no idle limit, Engine.IO has its own.
        let connection = try await WebSocketConnection.open(
            name: "idle",
            configuration: try testConfiguration("ws://127.0.0.1:\(peer.port)/echo") {
                $0.pingInterval = nil
                $0.idleTimeout = nil
            }, service: service)
        #expect(connection.isUp)
        let before = service.passes
        // Showing that nothing happens takes a while of nothing: half a second, in which the
        // lws 4.1.6 timer armed with -1 µs made tens of thousands of passes.
        try await Task.sleep(for: .milliseconds(500))
        #expect(service.passes - before < 50)
        await connection.close()
        await service.shutdown()
    }
}
