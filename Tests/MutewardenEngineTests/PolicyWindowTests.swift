import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]
private let done = ["PCI_STAGE": "DONE"]

/// One table-driven scenario: a policy, a script of events, and what must be sent.
struct WindowScenario: CustomTestStringConvertible, Sendable {
    var name: String
    var policy: PolicyDefinition
    var script: @Sendable (EngineHarness) -> Void
    var expectedSends: [String]
    var expectedAudits: [AuditKind: Int] = [:]
    var testDescription: String { name }
}

private let scenarios: [WindowScenario] = [
    WindowScenario(
        name: "opens on start, closes when start no longer holds",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: [:])
            h.event("c1", attributes: card)
            h.event("c1", attributes: [:])
        },
        expectedSends: ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1, .actionConfirmed: 2]),
    WindowScenario(
        name: "explicit stop condition closes; start alone going away does not",
        policy: Policies.pause(stop: .attributeEquals(key: "PCI_STAGE", value: "DONE")),
        script: { h in
            h.event("c1", attributes: card)
            h.event("c1", attributes: ["PCI_STAGE": "CVV"])  // neither: stays open
            h.event("c1", attributes: done)
        },
        expectedSends: ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1]),
    WindowScenario(
        name: "call ends mid-window: closed, and no undo is sent to the ended call",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: card)
            h.event("c1", .released)
        },
        expectedSends: ["pause-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1]),
    WindowScenario(
        name: "cap expiry with on_timeout resume undoes and alerts; no reopen while capture still reported",
        policy: Policies.pause(maxDuration: .seconds(60), onTimeout: .resume),
        script: { h in
            h.event("c1", attributes: card)
            h.wait(.seconds(61))
            h.event("c1", attributes: card)  // the same capture, still reported
        },
        expectedSends: ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1]),
    WindowScenario(
        name: "cap expiry with on_timeout keep leaves the action in place",
        policy: Policies.pause(maxDuration: .seconds(60), onTimeout: .keep),
        script: { h in
            h.event("c1", attributes: card)
            h.wait(.seconds(61))
            h.event("c1", attributes: [:])
        },
        expectedSends: ["pause-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1]),
    WindowScenario(
        name: "a new capture after the previous one ended opens a second window",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: card)
            h.event("c1", attributes: [:])
            h.event("c1", attributes: card)
        },
        expectedSends: [
            "pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1",
            "pause-recording call c1 via recorder #1",
        ],
        expectedAudits: [.windowOpened: 2, .windowClosed: 1]),
    WindowScenario(
        name: "duplicated events open one window only",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: card, sequence: 1)
            h.event("c1", attributes: card, sequence: 1)
            h.event("c1", attributes: card, sequence: 2)
            h.event("c1", attributes: card)
        },
        expectedSends: ["pause-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 0]),
    WindowScenario(
        name: "a reordered older event does not close the window",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: [:], sequence: 1)
            h.event("c1", attributes: card, sequence: 3)
            h.event("c1", attributes: [:], sequence: 2)  // late
        },
        expectedSends: ["pause-recording call c1 via recorder #1"],
        expectedAudits: [.windowOpened: 1, .windowClosed: 0]),
    WindowScenario(
        name: "a late event for a released call does not resurrect it",
        policy: Policies.pause(),
        script: { h in
            h.event("c1", attributes: [:])
            h.event("c1", .released)
            h.event("c1", attributes: card)
        },
        expectedSends: [],
        expectedAudits: [.windowOpened: 0]),
    WindowScenario(
        name: "dry-run records decisions and sends nothing",
        policy: Policies.pause(mode: .dryRun),
        script: { h in
            h.event("c1", attributes: card)
            h.event("c1", attributes: [:])
        },
        expectedSends: [],
        expectedAudits: [.windowOpened: 1, .windowClosed: 1, .dryRun: 2, .actionAttempt: 0]),
    WindowScenario(
        name: "first seen with start and stop both holding: nothing to protect",
        policy: Policies.pause(stop: .attributeEquals(key: "DONE", value: "1")),
        script: { h in h.event("c1", attributes: ["PCI_STAGE": "CARD", "DONE": "1"]) },
        expectedSends: [],
        expectedAudits: [.windowOpened: 0]),
    WindowScenario(
        name: "extension scope: a call started during the window is covered, by call",
        policy: Policies.pause(
            scope: .agentExtension, actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .call)]),
        script: { h in
            h.event("c1", ext: "3001", attributes: card)
            h.event("c2", .dialing, ext: "3001", attributes: [:])  // consult call from the same agent
            h.event("c3", ext: "4000", attributes: [:])  // another agent: not covered
            h.event("c1", ext: "3001", attributes: [:])
        },
        expectedSends: [
            "mute call c1 via recorder #1", "mute call c2 via recorder #1",
            "unmute call c1 via recorder #1", "unmute call c2 via recorder #1",
        ],
        expectedAudits: [.windowOpened: 2, .windowClosed: 1]),
    WindowScenario(
        name: "extension scope by extension: re-sent when a new call starts, undone once",
        policy: Policies.pause(
            scope: .agentExtension,
            actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .agentExtension)]),
        script: { h in
            h.event("c1", ext: "3001", attributes: card)
            h.event("c2", .dialing, ext: "3001", attributes: [:])
            h.event("c1", ext: "3001", attributes: [:])
        },
        expectedSends: [
            "mute extension 3001 via recorder #1", "mute extension 3001 via recorder #1",
            "unmute extension 3001 via recorder #1",
        ]),
    WindowScenario(
        name: "extension scope: the window stays open while another trigger call is capturing",
        policy: Policies.pause(scope: .agentExtension),
        script: { h in
            h.event("c1", ext: "3001", attributes: card)
            h.event("c2", ext: "3001", attributes: card)
            h.event("c1", ext: "3001", attributes: [:])
            h.event("c2", .released, ext: "3001")
        },
        expectedSends: [
            "pause-recording call c1 via recorder #1", "pause-recording call c2 via recorder #1",
            "resume-recording call c1 via recorder #1",
        ],
        expectedAudits: [.windowOpened: 2, .windowClosed: 1]),
    WindowScenario(
        name: "call scope with a policy on another feed: untouched",
        policy: PolicyDefinition(
            name: "other", feeds: ["elsewhere"], start: Policies.capture,
            actions: [ActionSpec(kind: .mute, target: "recorder")]),
        script: { h in h.event("c1", attributes: card) },
        expectedSends: []),
]

@Test(arguments: scenarios)
func policyWindowScenario(_ scenario: WindowScenario) {
    let harness = EngineHarness(policies: [scenario.policy])
    scenario.script(harness)
    #expect(harness.sends == scenario.expectedSends)
    for (kind, count) in scenario.expectedAudits {
        #expect(harness.count(kind) == count, "\(kind.rawValue)")
    }
    #expect(harness.count(.actionFailed) == 0)
}

@Test func capExpiryIsAnAlert() {
    let harness = EngineHarness(policies: [Policies.pause(maxDuration: .seconds(60), onTimeout: .keep)])
    harness.event("c1", attributes: card)
    harness.wait(.seconds(59))
    #expect(harness.count(.windowClosed) == 0)
    harness.wait(.seconds(2))
    let closed = try! #require(harness.records(.windowClosed).first)
    #expect(closed.severity == .error)
    #expect(closed[.result] == "cap-expired")
    #expect(closed.message.contains("on_timeout: keep"))
    #expect(harness.engine.statistics.openWindows == 0)
}

@Test func windowRecordsCarryTheAuditFields() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", ext: "3001", attributes: ["PCI_STAGE": "CARD", "PAN": "4111111111111111"])
    let opened = try! #require(harness.records(.windowOpened).first)
    #expect(opened[.policy] == "card")
    #expect(opened[.call] == "c1")
    #expect(opened[.extension] == "3001")
    #expect(opened[.feed] == "sim")
    #expect(opened[.window] == "1")
    // The default renderer never shows attribute values.
    #expect(opened[.attributes] == "PAN=<redacted>,PCI_STAGE=<redacted>")
    #expect(!harness.records.contains { "\($0)".contains("4111111111111111") })
}

@Test func idempotencyKeysAreStableAcrossReplicasAndDistinctPerWindowAndVerb() {
    func run() -> [String] {
        let harness = EngineHarness(policies: [Policies.pause()])
        harness.event("c1", attributes: card)
        harness.event("c1", attributes: [:])
        harness.event("c1", attributes: card)
        return harness.sent.map(\.request.idempotencyKey)
    }
    let first = run()
    let replica = run()
    #expect(first == replica)
    #expect(Set(first).count == 3)
    #expect(first.allSatisfy { $0.count == 36 && $0.split(separator: "-").count == 5 })
}

@Test func idleCallsExpireWithAWarningAndKeepTheirActions() {
    let harness = EngineHarness(
        policies: [Policies.pause()], limits: TrackerLimits(maxCalls: 10, idleLimit: .seconds(300)))
    harness.event("c1", attributes: card)
    harness.wait(.seconds(340))
    #expect(harness.count(.callExpired) == 1)
    #expect(harness.records(.callExpired).first?.severity == .warning)
    #expect(harness.engine.statistics.trackedCalls == 0)
    #expect(harness.records(.windowClosed).first?[.result] == "call-expired")
    // Muted stays muted: the call may still be live.
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])
}

@Test func trackerIsBoundedAndSaysSo() {
    let harness = EngineHarness(policies: [Policies.pause()], limits: TrackerLimits(maxCalls: 3))
    for index in 0..<10 { harness.event("c\(index)", attributes: [:]) }
    #expect(harness.engine.statistics.trackedCalls == 3)
    #expect(harness.engine.statistics.callsRefused == 7)
    // Rate limited: one error record, not seven.
    #expect(harness.count(.trackerFull) == 1)
    #expect(harness.records(.trackerFull).first?.severity == .error)
    harness.event("c0", .released)
    harness.event("c99", attributes: [:])
    #expect(harness.engine.statistics.trackedCalls == 3)
}

@Test func releasedCallsLeaveTheTracker() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: [:])
    harness.event("c2", attributes: [:])
    #expect(harness.engine.statistics.trackedCalls == 2)
    harness.event("c1", .released)
    #expect(harness.engine.statistics.trackedCalls == 1)
}

@Test(arguments: [
    (Condition.attributeNotEquals(key: "S", value: "X"), ["S": "Y"], true),
    (Condition.attributeNotEquals(key: "S", value: "X"), [:], true),
    (Condition.attributeNotEquals(key: "S", value: "X"), ["S": "X"], false),
    (Condition.attributeIn(key: "S", values: ["A", "B"]), ["S": "B"], true),
    (Condition.attributeIn(key: "S", values: ["A", "B"]), ["S": "C"], false),
    (Condition.attributeMatches(key: "S", pattern: "CARD_[0-9]+"), ["S": "CARD_12"], true),
    (Condition.attributeMatches(key: "S", pattern: "CARD_[0-9]+"), ["S": "XCARD_12"], false),
    (Condition.attributePresent(key: "S"), ["S": ""], true),
    (Condition.attributeAbsent(key: "S"), ["T": "1"], true),
    (Condition.state([.established, .held]), [:], true),
    (Condition.state([.ringing]), [:], false),
    (Condition.all([.attributePresent(key: "A"), .attributePresent(key: "B")]), ["A": "1"], false),
    (Condition.any([.attributePresent(key: "A"), .attributePresent(key: "B")]), ["A": "1"], true),
])
func conditionEvaluation(_ condition: Condition, _ attributes: [String: String], _ expected: Bool) throws {
    let compiled = try CompiledCondition(condition)
    #expect(compiled.holds(attributes: attributes, state: .established) == expected)
}
