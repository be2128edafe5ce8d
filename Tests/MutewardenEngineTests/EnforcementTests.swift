import MutewardenModel
import Testing

@testable import MutewardenEngine

// Every capture ends protected or alarmed: "the call is gone" only when the feed agrees, actions
// kept up after a control failure, and drift re-applied.

private let card = ["PCI_STAGE": "CARD"]
private let transient = ActionAttemptResult.failed(ActionFailure(.retryable, "HTTP 503 from target", code: "503"))
private let gone = ActionAttemptResult.failed(ActionFailure(.callGone, "call not found", code: "6"))

@Test func callGoneWhileTheFeedShowsTheCallLiveIsAFailureNotAnAbandon() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in gone }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))
    #expect(harness.count(.actionAbandoned) == 0)
    #expect(harness.records(.actionRetry).first?.message.contains("the feed still shows it live") == true)
    let failure = try #require(harness.records(.actionFailed).first)
    #expect(failure.severity == .critical)
    // The feed then agrees: the call ended. The action stops there, with no more attempts.
    harness.event("c1", .released)
    let sentAtEnd = harness.sent.count
    harness.wait(.seconds(30))
    #expect(harness.sent.count == sentAtEnd)
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func callGoneWhenTheFeedAgreesIsAbandonedWithoutAnAlarm() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card)
    harness.event("c2", attributes: [:])  // keeps the engine busy with another call
    // The pause is in flight when the call ends; the platform then answers "gone".
    harness.event("c1", .released)
    harness.answer(gone)
    harness.wait(.seconds(5))
    #expect(harness.count(.actionFailed) == 0)
    #expect(harness.sent.count == 1)
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func afterAControlFailureTheApplyIsKeptUpUntilConfirmedAndTheGapIsRecorded() throws {
    let policy = Policies.pause(actions: [
        ActionSpec(
            kind: .pauseRecording, target: "recorder", deadline: .seconds(2),
            retry: RetryPolicy(enforceInterval: .seconds(5)))
    ])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))
    let failure = try #require(harness.records(.actionFailed).first)
    #expect(failure.message.contains("trying again until it is confirmed or the window closes"))
    // It keeps trying, at intervals growing to 5 s and no more.
    let afterFailure = harness.sent.count
    harness.wait(.seconds(30))
    let enforcementSends = harness.sent.count - afterFailure
    #expect(enforcementSends >= 6 && enforcementSends <= 10, "\(enforcementSends) attempts in 30 s")
    #expect(harness.count(.actionFailed) == 1)  // one alarm, not one per attempt
    // The target comes back: the pause is confirmed, and the record says how long the call was bare.
    harness.autoAnswer = { _ in .accepted }
    harness.wait(.seconds(6))
    let recovered = try #require(harness.records(.actionRecovered).first)
    #expect(recovered.severity == .warning)
    #expect(recovered[.result] == "recovered")
    let unprotected = try #require(Double(recovered[.latencyMs] ?? ""))
    #expect(unprotected >= 33_000 && unprotected <= 39_000)
    #expect(harness.engine.statistics.jobsInProgress == 0)
    let sentAfterRecovery = harness.sent.count
    harness.wait(.seconds(30))
    #expect(harness.sent.count == sentAfterRecovery)
    // The window then closes protected.
    harness.event("c1", attributes: [:])
    #expect(harness.records(.windowClosed).last?[.reason] == nil)
}

@Test func aWindowThatClosesStillUnprotectedSaysSo() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { request in request.verb == .apply ? transient : .accepted }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(10))
    harness.event("c1", attributes: [:])
    let closed = try #require(harness.records(.windowClosed).last)
    #expect(closed.severity == .error)
    #expect(closed[.reason] == "unprotected")
    #expect(closed.message.contains("still unprotected at close: pause-recording call c1 never confirmed"))
    // Enforcement stops with the window, and the undo goes out.
    let sentAtClose = harness.sent.count
    harness.wait(.seconds(30))
    #expect(harness.sent.count == sentAtClose)
    #expect(harness.sends.last?.hasPrefix("resume-recording call c1") == true)
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func theFallbackFailsTooThenTheLastTargetIsKeptUp() {
    let policy = Policies.pause(actions: [
        ActionSpec(kind: .pauseRecording, target: "recorder", deadline: .seconds(1), fallback: ["backup"])
    ])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(10))
    #expect(harness.count(.actionFailed) == 2)
    #expect(harness.sends.suffix(3).allSatisfy { $0.contains("via backup") })
}

@Test func aStoppingDaemonEndsEnforcementWithoutWaiting() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))
    #expect(harness.engine.statistics.jobsInProgress == 1)
    harness.engine.beginShutdown(at: harness.now)
    harness.drain()
    #expect(harness.engine.statistics.jobsInProgress == 0)
    #expect(harness.records(.actionAbandoned).last?.message.contains("still unconfirmed after its control failure") == true)
}

@Test func driftIsReappliedAtOnceAndARepeatIsCritical() throws {
    let policy = Policies.pause(actions: [ActionSpec(kind: .pauseRecording, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", attributes: card, recording: .recording)
    harness.event("c1", attributes: card, recording: .paused)
    #expect(harness.count(.actionConfirmed) == 1)
    // Someone resumes the recording while the card is being read out.
    harness.event("c1", attributes: card, recording: .recording)
    let drift = try #require(harness.records(.windowDrift).first)
    #expect(drift.severity == .warning)
    #expect(drift[.call] == "c1" && drift[.window] == "1" && drift[.reason] == "the recording is running")
    #expect(harness.sent.count == 2)
    // The next generation of the key: what a replica seeing the same events sends too, and not
    // the first apply's, which a deduplicating platform would drop.
    #expect(Set(harness.sent.map(\.request.idempotencyKey)).count == 2)
    harness.event("c1", attributes: card, recording: .paused)
    #expect(harness.count(.actionConfirmed) == 2)
    // A second drift in the same window is critical.
    harness.event("c1", attributes: card, recording: .recording)
    #expect(harness.records(.windowDrift).last?.severity == .critical)
    harness.event("c1", attributes: card, recording: .paused)
    // After the window closes, a running recording is what was asked for: no drift.
    harness.event("c1", attributes: [:], recording: .paused)
    harness.event("c1", attributes: [:], recording: .recording)
    #expect(harness.count(.windowDrift) == 2)
    harness.wait(.seconds(5))
    #expect(harness.count(.actionFailed) == 0)
}

@Test func aStateReportedWhileTheApplyIsUnderWayIsNotDrift() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card, mute: .off)
    harness.event("c1", attributes: card, mute: .on)
    harness.event("c1", attributes: card, mute: .off)  // the mute is still in flight: just news
    harness.answer(.accepted)
    #expect(harness.count(.windowDrift) == 0)
    #expect(harness.sent.count == 1)
}

@Test func aContradictionFoundAtResyncIsReappliedOnceWithADriftRecord() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", attributes: card, mute: .off)
    harness.event("c1", attributes: card, mute: .on)
    let outcome = harness.engine.resync(
        feed: "sim",
        current: [
            CallUpdate(
                feed: "sim", ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound,
                state: .established, attributes: card, mute: .off)
        ],
        at: harness.now)
    harness.drain()
    #expect(outcome.actionsReapplied == 1)
    #expect(harness.sent.count == 2)
    #expect(harness.records(.windowDrift).first?[.reason] == "the agent is unmuted after the feed reconnected")
}
