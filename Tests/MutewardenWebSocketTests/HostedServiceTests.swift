import Foundation
import MutewardenModel
import MutewardenSupervisor
import Synchronization
import Testing

@testable import MutewardenWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// A thread that hosts a ``WebSocketService`` as the daemon's engine thread does: a step, then
/// one `poll(2)` on the service's sockets and an eventfd that `wake` writes to. It counts its
/// passes, so that a test can tell a wait from a spin.
final class TestServiceHost: Sendable {
    let service: WebSocketService
    let host: WebSocketServiceHost
    /// The wake-up pipe: `wake` writes a byte, the wait watches the read end.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let stopping = Locked(false)
    private let done = DispatchSemaphore(value: 0)
    private let passCount = Locked(0)

    var passes: Int { passCount.withLock { $0 } }

    init(name: String = "hosted") {
        (service, host) = WebSocketService.hosted(name: name)
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0)
        (wakeRead, wakeWrite) = (ends[0], ends[1])
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
        let (host, wakeRead, wakeWrite, stopping, done, passCount) = (host, wakeRead, wakeWrite, stopping, done, passCount)
        let claimed = DispatchSemaphore(value: 0)
        Thread {
            host.claim(wake: {
                var byte: UInt8 = 1
                _ = write(wakeWrite, &byte, 1)
            })
            claimed.signal()
            var descriptors: [pollfd] = []
            var drain = [UInt8](repeating: 0, count: 64)
            while !stopping.withLock({ $0 }) {
                host.step()
                passCount.withLock { $0 += 1 }
                if host.hasCommands { continue }
                descriptors.removeAll(keepingCapacity: true)
                descriptors.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
                let limit = host.waitInterest(into: &descriptors) ?? 1000
                _ = poll(&descriptors, nfds_t(descriptors.count), Int32(min(limit, 1000)))
                _ = read(wakeRead, &drain, drain.count)
            }
            host.end()
            done.signal()
        }.start()
        claimed.wait()
    }

    /// Ends the host thread (`host.end()` on it) and waits for it.
    func stop() {
        stopping.withLock { $0 = true }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        done.wait()
        close(wakeRead)
        close(wakeWrite)
    }
}

extension WebSocketTests {
    @Test func aHostedServiceEchoesAndClosesCleanlyOnTheHostsThread() async throws {
        let peer = try await PeerProcess.python()
        defer { Task { await peer.stop() } }
        let hosting = TestServiceHost()
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/echo"), service: hosting.service)
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

        // Up and quiet: the host waits on the socket instead of spinning. Passes come from the
        // 100 ms timer bound, pings (none here) and frames: a generous ceiling for half a second.
        let before = hosting.passes
        try await Task.sleep(for: .milliseconds(500))
        #expect(hosting.passes - before < 100)

        await client.close()
        await recorder.finished()
        try await peer.waitForLine("closed /echo 1000")
        #expect(recorder.disconnections == ["closed"])
        #expect(!hosting.host.isFinished, "the client leaves a service it did not make running")
        hosting.stop()
        #expect(hosting.host.isFinished)
        #expect(!hosting.service.isRunning)
    }

    /// Paused reading takes the socket out of the host's wait: a socket that stays readable would
    /// end every wait at once. Nothing is lost, and reading resumes when the consumer catches up.
    @Test func aHostedServicePausesReadingWithoutSpinningOrLosingMessages() async throws {
        let peer = try await PeerProcess.python()
        defer { Task { await peer.stop() } }
        let hosting = TestServiceHost()
        let count = 20000
        let limit = 64 << 10
        let configuration = try testConfiguration("ws://127.0.0.1:\(peer.port)/flood?count=\(count)&size=1024") {
            $0.receiveBufferLimit = limit
        }
        let client = try WebSocketClient(
            name: "hosted-slow-consumer", configuration: configuration, service: hosting.service, report: { _ in })
        client.start()
        try await eventually("the pause") { client.events.flow.isPaused ? true : nil }
        try await Task.sleep(for: .milliseconds(200))
        let before = hosting.passes
        try await Task.sleep(for: .milliseconds(500))
        #expect(hosting.passes - before < 100, "paused, the host waits")
        #expect(client.events.flow.bufferedBytes < limit + 512 << 10)

        var received: [Int] = []
        for await event in client.events {
            if case .text(let text) = event { received.append(Int(text.prefix { $0 != "." }) ?? -1) }
            if received.count == count { break }
        }
        #expect(received == Array(0..<count))
        try await peer.waitForLine("flooded /flood")
        await client.close()
        hosting.stop()
    }

    /// Pings, pong deadlines and the close timeout are lws timers: the host's passes serve them.
    @Test func aHostedServiceKeepsItsTimers() async throws {
        let peer = try await PeerProcess.python()
        defer { Task { await peer.stop() } }
        let hosting = TestServiceHost()
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/silent") {
                $0.pingInterval = .milliseconds(200)
                $0.pongTimeout = .milliseconds(300)
            }, service: hosting.service)
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "no pong within 300ms of a ping" })
        await client.close()
        hosting.stop()
    }

    /// TLS: lws may hold decrypted records it has not handed over, which no socket shows.
    @Test func aHostedServiceRoundTripsOverTLS() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await PeerProcess.python(
            certificate: certificates.serverCertificate, key: certificates.serverKey, clientCA: certificates.ca)
        defer { Task { await peer.stop() } }
        let hosting = TestServiceHost()
        let (client, recorder) = try makeClient(
            testConfiguration("wss://\(TestCertificates.serverName):\(peer.port)/echo") {
                $0.tls = TLSOptions(
                    caBundlePath: certificates.ca, clientCertificatePath: certificates.clientCertificate,
                    clientKeyPath: certificates.clientKey)
            }, service: hosting.service, resolver: Self.tlsResolver)
        client.start()
        let info = try await eventually("connected") { recorder.connections.first }
        let messages = (0..<200).map { "over tls \($0) " + String(repeating: "x", count: $0 * 50) }
        for message in messages { try client.send(text: message, on: info.id) }
        try await eventually("the echoes") { recorder.texts.count == messages.count ? true : nil }
        #expect(recorder.texts == messages)
        await client.close()
        try await peer.waitForLine("closed /echo 1000")
        hosting.stop()
    }

    /// The host ending with a connection still up answers everyone: the client sees the
    /// connection go, and a service that never connected never made an lws context.
    @Test func endingTheHostEndsWhatIsOpenAndAServiceThatNeverConnectedStopsAtOnce() async throws {
        let peer = try await PeerProcess.python()
        defer { Task { await peer.stop() } }
        let hosting = TestServiceHost()
        let (client, recorder) = try makeClient(
            testConfiguration("ws://127.0.0.1:\(peer.port)/quiet"), service: hosting.service)
        client.start()
        _ = try await eventually("connected") { recorder.connections.first }
        hosting.stop()
        try await eventually("the disconnection") { recorder.disconnections.first }
        #expect(recorder.disconnections == ["the WebSocket service stopped"])
        #expect(throws: WebSocketError.self) { try client.send(text: "late") }
        await client.close()

        let idle = TestServiceHost(name: "idle")
        await idle.service.shutdown()
        #expect(idle.host.isFinished)
        idle.stop()
    }
}
