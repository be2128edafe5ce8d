import MutewardenJSON
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenBayeux

/// Runs a client against `server` until `done` holds (bounded: 20 s), then stops it.
private func run(
    _ server: FakeBayeuxServer, channels: [String] = ["/v2/me/calls"], useAck: Bool = true,
    whileSubscribing: @escaping @Sendable (Recorder) async -> Void = { _ in },
    until done: @escaping @Sendable (Recorder) -> Bool
) async -> Recorder {
    let recorder = Recorder()
    var configuration = BayeuxClient.Configuration(channels: channels)
    configuration.useAck = useAck
    configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(5), maximumDelay: .milliseconds(20))
    let client = BayeuxClient(
        configuration: configuration, transport: server,
        callbacks: BayeuxClient.Callbacks(
            event: { event in recorder.events.withLock { $0.append(event) } },
            subscribed: {
                await whileSubscribing(recorder)
                recorder.subscribedCount.add(1, ordering: .relaxed)
            },
            authenticationFailed: { recorder.authFailures.add(1, ordering: .relaxed) },
            status: { status in recorder.statuses.withLock { $0.append(status) } }))
    let task = Task { await client.run() }
    #expect(await waitUntil(every: .milliseconds(5)) { done(recorder) }, "the client did not get there in time")
    task.cancel()
    await task.value
    return recorder
}

final class Recorder: Sendable {
    let events = Locked<[BayeuxEvent]>([])
    let statuses = Locked<[ConnectionStatus]>([])
    let subscribedCount = Atomic<Int>(0)
    let authFailures = Atomic<Int>(0)
    var eventCount: Int { events.withLock { $0.count } }
    var downs: [ConnectionStatus] { statuses.withLock { $0.filter { $0.phase == .down } } }
}

@Test func deliversEventsInOrderAfterHandshakeAndSubscribe() async {
    let server = FakeBayeuxServer()
    for index in 1...5 { server.publish("/v2/me/calls", .object([("n", .number(Double(index)))])) }
    let recorder = await run(server) { $0.eventCount == 5 }
    #expect(recorder.events.withLock { $0.map { $0.data["n"]?.int } } == [1, 2, 3, 4, 5])
    #expect(recorder.statuses.withLock { $0.map(\.phase) }.prefix(2) == [.connecting, .up])
    #expect(server.state.withLock { $0.subscriptions } == ["/v2/me/calls"])
    #expect(server.state.withLock { $0.maxInFlight } == 1)  // one outstanding request, always
}

@Test func anUnknownClientLeadsToANewHandshakeAndResubscription() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.connectErrors = ["402:client-1:Unknown Client ID"] }
    let recorder = await run(server) { $0.subscribedCount.load(ordering: .relaxed) == 2 }
    #expect(server.state.withLock { $0.handshakes } == 2)
    #expect(recorder.downs.first?.lastError?.contains("no longer knows this client") == true)
    #expect(recorder.authFailures.load(ordering: .relaxed) == 0)
    #expect(server.state.withLock { $0.maxInFlight } == 1)
}

@Test func salesforceStyle403UnknownClientIsAlsoAReHandshakeNotAnAuthFailure() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.connectErrors = ["403::Unknown client"] }
    let recorder = await run(server) { $0.subscribedCount.load(ordering: .relaxed) == 2 }
    #expect(recorder.authFailures.load(ordering: .relaxed) == 0)
}

@Test func theAckExtensionCarriesTheLastBatchWhenTheServerAgrees() async throws {
    let server = FakeBayeuxServer()
    let recorder = await run(server) { _ in server.state.withLock { $0.connects } >= 3 }
    _ = recorder
    let acks = server.state.withLock { $0.connectAcks }
    try #require(acks.count >= 3)
    #expect(acks[0] == .number(-1))
    #expect(acks[1] == .number(1))
    #expect(acks[2] == .number(2))
}

@Test func noAckWhenTheServerDoesNotAgree() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.ackSupported = false }
    _ = await run(server) { _ in server.state.withLock { $0.connects } >= 2 }
    #expect(server.state.withLock { $0.connectAcks }.allSatisfy { $0 == nil })
}

@Test func anHTTP401IsAnAuthenticationFailureThenItRetries() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.httpStatus = 401 }
    let recorder = await run(server) { $0.subscribedCount.load(ordering: .relaxed) == 1 }
    #expect(recorder.authFailures.load(ordering: .relaxed) == 1)
    #expect(recorder.downs.first?.lastError == "authentication failed: HTTP 401 from the Bayeux endpoint")
}

@Test func aRefusedHandshakeIsReportedAndRetriedWithBackoff() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.handshakeError = "401::Authentication failed" }
    let recorder = await run(server) { $0.downs.count >= 3 }
    #expect(recorder.authFailures.load(ordering: .relaxed) >= 3)
    #expect(recorder.downs.map(\.consecutiveFailures).prefix(3) == [1, 2, 3])
    #expect(!recorder.statuses.withLock { $0.contains { $0.phase == .up } })
}

@Test func aDeniedSubscriptionIsNamedInTheStatus() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.subscribeError = "403:/v2/me/calls:Permission Denied" }
    let recorder = await run(server) { $0.downs.count >= 1 }
    #expect(recorder.downs.first?.lastError == "subscription to /v2/me/calls denied: 403: Permission Denied")
}

@Test func aServerWithoutOurConnectionTypeIsRefused() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.offered = ["websocket"] }
    let recorder = await run(server) { $0.downs.count >= 1 }
    #expect(recorder.downs.first?.lastError?.contains("does not offer long-polling") == true)
}

@Test func adviceToHandshakeIsFollowedEvenAfterASuccessfulConnect() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.advice = .object([("reconnect", .string("handshake")), ("interval", .number(0))]) }
    let recorder = await run(server) { $0.subscribedCount.load(ordering: .relaxed) >= 3 }
    // Each session: one handshake, one connect, then a new handshake as advised.
    #expect(server.state.withLock { $0.handshakes } >= 3)
    #expect(server.state.withLock { $0.connects } >= 2)
    #expect(recorder.downs.first?.lastError?.contains("advised a new handshake") == true)
}

@Test(
    arguments: [
        ("402:xj3sjdsjdsjad:Unknown Client ID", 402, ["xj3sjdsjdsjad"], "Unknown Client ID", true, false),
        ("403::Unknown client", 403, [], "Unknown client", true, false),
        ("401::No client ID", 401, [], "No client ID", false, true),
        ("403:/foo/bar:Subscription denied", 403, ["/foo/bar"], "Subscription denied", false, true),
        ("404:/foo/bar,/x:Unknown Channel", 404, ["/foo/bar", "/x"], "Unknown Channel", false, false),
        ("something else", nil, [], "something else", false, false),
    ] as [(String, Int?, [String], String, Bool, Bool)])
func errorStringsAreParsed(_ text: String, _ code: Int?, _ arguments: [String], _ message: String, _ unknown: Bool, _ auth: Bool) {
    let error = BayeuxErrorString(parsing: text)
    #expect(error.code == code)
    #expect(error.arguments == arguments)
    #expect(error.message == message)
    #expect(error.meansUnknownClient == unknown)
    #expect(error.meansAuthenticationFailure == auth)
}

@Test func newerAdviceSupersedesOlder() {
    var advice = BayeuxAdvice()
    advice = advice.updated(with: .object([("timeout", .number(20000)), ("interval", .number(500))])).advice
    #expect(advice.timeout == .seconds(20))
    #expect(advice.interval == .milliseconds(500))
    advice = advice.updated(with: .object([("reconnect", .string("none"))])).advice
    #expect(advice.reconnect == .none)
    #expect(advice.timeout == .seconds(20))
}

@Test func eventsPushedDuringTheResyncAreDeliveredAfterItInOrder() async {
    let server = FakeBayeuxServer()
    let recorder = await run(
        server,
        whileSubscribing: { recorder in
            // A WebSocket server may write events while the feed fetches the platform's call
            // list: applied before that (older) list, they would be undone by it.
            server.push("/v2/me/calls", .object([("n", .number(1))]))
            server.push("/v2/me/calls", .object([("n", .number(2))]))
            // The fetch of the call list, which takes a while.
            try? await Task.sleep(for: .milliseconds(20))
            recorder.events.withLock { $0.append(BayeuxEvent(channel: "/resync-done", data: .null)) }
            Task {
                _ = await waitUntil(every: .milliseconds(2)) { recorder.subscribedCount.load(ordering: .relaxed) > 0 }
                server.push("/v2/me/calls", .object([("n", .number(3))]))
            }
        },
        until: { $0.eventCount == 4 },
    )
    // Once the resync is over, pushes are delivered as they come.
    #expect(recorder.events.withLock { $0.map { $0.data["n"]?.int ?? 0 } } == [0, 1, 2, 3])
    #expect(server.state.withLock { $0.opens } >= 1)
}

@Test func eachSessionOpensAndClosesTheTransport() async {
    let server = FakeBayeuxServer()
    server.state.withLock { $0.connectErrors = ["402:client-1:Unknown Client ID"] }
    _ = await run(server) { $0.subscribedCount.load(ordering: .relaxed) == 2 }
    let (opens, closes, handshakes) = server.state.withLock { ($0.opens, $0.closes, $0.handshakes) }
    #expect(opens == handshakes)
    #expect(closes == opens)
}

/// A consumer that is behind holds the next /meta/connect back, so the backlog stays in the
/// server; the events of one reply come with one batchEnded after them.
@Test func aConsumerThatIsBehindHoldsTheNextConnect() async throws {
    let server = FakeBayeuxServer()
    for index in 1...3 { server.publish("/v2/me/calls", .object([("n", .number(Double(index)))])) }
    let recorder = Recorder()
    let asked = Atomic<Int>(0)
    let batches = Atomic<Int>(0)
    let open = Locked(false)
    let client = BayeuxClient(
        configuration: BayeuxClient.Configuration(channels: ["/v2/me/calls"]), transport: server,
        callbacks: BayeuxClient.Callbacks(
            event: { event in recorder.events.withLock { $0.append(event) } },
            batchEnded: { batches.add(1, ordering: .relaxed) },
            readyForMore: {
                // The first connect goes; the one after the events waits until the gate opens.
                guard asked.add(1, ordering: .relaxed).newValue > 1 else { return }
                _ = await waitUntil(timeout: .seconds(60), every: .milliseconds(2)) { open.withLock { $0 } }
            }))
    let task = Task { await client.run() }
    try #require(await waitUntil { recorder.eventCount >= 3 })
    // That the next connect is held is shown by its not coming: 100 ms is twenty of the fake
    // server's long-poll holds.
    try await Task.sleep(for: .milliseconds(100))
    #expect(recorder.eventCount == 3)
    #expect(batches.load(ordering: .relaxed) == 1)
    #expect(server.state.withLock { $0.connects } == 1)
    open.withLock { $0 = true }
    #expect(await waitUntil { server.state.withLock { $0.connects } >= 2 })
    task.cancel()
    await task.value
}

@Test(arguments: [
    (#"{"timeout": 1e300}"#, "timeout", 120_000.0),
    (#"{"timeout": -5}"#, "timeout", 0.0),
    (#"{"interval": 600000}"#, "interval", 10_000.0),
    (#"{"interval": -1e308}"#, "interval", 0.0),
    (#"{"timeout": "soon"}"#, "timeout", 30_000.0),
])
func adviceOutOfRangeIsClampedWithAWarningAndNeverTraps(_ text: String, _ field: String, _ milliseconds: Double) throws {
    let json = try JSONValue.parse(text)
    let (advice, warnings) = BayeuxAdvice().updated(with: json)
    let value = field == "timeout" ? advice.timeout : advice.interval
    #expect(Double(value.nanosecondsClamped) / 1e6 == milliseconds)
    #expect(warnings.count == 1)
    #expect(warnings.first?.contains(field) == true)
}
