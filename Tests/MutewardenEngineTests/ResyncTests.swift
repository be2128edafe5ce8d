import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]

private func listed(_ id: String, attributes: [String: String], mute: ReportedMute? = nil, ext: String = "3001") -> CallUpdate {
    CallUpdate(
        feed: "sim", ids: CallIdentifiers(primary: id), agentExtension: ext, direction: .inbound, state: .established,
        attributes: attributes, mute: mute)
}

@Test func aCallThatEndedWhileTheFeedWasDownLeavesWithoutAnUndo() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: card)
    harness.event("c2", attributes: [:])
    let outcome = harness.engine.resync(feed: "sim", current: [listed("c2", attributes: [:])], at: harness.now)
    harness.drain()
    #expect(outcome.callsEnded == 1)
    #expect(harness.engine.statistics.trackedCalls == 1)
    #expect(harness.records(.windowClosed).first?[.result] == "call-ended")
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])
    // Its late events cannot bring it back.
    harness.event("c1", attributes: card)
    #expect(harness.count(.windowOpened) == 1)
}

@Test func aCaptureUnderWayAtResyncOpensItsWindow() {
    let harness = EngineHarness(policies: [Policies.pause()])
    let outcome = harness.engine.resync(feed: "sim", current: [listed("c9", attributes: card)], at: harness.now)
    harness.drain()
    #expect(outcome.callsUpdated == 1)
    #expect(harness.sends == ["pause-recording call c9 via recorder #1"])
}

@Test func aWindowWhosePlatformStateDisagreesIsReapplied() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", attributes: card, mute: .off)
    harness.event("c1", attributes: card, mute: .on)  // confirmed
    #expect(harness.count(.actionConfirmed) == 1)
    // While the feed was down the agent was unmuted on the platform.
    let outcome = harness.engine.resync(feed: "sim", current: [listed("c1", attributes: card, mute: .off)], at: harness.now)
    harness.drain()
    #expect(outcome.actionsReapplied == 1)
    #expect(harness.sends == ["mute call c1 via platform #1", "mute call c1 via platform #1"])
    // A fresh key: a platform that deduplicates must not drop the re-apply.
    #expect(harness.sent[0].request.idempotencyKey != harness.sent[1].request.idempotencyKey)
    // A consistent platform state is left alone.
    harness.event("c1", attributes: card, mute: .on)
    let again = harness.engine.resync(feed: "sim", current: [listed("c1", attributes: card, mute: .on)], at: harness.now)
    #expect(again.actionsReapplied == 0)
}

@Test func resyncLeavesOtherFeedsAlone() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: [:], feed: "other")
    _ = harness.engine.resync(feed: "sim", current: [], at: harness.now)
    #expect(harness.engine.statistics.trackedCalls == 1)
}

@Test func aRestoredWindowWhoseCallIsGoneClosesAtResyncWithoutAnUndo() {
    let policy = Policies.pause()
    let before = EngineHarness(policies: [policy])
    before.event("c1", attributes: card)
    let after = before.restarted(after: .seconds(5), policies: [policy])
    _ = after.engine.resync(feed: "sim", current: [], at: after.now)
    after.drain()
    #expect(after.records(.windowClosed).first?[.result] == "call-ended")
    #expect(after.sent.isEmpty)
    #expect(after.engine.statistics.openWindows == 0)
}

/// After a restart that lost a window (opened in the last milliseconds before a SIGKILL), the
/// platform still shows the agent muted: nothing would ever undo it, so the resync says so.
@Test func aMutedCallNoWindowExplainsIsReportedAsOrphaned() throws {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    _ = harness.engine.resync(
        feed: "sim", current: [listed("c7", attributes: [:], mute: .on), listed("c8", attributes: [:], mute: .off)],
        at: harness.now)
    harness.drain()
    let orphan = try #require(harness.records(.windowOrphaned).first)
    #expect(harness.count(.windowOrphaned) == 1)
    #expect(orphan.severity == .warning && orphan[.call] == "c7" && orphan[.reason] == "the agent is muted")
    // A muted call that its window explains is not an orphan.
    harness.event("c9", attributes: card, mute: .off)
    harness.event("c9", attributes: card, mute: .on)
    _ = harness.engine.resync(feed: "sim", current: [listed("c9", attributes: card, mute: .on)], at: harness.now)
    harness.drain()
    #expect(harness.count(.windowOrphaned) == 1)
}
