import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]

@Test func everyApplyOfAnExtensionEngagementIsSettledWhenTheWindowCloses() {
    // A call joins the extension while the first mute is still in flight: the re-send queues
    // behind it. Closing must stop the re-send and undo after the in-flight mute, never before,
    // and the old mute must not raise an alarm afterwards.
    let harness = EngineHarness(policies: [
        Policies.pause(
            scope: .agentExtension,
            actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .agentExtension, deadline: .seconds(2))])
    ])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", ext: "3001", attributes: card)
    harness.event("c2", .dialing, ext: "3001", attributes: [:])
    harness.event("c1", ext: "3001", attributes: [:])
    #expect(harness.sends == ["mute extension 3001 via recorder #1"])
    harness.answer(.accepted)
    #expect(harness.sends == ["mute extension 3001 via recorder #1", "unmute extension 3001 via recorder #1"])
    harness.answer(.accepted)
    harness.wait(.seconds(10))
    #expect(harness.count(.actionFailed) == 0)
    #expect(harness.engine.statistics.jobsInProgress == 0)
}

@Test func anExtensionApplyInBackoffAtCloseIsStoppedAndUndone() {
    let harness = EngineHarness(policies: [
        Policies.pause(
            scope: .agentExtension, actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .agentExtension)])
    ])
    var first = true
    harness.autoAnswer = { request in
        defer { first = false }
        return first ? .failed(ActionFailure(.retryable, "503")) : .accepted
    }
    harness.event("c1", ext: "3001", attributes: card)  // fails, goes to backoff
    harness.event("c2", .dialing, ext: "3001", attributes: [:])  // re-send queues behind it
    harness.event("c1", ext: "3001", attributes: [:])
    harness.wait(.seconds(10))
    #expect(harness.sends == ["mute extension 3001 via recorder #1", "unmute extension 3001 via recorder #1"])
    #expect(harness.count(.actionFailed) == 0)
}

@Test func whileStoppingWindowsStayOpenAndUnconfirmableActionsRaiseNoAlarm() {
    let harness = EngineHarness(policies: [
        Policies.pause(
            maxDuration: .seconds(5), actions: [ActionSpec(kind: .mute, target: "platform", deadline: .seconds(2))])
    ])
    harness.event("c1", attributes: card, mute: .off)  // accepted, waiting for mute: On
    harness.engine.beginShutdown(at: harness.now)
    harness.wait(.seconds(30))
    #expect(harness.count(.actionFailed) == 0)
    #expect(harness.count(.windowClosed) == 0)
    #expect(harness.records(.actionAbandoned).first?[.reason]?.contains("daemon stopped") == true)
    #expect(harness.engine.statistics.openWindows == 1)
    #expect(harness.sends == ["mute call c1 via platform #1"])
}

@Test func whileStoppingARetryingActionStillFailsLoudly() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.autoAnswer = { _ in .failed(ActionFailure(.retryable, "503")) }
    harness.event("c1", attributes: card)
    harness.engine.beginShutdown(at: harness.now)
    harness.wait(.seconds(5))
    // The recording was never paused: that is a control failure whether or not we are stopping.
    #expect(harness.count(.actionFailed) == 1)
}

@Test func providerSequenceNumbersMakeIdempotencyKeysRestartSafe() {
    func keys(_ script: (EngineHarness) -> Void) -> [String] {
        let harness = EngineHarness(policies: [Policies.pause()])
        script(harness)
        return harness.sent.map(\.request.idempotencyKey)
    }
    let beforeRestart = keys { h in
        h.event("c1", attributes: card, sequence: 7)
        h.event("c1", attributes: [:], sequence: 8)
        h.event("c1", attributes: card, sequence: 9)
    }
    // A fresh engine (a restart, or a replica that joined late) sees only the second capture.
    let afterRestart = keys { h in h.event("c1", attributes: card, sequence: 9) }
    #expect(afterRestart == [beforeRestart[2]])
    #expect(beforeRestart[0] != beforeRestart[2])
}

@Test func anEventWithoutAnExtensionKeepsTheCallsExtension() {
    let harness = EngineHarness(policies: [
        Policies.pause(actions: [ActionSpec(kind: .mute, target: "recorder", addressing: .agentExtension)])
    ])
    harness.event("c1", ext: "3001", attributes: [:])
    harness.event("c1", ext: nil, attributes: card)
    #expect(harness.sends == ["mute extension 3001 via recorder #1"])
}

@Test func aLargeInitialBackoffNeverOverflowsIntoARetryStorm() {
    let harness = EngineHarness(policies: [
        Policies.pause(
            maxDuration: .seconds(72_000),
            actions: [
                ActionSpec(
                    kind: .mute, target: "recorder", deadline: .seconds(10_800),
                    retry: RetryPolicy(initialBackoff: .seconds(9), maximumBackoff: .seconds(60)))
            ])
    ])
    harness.autoAnswer = { _ in .failed(ActionFailure(.retryable, "503")) }
    harness.event("c1", attributes: card)
    harness.wait(.seconds(10_801))  // under the 4 h idle limit, which would end the call
    // Full jitter on a 60 s ceiling: on average one attempt per 30 s, far from a storm.
    #expect(harness.sent.count > 200 && harness.sent.count < 1000, "\(harness.sent.count) attempts, \(harness.count(.actionFailed)) failures")
}

@Test func theExtendedWindowRecordNamesTheNewCall() {
    let harness = EngineHarness(policies: [Policies.pause(scope: .agentExtension)])
    harness.event("c1", ext: "3001", attributes: card)
    harness.event("c2", ext: "3001", attributes: [:])
    #expect(harness.records(.windowOpened).last?[.result] == "extended")
    #expect(harness.records(.windowOpened).last?[.call] == "c2")
}
