import Foundation
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenWebSocket

extension WebSocketTests {
    /// bookworm's lws resolves names with a blocking getaddrinfo on its service thread. The client
    /// never hands it a name: a resolver that takes two seconds must not delay another connection
    /// of the same service thread by even one message.
    @Test func aSlowResolverDoesNotStallOtherConnectionsOfTheServiceThread() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let service = try WebSocketService(name: "dns")
        defer { Task { await service.shutdown() } }
        let (ticker, ticks) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/tick?every=0.02"), service: service, name: "ticker")
        ticker.start()
        try await eventually("ticks") { ticks.texts.count >= 5 ? true : nil }

        let resolver = ScriptedResolver(delay: .seconds(2), ["slow.mutewarden.test": ["127.0.0.1"]])
        let (slow, slowed) = try makeClient(
            testConfiguration("ws://slow.mutewarden.test:\(peer.port)/headers"), service: service,
            resolver: resolver, name: "slow")
        slow.start()
        try await eventually("the lookup to start") { resolver.calls.withLock { $0 } == 1 ? true : nil }
        let before = ticks.texts.count
        // A fixed second on purpose: what is measured is how many ticks arrive in it.
        try await Task.sleep(for: .seconds(1))
        // 50 ticks a second; a stalled service thread would deliver none of them.
        #expect(ticks.texts.count - before >= 25)
        #expect(slowed.connections.isEmpty)
        #expect(slow.status?.phase == .connecting)

        let report = try await eventually("the slow client's header report", timeout: .seconds(10)) { slowed.texts.first }
        #expect(report.contains("\"host\": \"slow.mutewarden.test:\(peer.port)\""))
        #expect(slowed.connections.first?.address == "127.0.0.1")
        #expect(ticks.downs.isEmpty)
        await slow.close()
        await ticker.close()
    }

    @Test func aResolverThatHangsFailsTheAttemptAtTheConnectTimeout() async throws {
        let resolver = ScriptedResolver(delay: .seconds(3), ["hung.mutewarden.test": ["127.0.0.1"]])
        let (client, recorder) = try makeClient(
            testConfiguration("ws://hung.mutewarden.test:9/") { $0.connectTimeout = .milliseconds(300) },
            resolver: resolver)
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "resolving hung.mutewarden.test took longer than 300ms" })
        await client.close()
    }

    @Test func anUnknownNameIsReportedAndRetried() async throws {
        let (client, recorder) = try makeClient(
            testConfiguration("ws://unknown.mutewarden.test:9/"), resolver: ScriptedResolver([:]))
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "could not resolve unknown.mutewarden.test" })
        await client.close()
    }

    @Test func theNextAddressIsTriedWhenOneRefuses() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        // The peer listens on 127.0.0.1 only: 127.0.0.2 refuses.
        let resolver = ScriptedResolver(["two.mutewarden.test": ["127.0.0.2", "127.0.0.1"]])
        let (client, recorder) = try makeClient(
            testConfiguration("ws://two.mutewarden.test:\(peer.port)/echo"), resolver: resolver)
        client.start()
        let info = try await eventually("connected") { recorder.connections.first }
        #expect(info.address == "127.0.0.1")
        #expect(recorder.downs.isEmpty)
        #expect(recorder.reports.withLock { $0.contains { $0.contains("127.0.0.2") && $0.hasSuffix("trying the next address") } })
        await client.close()
    }

    /// From /etc/hosts: no query leaves the machine.
    @Test func theSystemResolverResolvesLocalhost() throws {
        let addresses = try SystemResolver().resolve(host: "localhost", port: 80)
        #expect(addresses.contains("127.0.0.1") || addresses.contains("::1"))
        #expect(isNumericAddress("127.0.0.1") && isNumericAddress("::1") && !isNumericAddress("localhost"))
    }

    /// A consumer that stops taking events stops the reading of the socket (TCP pushes back on the
    /// server) instead of letting the buffer grow, loses nothing, and is not taken for a dead peer.
    @Test func aSlowConsumerPausesReadingWithoutLosingMessagesOrTheConnection() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        // 20 MB: more than the loopback socket buffers of both sides hold, so a paused client
        // really holds the server back.
        let count = 20000
        let limit = 64 << 10
        let configuration = try testConfiguration("ws://127.0.0.1:\(peer.port)/flood?count=\(count)&size=1024") {
            $0.receiveBufferLimit = limit
            $0.pingInterval = .milliseconds(100)
            $0.pongTimeout = .milliseconds(200)
            $0.idleTimeout = .milliseconds(300)
        }
        let statuses = Locked<[ConnectionStatus]>([])
        let client = try WebSocketClient(
            name: "slow-consumer", configuration: configuration, report: { _ in },
            onStatus: { status in statuses.withLock { $0.append(status) } })
        client.start()
        try await eventually("the pause") { client.events.flow.isPaused ? true : nil }
        // That the pause holds is shown by nothing happening for a while: a second, three idle
        // timeouts, in which the buffer must not grow and the liveness checks must not drop it.
        try await Task.sleep(for: .seconds(1))
        // Paused: what is buffered stays near the limit (lws hands over what its last read of at
        // most 256 KiB held).
        #expect(client.events.flow.bufferedBytes < limit + 512 << 10)
        #expect(!peer.lines.contains("flooded /flood"))
        #expect(client.status?.phase == .up, "liveness checks are off while the consumer holds reading")

        var received: [Int] = []
        for await event in client.events {
            if case .text(let text) = event { received.append(Int(text.prefix { $0 != "." }) ?? -1) }
            if received.count == count { break }
        }
        #expect(received == Array(0..<count))
        try await peer.waitForLine("flooded /flood")
        #expect(!statuses.withLock { $0.contains { $0.phase == .down } })
        await client.close()
    }
}
