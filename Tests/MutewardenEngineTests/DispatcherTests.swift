import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]
private let transient = ActionAttemptResult.failed(ActionFailure(.retryable, "HTTP 503 from target", code: "503"))

@Test func retriesWithBackoffUntilAccepted() {
    let harness = EngineHarness(policies: [Policies.pause()])
    var failuresLeft = 2
    harness.autoAnswer = { _ in
        defer { failuresLeft -= 1 }
        return failuresLeft > 0 ? transient : .accepted
    }
    harness.event("c1", attributes: card)
    // The first attempt goes out at once; the retries wait for their jittered backoff.
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])
    harness.wait(.seconds(1))
    #expect(
        harness.sends == [
            "pause-recording call c1 via recorder #1", "pause-recording call c1 via recorder #2",
            "pause-recording call c1 via recorder #3",
        ])
    #expect(harness.count(.actionRetry) == 2)
    #expect(harness.count(.actionConfirmed) == 1)
    #expect(harness.count(.actionFailed) == 0)
    // Every attempt of one action carries one idempotency key.
    #expect(Set(harness.sent.map(\.request.idempotencyKey)).count == 1)
}

@Test func backoffIsBoundedByTheRetryPolicy() {
    let policy = Policies.pause(actions: [
        ActionSpec(
            kind: .mute, target: "recorder", deadline: .seconds(30),
            retry: RetryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(400)))
    ])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    var lastCount = harness.sent.count
    // Full jitter caps each wait at min(max, initial * 2^n): never more than 400 ms.
    for _ in 0..<20 {
        harness.wait(.milliseconds(401))
        #expect(harness.sent.count >= lastCount + 1)
        lastCount = harness.sent.count
    }
}

@Test func unconfirmedByDeadlineIsAControlFailureAtCritical() throws {
    let policy = Policies.pause(actions: [ActionSpec(kind: .pauseRecording, target: "recorder", deadline: .seconds(2))])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))
    let failure = try #require(harness.records(.actionFailed).first)
    #expect(harness.count(.actionFailed) == 1)
    #expect(failure.severity == .critical)
    #expect(failure[.policy] == "card")
    #expect(failure[.call] == "c1")
    #expect(failure[.target] == "recorder")
    #expect(failure[.error] == "HTTP 503 from target (code 503)")
    #expect(failure[.errorCode] == "503")
    #expect(Int(failure[.attempt] ?? "") ?? 0 >= 2)
    #expect(failure.message.hasPrefix("PCI control failure"))
    #expect(harness.engine.statistics.controlFailures == 1)
    // The window is still open: the apply is kept up (EnforcementTests).
    #expect(harness.engine.statistics.jobsInProgress == 1)
}

@Test func acceptedButNeverConfirmedByEventFailsAtTheDeadline() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform", deadline: .seconds(2))])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", attributes: card, mute: .off)
    #expect(harness.count(.actionConfirmed) == 0)
    harness.wait(.seconds(2))
    #expect(harness.count(.actionFailed) == 1)
    #expect(harness.records(.actionFailed).first?[.error] == "no confirmation received")
}

@Test func confirmationByEventWithinTheDeadline() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "platform", deadline: .seconds(2))])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", attributes: card, mute: .off)
    harness.wait(.milliseconds(300))
    harness.event("c1", attributes: card, mute: .on)
    #expect(harness.count(.actionConfirmed) == 1)
    #expect(harness.records(.actionConfirmed).first?[.latencyMs] == "300.000")
    harness.event("c1", attributes: [:], mute: .on)
    #expect(harness.sends.last == "unmute call c1 via platform #1")
    #expect(harness.count(.actionConfirmed) == 1)  // the unmute waits for mute: Off
    harness.event("c1", attributes: [:], mute: .off)
    #expect(harness.count(.actionConfirmed) == 2)
    harness.wait(.seconds(5))
    #expect(harness.count(.actionFailed) == 0)
}

@Test func anEventThatArrivesBeforeTheHTTPAnswerStillConfirms() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .pauseRecording, target: "platform")])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card, recording: .recording)
    harness.event("c1", attributes: card, recording: .paused)
    harness.answer(.accepted)
    #expect(harness.count(.actionConfirmed) == 1)
}

@Test func fallbackTargetIsTriedAfterAControlFailure() {
    let policy = Policies.pause(actions: [
        ActionSpec(kind: .pauseRecording, target: "recorder", deadline: .seconds(2), fallback: ["backup"])
    ])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { request in request.target == "recorder" ? transient : .accepted }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))
    #expect(harness.count(.actionFailed) == 1)
    #expect(harness.records(.actionFailed).first?.message.contains("trying fallback target backup") == true)
    #expect(harness.sends.last == "pause-recording call c1 via backup #1")
    #expect(harness.records(.actionConfirmed).map { $0[.target] } == ["backup"])
    // The undo goes to every target that may have acted: the primary's attempts may have landed.
    harness.autoAnswer = { _ in .accepted }
    harness.event("c1", attributes: [:])
    #expect(Set(harness.sends.suffix(2)) == ["resume-recording call c1 via recorder #1", "resume-recording call c1 via backup #1"])
}

@Test func permanentFailureGoesStraightToFallbackWithoutRetrying() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "recorder", fallback: ["backup"])])
    let harness = EngineHarness(policies: [policy])
    harness.autoAnswer = { request in
        request.target == "recorder" ? .failed(ActionFailure(.permanent, "HTTP 403 forbidden", code: "403")) : .accepted
    }
    harness.event("c1", attributes: card)
    #expect(harness.sends == ["mute call c1 via recorder #1", "mute call c1 via backup #1"])
    #expect(harness.count(.actionRetry) == 0)
    #expect(harness.count(.actionFailed) == 1)
}

@Test func anUndoNeverOvertakesItsApply() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card)
    harness.event("c1", attributes: [:])  // capture over while the pause is still in flight
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])
    harness.answer(.accepted)
    #expect(harness.sends == ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"])
    harness.answer(.accepted)
    #expect(harness.count(.actionFailed) == 0)
}

@Test func anApplyNeverSentIsDroppedTogetherWithItsUndo() {
    // Two windows on one lane: the second window's apply waits behind the first undo.
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card)
    harness.event("c1", attributes: [:])
    harness.event("c1", attributes: card)
    harness.event("c1", attributes: [:])
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])
    harness.answer(.accepted)  // pause answered; the first resume goes out
    harness.answer(.accepted)  // resume answered; the second pause was never sent, so neither is its resume
    #expect(harness.sends == ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"])
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func anApplyInBackoffWhenTheWindowClosesIsUndone() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { request in request.verb == .apply ? transient : .accepted }
    harness.event("c1", attributes: card)
    harness.event("c1", attributes: [:])
    // The failed attempt may still have reached the platform: undo it.
    #expect(harness.sends == ["pause-recording call c1 via recorder #1", "resume-recording call c1 via recorder #1"])
    harness.wait(.seconds(5))
    #expect(harness.count(.actionFailed) == 0)
    #expect(harness.sent.count == 2)
}

@Test func aLateAnswerToAnAbandonedAttemptIsIgnored() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(3))  // deadline passes with the attempt still out
    #expect(harness.count(.actionFailed) == 1)
    harness.answer(.accepted)
    #expect(harness.count(.actionConfirmed) == 0)
}

@Test func theCallEndingStopsPendingActions() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in transient }
    harness.event("c1", attributes: card)
    harness.event("c1", .released)
    harness.wait(.seconds(5))
    #expect(harness.sent.count == 1)
    #expect(harness.count(.actionFailed) == 0)
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func byExtensionWithoutAnExtensionIsAnImmediateControlFailure() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .agentExtension)])
    let harness = EngineHarness(policies: [policy])
    harness.event("c1", ext: nil, attributes: card)
    #expect(harness.sent.isEmpty)
    #expect(harness.records(.actionFailed).first?.severity == .critical)
}

/// A recorder of another vendor addressed by extension: every record of the action names both
/// the feed's call and the extension the target was sent.
@Test func anActionByExtensionNamesTheFeedsCallAndTheTargetsAddress() {
    let policy = Policies.pause(actions: [ActionSpec(kind: .pauseRecording, target: "recorder", addressing: .agentExtension)])
    let harness = EngineHarness(policies: [policy])
    harness.event("gws-call-1", ext: "3001", attributes: card)
    harness.event("gws-call-1", ext: "3001", attributes: ["PCI_STAGE": "DONE"])
    #expect(harness.sends == ["pause-recording extension 3001 via recorder #1", "resume-recording extension 3001 via recorder #1"])
    let records = harness.records(.actionAttempt) + harness.records(.actionConfirmed)
    #expect(records.count == 4)
    for record in records {
        #expect(record[.call] == "gws-call-1" && record[.extension] == "3001" && record[.feed] == "sim" && record[.target] == "recorder")
    }
}
