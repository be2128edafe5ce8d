import MutewardenModel
import Testing

@testable import MutewardenEngine

/// Drives an engine on a fake clock and records what it asks for.
final class EngineHarness {
    let engine: Engine
    private(set) var now = MonotonicInstant.zero
    /// Every send effect, in order.
    private(set) var sent: [(request: ActionRequest, ticket: AttemptTicket)] = []
    private(set) var records: [AuditRecord] = []
    /// Attempts not yet answered.
    private(set) var pending: [(request: ActionRequest, ticket: AttemptTicket)] = []
    /// Answers each attempt as it is sent; nil leaves it pending.
    var autoAnswer: (ActionRequest) -> ActionAttemptResult? = { _ in .accepted }

    /// Wall-clock nanoseconds at `now`: the harness's wall clock starts at an arbitrary date and
    /// moves with the monotonic one.
    var wallNow: Int64 { 1_800_000_000_000_000_000 + now.nanoseconds + wallOffset }
    var wallOffset: Int64 = 0

    init(
        policies: [PolicyDefinition],
        targets: [TargetDescriptor] = [
            TargetDescriptor(name: "recorder", confirmsByEvent: false),
            TargetDescriptor(name: "platform", confirmsByEvent: true),
            TargetDescriptor(name: "backup", confirmsByEvent: false),
        ], limits: TrackerLimits = TrackerLimits()
    ) {
        engine = try! Engine(
            configuration: EngineConfiguration(policies: policies, targets: targets, limits: limits),
            options: EngineOptions(randomSeed: 42))
    }

    func event(
        _ id: String, _ state: CallState = .established, ext: String? = "3001", attributes: [String: String]? = nil,
        mute: ReportedMute? = nil, recording: ReportedRecording? = nil, sequence: UInt64? = nil, feed: String = "sim"
    ) {
        engine.ingest(
            CallUpdate(
                feed: feed, ids: CallIdentifiers(primary: id), agentExtension: ext, direction: .inbound, state: state,
                attributes: attributes, mute: mute, recording: recording, sequence: sequence),
            at: now)
        drain()
    }

    func wait(_ duration: Duration) {
        let end = now + duration
        while let next = engine.nextWakeup, next <= end {
            now = max(now, next)
            engine.advance(to: now)
            drain()
        }
        now = end
        engine.advance(to: now)
        drain()
    }

    /// Moves the monotonic clock without firing timers: a process that was down, say.
    func jump(_ duration: Duration) { now = now + duration }

    /// A restart: a new engine with `policies`, restored from this one's state, whose wall clock
    /// is `downtime` later and whose monotonic clock starts elsewhere.
    func restarted(after downtime: Duration, policies: [PolicyDefinition]) -> EngineHarness {
        let state = engine.snapshot(now: now, wallNow: wallNow)
        let next = EngineHarness(policies: policies)
        next.now = MonotonicInstant(nanoseconds: 5_000_000_000_000)
        next.wallOffset = wallNow + downtime.nanosecondsClamped - next.wallNow
        next.autoAnswer = autoAnswer
        next.engine.restore(state, now: next.now, wallNow: next.wallNow)
        next.drain()
        return next
    }

    /// Answers the oldest pending attempt.
    func answer(_ result: ActionAttemptResult) {
        guard !pending.isEmpty else { return }
        let attempt = pending.removeFirst()
        engine.attemptFinished(attempt.ticket, result: result, at: now)
        drain()
    }

    func drain() {
        while engine.hasEffects {
            for effect in engine.takeEffects() {
                switch effect {
                case .audit(let record): records.append(record)
                case .send(let request, let ticket):
                    sent.append((request, ticket))
                    if let result = autoAnswer(request) {
                        engine.attemptFinished(ticket, result: result, at: now)
                    } else {
                        pending.append((request, ticket))
                    }
                }
            }
        }
        verifyStateImage()
    }

    /// After every step: the engine's incremental state image must say what a rebuild of every
    /// window says, or some change to a window bypassed `touch`.
    func verifyStateImage() {
        let incremental = engine.snapshot(now: now, wallNow: wallNow)
        let full = engine.fullSnapshot(now: now, wallNow: wallNow)
        guard incremental != full else { return }
        let stale = zip(incremental.windows, full.windows).filter { $0 != $1 }.map(\.0.sequence)
        let counts = "\(incremental.windows.count) against \(full.windows.count) windows"
        Issue.record("the state image differs from a full rebuild: \(counts), stale entries for window sequences \(stale)")
    }

    /// "mute call c1 via recorder #1" for each send, in order.
    var sends: [String] {
        sent.map { "\($0.request.kind.operation($0.request.verb)) \($0.request.address) via \($0.request.target) #\($0.request.attempt)" }
    }

    func records(_ kind: AuditKind) -> [AuditRecord] { records.filter { $0.kind == kind } }
    func count(_ kind: AuditKind) -> Int { records(kind).count }
}

enum Policies {
    static let capture = Condition.attributeEquals(key: "PCI_STAGE", value: "CARD")

    static func pause(
        scope: WindowScope = .call, mode: PolicyMode = .enforce, stop: Condition? = nil,
        maxDuration: Duration = .seconds(600), onTimeout: TimeoutBehavior = .resume,
        actions: [ActionSpec] = [ActionSpec(kind: .pauseRecording, target: "recorder")]
    ) -> PolicyDefinition {
        PolicyDefinition(
            name: "card", feeds: ["sim"], start: capture, stop: stop, actions: actions, scope: scope,
            maxDuration: maxDuration, onTimeout: onTimeout, mode: mode)
    }
}
