import Foundation
import Logging
import MutewardenEngine
import MutewardenHTTP
import MutewardenLogging
import MutewardenModel
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenDaemon

/// A target whose attempts never finish: what is in flight stays in flight for the test.
private struct HangingTarget: ActionTarget {
    var descriptor: TargetDescriptor { TargetDescriptor(name: "recorder", confirmsByEvent: false) }

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(60)) }
        return .failed(ActionFailure(.retryable, "cancelled"))
    }
}

/// Notes, as each audit record is written (on the engine thread), its kind and call and how many
/// attempts had started. With an `interruption`, hands the loop that input as the first record
/// is written, as a WebSocket frame arriving meanwhile would.
private final class RecordWitness: LogHandler, Sendable {
    let seen = Mutex<[(kind: String, call: String, attemptsStarted: Int)]>([])
    let loop = Mutex<EngineLoop?>(nil)
    let interruption: CallUpdate?

    init(interruption: CallUpdate? = nil) { self.interruption = interruption }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .debug }
        set {}
    }
    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        guard case .string(let kind) = event.metadata?[AuditLogger.kindKey], let loop = loop.withLock({ $0 }) else { return }
        let call: String
        if case .string(let value) = event.metadata?["call"] { call = value } else { call = "" }
        let isFirst = seen.withLock { seen in
            seen.append((kind, call, loop.attemptsInFlightCount))
            return seen.count == 1
        }
        if isFirst, let interruption { loop.post(.update(interruption)) }
    }

    /// Waits (bounded) until `count` records are seen, and returns them all.
    func awaitRecords(_ count: Int) async -> [(kind: String, call: String, attemptsStarted: Int)] {
        _ = await waitUntil { seen.withLock { $0.count } >= count }
        return seen.withLock { $0 }
    }
}

private func capture(_ id: String) -> CallUpdate {
    CallUpdate(
        feed: "desk", ids: CallIdentifiers(primary: id), agentExtension: "3001", direction: .inbound,
        state: .established, attributes: ["PCI_STAGE": "CARD"])
}

/// A loop, not yet started, that logs to `witness` and pauses the recording through a target
/// whose attempts never finish while PCI_STAGE is CARD on feed "desk".
private func witnessedLoop(_ witness: RecordWitness) throws -> EngineLoop {
    let logger = Logger(label: "mutewarden") { _ in witness }
    let loop = EngineLoop(
        targets: ["recorder": HangingTarget()], feeds: ["desk"], http: try HTTPTransport.hosted().host,
        clock: SystemClock(),
        audit: AuditLogger(logger: logger), logger: logger, notifier: SystemdNotifier(), stateWriter: nil)
    witness.loop.withLock { $0 = loop }
    return loop
}

private func start(_ loop: EngineLoop) throws {
    let policy = PolicyDefinition(
        name: "card", feeds: ["desk"], start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
        actions: [ActionSpec(kind: .pauseRecording, target: "recorder", deadline: .seconds(60))])
    try loop.start(
        configuration: EngineConfiguration(
            policies: [policy], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        options: EngineOptions(randomSeed: 1), restoring: nil)
}

@Suite struct EngineLoopTests {
    /// A window that opens behind other inputs of the same wake-up must not wait for their audit
    /// records: every send of the batch starts before its first record is written.
    @Test func everySendOfABatchStartsBeforeAnyOfItsRecords() async throws {
        let witness = RecordWitness()
        let loop = try witnessedLoop(witness)
        // Posted before the thread starts, so that its first wake-up drains both.
        loop.post(.update(capture("c1")))
        loop.post(.update(capture("c2")))
        try start(loop)
        defer { loop.stop() }
        let seen = await witness.awaitRecords(4)
        #expect(seen.filter { $0.kind == "window.opened" }.count == 2)
        #expect(seen.first?.attemptsStarted == 2, "records written before every send of the batch had started: \(seen)")
    }

    /// An input that arrives while a batch's records are being written has its sends started
    /// before the rest of those records; every record is still written, in order.
    @Test func recordsStepAsideForAnInputThatArrivesWhileTheyAreWritten() async throws {
        let witness = RecordWitness(interruption: capture("c2"))
        let loop = try witnessedLoop(witness)
        loop.post(.update(capture("c1")))
        try start(loop)
        defer { loop.stop() }
        let seen = await witness.awaitRecords(4)
        #expect(
            seen.map { "\($0.kind) \($0.call)" } == [
                "window.opened c1", "action.attempt c1", "window.opened c2", "action.attempt c2",
            ])
        // c1's attempt record came after c2's send had started, not before.
        #expect(seen.map(\.attemptsStarted) == [1, 2, 2, 2], "\(seen)")
    }
}

/// A running loop, quiet logger, whose one policy pauses the recording through `target` while
/// PCI_STAGE is CARD on feed "desk".
private func startedLoop(pausingWith target: any ActionTarget) throws -> EngineLoop {
    let logger = Logger(label: "mutewarden") { _ in SwiftLogNoOpLogHandler() }
    let loop = EngineLoop(
        targets: ["recorder": target], feeds: ["desk"], http: try HTTPTransport.hosted().host, clock: SystemClock(),
        audit: AuditLogger(logger: logger), logger: logger, notifier: SystemdNotifier(), stateWriter: nil)
    try start(loop)
    return loop
}

/// A target whose attempt waits until the test lets it go, then says where it finished.
private final class HeldTarget: ActionTarget, Sendable {
    var descriptor: TargetDescriptor { TargetDescriptor(name: "recorder", confirmsByEvent: false) }
    let held = Mutex<CheckedContinuation<Void, Never>?>(nil)
    let finishedOn = Mutex<String?>(nil)

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        await withCheckedContinuation { continuation in held.withLock { $0 = continuation } }
        let name = currentThreadName()
        finishedOn.withLock { $0 = name }
        return .accepted
    }
}

extension EngineLoopTests {
    /// Attempts run on the engine thread; one still waiting when its loop stops must not hang
    /// forever with it: it finishes on the leftover thread.
    @Test func anAttemptThatOutlivesItsLoopStillFinishes() async throws {
        let target = HeldTarget()
        let loop = try startedLoop(pausingWith: target)
        loop.post(
            .update(
                CallUpdate(
                    feed: "desk", ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound,
                    state: .established, attributes: ["PCI_STAGE": "CARD"])))
        _ = await waitUntil { target.held.withLock { $0 != nil } }
        loop.stop()
        let continuation = target.held.withLock { $0 }
        #expect(continuation != nil, "the attempt never started")
        continuation?.resume()
        _ = await waitUntil { target.finishedOn.withLock { $0 != nil } }
        #expect(target.finishedOn.withLock { $0 } == "mw-leftovers")
    }
}

/// What happened, in order, from any thread.
private final class OrderLog: Sendable {
    let entries = Mutex<[String]>([])
    func note(_ entry: String) { entries.withLock { $0.append(entry) } }
}

/// Notes when an attempt starts.
private struct OrderNotingTarget: ActionTarget {
    var descriptor: TargetDescriptor { TargetDescriptor(name: "recorder", confirmsByEvent: false) }
    let order: OrderLog

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        order.note("send")
        return .accepted
    }
}

extension EngineLoopTests {
    /// A feed on the engine thread that posts a batch and then asks for capacity (the Genesys
    /// feed does before each long poll) goes on only once the batch's sends have left: its next
    /// long poll must not reach the HTTP thread ahead of them.
    @Test func aFeedOnTheEngineThreadGoesOnOnlyAfterItsBatchsSends() async throws {
        let order = OrderLog()
        let loop = try startedLoop(pausingWith: OrderNotingTarget(order: order))
        defer { loop.stop() }
        let sink = EngineSink(loop: loop)
        let feed = Task(executorPreference: loop.executor) {
            sink.deliver(
                contentsOf: ["c1", "c2"].map { id in
                    CallUpdate(
                        feed: "desk", ids: CallIdentifiers(primary: id), agentExtension: "3001", direction: .inbound,
                        state: .established, attributes: ["PCI_STAGE": "CARD"])
                })
            await sink.awaitCapacity()
            order.note("next poll")
        }
        await feed.value
        #expect(order.entries.withLock { $0 } == ["send", "send", "next poll"])
    }
}
