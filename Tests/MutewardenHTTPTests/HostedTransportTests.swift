import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenHTTP

/// A thread that hosts a transport the way the daemon's engine thread does: step, run its own
/// work, wait. `onHost` runs a closure there, as a feed's or an attempt's job would run.
private final class TestHost: Sendable {
    static let threadName = "test-http-host"
    let host: HTTPTransportHost
    private let work = Mutex<[@Sendable () -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init(_ host: HTTPTransportHost) { self.host = host }

    func start() {
        let thread = Thread { [self] in
            mw_set_thread_name(TestHost.threadName)
            _ = host.claim()
            // Bounded: the test's time limit ends a run that never stops.
            while !stopping.load(ordering: .acquiring) {
                host.step()
                let batch = work.withLock { work in
                    defer { work.removeAll() }
                    return work
                }
                for body in batch { body() }
                if batch.isEmpty, !host.hasCommands { host.wait(atMostMilliseconds: 1000) }
            }
            host.end()
            finished.store(true, ordering: .releasing)
        }
        thread.start()
    }

    func onHost(_ body: @escaping @Sendable () -> Void) {
        work.withLock { $0.append(body) }
        host.wake()
    }

    /// Runs `body` on the host's thread and returns its result, awaited as a task.
    func onHost<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in onHost { continuation.resume(returning: body()) } }
    }

    /// Stops the thread and waits (bounded) until it has ended its host.
    func stop() async {
        stopping.store(true, ordering: .releasing)
        host.wake()
        #expect(await waitUntil { finished.load(ordering: .acquiring) }, "the host thread did not stop")
    }
}

/// A running host, a client on its transport, and a request the peer holds for 30 s, in flight.
private struct HeldRequest {
    let peer: PythonPeer
    let transport: HTTPTransport
    let testHost: TestHost
    let client: HTTPClient
    let task: Task<HTTPResponse, any Error>

    static func start() async throws -> HeldRequest {
        let peer = try await PythonPeer.start()
        let (transport, host) = try HTTPTransport.hosted()
        let testHost = TestHost(host)
        testHost.start()
        let client = try makeClient(timeout: .seconds(60), transport: transport)
        let slowURL = peer.url("/slow?ms=30000")
        let task = Task { () async throws(HTTPError) -> HTTPResponse in
            try await client.send(HTTPRequest(.get, slowURL))
        }
        try await peer.waitForRequests("GET /slow")
        return HeldRequest(peer: peer, transport: transport, testHost: testHost, client: client, task: task)
    }
}

@Suite(.timeLimit(.minutes(2)))
struct HostedTransportTests {
    /// Nothing moves until a host claims the loop; then the transfers run on the host's thread.
    @Test func requestsWaitForTheHostAndRunOnItsThread() async throws {
        let peer = try await PythonPeer.start()
        // A name no other transport of the process has (tests run side by side and start mw-http
        // threads), under the kernel's 15 characters: no thread of that name may appear.
        let threadName = "hosted-\(Int.random(in: 100_000...999_999))"
        let (transport, host) = try HTTPTransport.hosted(options: HTTPTransport.Options(threadName: threadName))
        let client = try makeClient(transport: transport)
        let echo = peer.url("/echo")
        let pending = Task { () async throws(HTTPError) -> HTTPResponse in
            try await client.send(HTTPRequest(.get, echo))
        }
        // Nothing may happen without a host, however long one waits: 300 ms (a sleep, not a wait
        // for a condition) is long enough that a loop running anyway would have started it.
        try await Task.sleep(for: .milliseconds(300))
        #expect(transport.statistics.started == 0, "a transfer started with no host running the loop")

        let testHost = TestHost(host)
        testHost.start()
        #expect(try await pending.value.status == 200)
        #expect(try await client.send(HTTPRequest(.post, peer.url("/echo"), text: "{}")).status == 200)
        #expect(transport.statistics.started == 2 && transport.statistics.connectionsOpened == 1)
        // libcurl's callbacks ran on the host's thread.
        #expect(await testHost.onHost { currentThreadName() } == TestHost.threadName)
        #expect(!processThreadNames().contains(threadName))
        client.close()
        await testHost.stop()
        transport.close()
    }

    /// A client closed in a job on the host's thread (a feed or target released there) must not
    /// wait for a loop that only that thread runs.
    @Test func aClientClosedOnTheHostsThreadClosesInPlace() async throws {
        let held = try await HeldRequest.start()
        let other = try makeClient("other", transport: held.transport)
        let client = held.client
        await held.testHost.onHost { client.close() }
        #expect(await expectHTTPError { try await held.task.value }?.kind == .closed)
        // The host and the transport's other clients go on.
        #expect(try await other.send(HTTPRequest(.get, held.peer.url("/echo"))).status == 200)
        await held.testHost.stop()
        held.transport.close()
    }

    /// A daemon that fails before its engine thread claims the transport still closes its clients
    /// and the transport: nobody would ever run their commands otherwise.
    @Test func clientsAndTheTransportCloseBeforeAnyHostClaimsIt() async throws {
        let peer = try await PythonPeer.start()
        let (transport, host) = try HTTPTransport.hosted()
        let client = try makeClient(transport: transport)
        let other = try makeClient("other", transport: transport)
        let echo = peer.url("/echo")
        let pending = Task { () async throws(HTTPError) -> HTTPResponse in
            try await client.send(HTTPRequest(.get, echo))
        }
        // Gives the send time to queue its command before the close (with no host, nothing more
        // can be observed of it); closed first or queued first, it must fail as closed.
        try await Task.sleep(for: .milliseconds(100))
        client.close()
        #expect(await expectHTTPError { try await pending.value }?.kind == .closed)
        transport.close()
        #expect(await expectHTTPError { try await other.send(HTTPRequest(.get, peer.url("/echo"))) }?.kind == .closed)
        // A host may still claim and end it; there is nothing left for it to run.
        #expect(host.claim())
        host.end()
    }

    /// The host's end fails what is still in flight, and everything after it fails at once.
    @Test func theHostsEndFailsWhatIsInFlight() async throws {
        let held = try await HeldRequest.start()
        #expect(held.transport.statistics.inFlight == 1)
        await held.testHost.stop()
        #expect(await expectHTTPError { try await held.task.value }?.kind == .closed)
        let echo = held.peer.url("/echo")
        #expect(await expectHTTPError { try await held.client.send(HTTPRequest(.get, echo)) }?.kind == .closed)
        // Closing after the end returns at once.
        held.client.close()
        held.transport.close()
        // The wake-up of a host that has ended touches no freed handle.
        held.testHost.host.wake()
    }

    /// Another thread's wake-up ends the host's wait; the host's own does nothing.
    @Test func aWakeUpEndsTheHostsWait() async throws {
        let (transport, host) = try HTTPTransport.hosted()
        let claimed = Atomic<Bool>(false)
        let returned = Atomic<Bool>(false)
        let thread = Thread {
            host.claim()
            claimed.store(true, ordering: .releasing)
            host.wait(atMostMilliseconds: 60_000)
            returned.store(true, ordering: .releasing)
            host.end()
        }
        thread.start()
        try #require(await waitUntil { claimed.load(ordering: .acquiring) })
        host.wake()
        #expect(await waitUntil(timeout: .seconds(30)) { returned.load(ordering: .acquiring) }, "the wait outlived its wake-up")
        transport.close()
    }
}
