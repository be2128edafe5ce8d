import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]

@Test func theStatusSnapshotTellsConfirmedPendingAndFailedActionsApart() throws {
    let harness = EngineHarness(policies: [
        Policies.pause(actions: [
            ActionSpec(kind: .pauseRecording, target: "recorder"),
            ActionSpec(kind: .mute, target: "platform", deadline: .seconds(1)),
        ])
    ])
    // The recorder confirms on acceptance; the platform accepts and never confirms by event.
    harness.event("c1", attributes: card)
    var snapshot = harness.engine.statusSnapshot(limit: 10)
    #expect(snapshot.windowsTotal == 1)
    let window = try #require(snapshot.windows.first)
    #expect(window.policy == "card" && window.call == "c1" && window.agentExtension == "3001")
    #expect(window.actions.map(\.state) == [.confirmed, .pending])
    #expect(window.actions.map(\.operation) == ["pause-recording", "mute"])
    #expect(window.actions[0].confirmedAt != nil && window.actions[0].applyStartedAt != nil)
    #expect(snapshot.jobsTotal == 1)
    #expect(snapshot.jobs.first?.phase == .awaitingConfirmation)
    #expect(snapshot.jobs.first?.target == "platform")
    #expect(snapshot.jobsByPhase == ["awaiting-confirmation": 1])
    // The keys only, by default: the engine never renders a value on its own.
    #expect(window.attributes == "PCI_STAGE=<redacted>")

    // Past its deadline: a control failure, and the mute is enforced, never confirmed.
    harness.wait(.seconds(2))
    snapshot = harness.engine.statusSnapshot(limit: 10)
    #expect(snapshot.windows.first?.actions.map(\.state) == [.confirmed, .failed])
    #expect(snapshot.statistics.controlFailures == 1)
    #expect(snapshot.jobs.contains { $0.enforcing && $0.deadline == nil })
}

@Test func theStatusSnapshotKeepsTheOldestWindowsUpToItsLimitAndCountsThemAll() {
    let harness = EngineHarness(policies: [Policies.pause()])
    for index in 0..<30 {
        harness.event("c\(index)", attributes: card)
        harness.jump(.milliseconds(10))
    }
    let snapshot = harness.engine.statusSnapshot(limit: 5)
    #expect(snapshot.windowsTotal == 30)
    #expect(snapshot.windows.map(\.call) == ["c0", "c1", "c2", "c3", "c4"])
    #expect(harness.engine.statusSnapshot(limit: 0).windows.isEmpty)
}

@Test func aDryRunWindowsActionsShowAsSimulated() {
    let harness = EngineHarness(policies: [Policies.pause(mode: .dryRun)])
    harness.event("c1", attributes: card)
    let snapshot = harness.engine.statusSnapshot(limit: 10)
    #expect(snapshot.windows.first?.actions.map(\.state) == [.simulated])
    #expect(snapshot.jobsTotal == 0)
}
