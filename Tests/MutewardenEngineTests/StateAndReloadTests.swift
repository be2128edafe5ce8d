import Foundation
import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]

@Test func aRestoredWindowKeepsItsCapFromTheOriginalOpenTime() {
    let policy = Policies.pause(maxDuration: .seconds(60), onTimeout: .resume)
    let before = EngineHarness(policies: [policy])
    before.event("c1", attributes: card)
    before.wait(.seconds(20))
    // Killed at t=20 s, back 10 s later: the window has 30 s of its cap left.
    let after = before.restarted(after: .seconds(10), policies: [policy])
    #expect(after.count(.stateRestored) == 1)
    #expect(after.engine.statistics.openWindows == 1)
    #expect(after.sent.isEmpty)  // the pause was confirmed before the kill: not sent again
    after.wait(.seconds(29))
    #expect(after.count(.windowClosed) == 0)
    after.wait(.seconds(2))
    #expect(after.records(.windowClosed).first?[.result] == "cap-expired")
    #expect(after.sends == ["resume-recording call c1 via recorder #1"])
}

@Test func anActionStillUnderWayIsSentAgainWithTheSameIdempotencyKey() {
    let policy = Policies.pause()
    let before = EngineHarness(policies: [policy])
    before.autoAnswer = { _ in nil }
    before.event("c1", attributes: card)
    let key = before.sent[0].request.idempotencyKey
    let after = before.restarted(after: .seconds(1), policies: [policy])
    #expect(after.sends == ["pause-recording call c1 via recorder #1"])
    #expect(after.sent[0].request.idempotencyKey == key)
}

@Test func aRestoredWindowClosesNormallyWhenItsCallComesBack() {
    let policy = Policies.pause()
    let before = EngineHarness(policies: [policy])
    before.event("c1", attributes: card)
    let after = before.restarted(after: .seconds(1), policies: [policy])
    after.event("c1", attributes: card)  // still capturing: no second window
    #expect(after.count(.windowOpened) == 0)
    after.event("c1", attributes: [:])
    #expect(after.count(.windowClosed) == 1)
    #expect(after.sends == ["resume-recording call c1 via recorder #1"])
}

@Test func anUnconfirmedUndoIsSentAgainAfterARestart() {
    let policy = Policies.pause()
    let before = EngineHarness(policies: [policy])
    before.event("c1", attributes: card)
    before.autoAnswer = { _ in nil }
    before.event("c1", attributes: [:])  // resume sent, no answer: killed now
    let after = before.restarted(after: .seconds(1), policies: [policy])
    #expect(after.sends == ["resume-recording call c1 via recorder #1"])
    #expect(after.sent[0].request.idempotencyKey == before.sent[1].request.idempotencyKey)
}

@Test func aWindowWhosePolicyIsGoneAfterARestartIsClosedAndUndone() {
    let before = EngineHarness(policies: [Policies.pause()])
    before.event("c1", attributes: card)
    let other = PolicyDefinition(
        name: "other", feeds: ["sim"], start: .attributePresent(key: "X"), actions: [ActionSpec(kind: .mute, target: "recorder")])
    let after = before.restarted(after: .seconds(1), policies: [other])
    #expect(after.records(.windowClosed).first?[.result] == "policy-removed")
    #expect(after.sends == ["resume-recording call c1 via recorder #1"])
}

@Test func theStateSurvivesAJSONRoundTrip() throws {
    let harness = EngineHarness(policies: [Policies.pause(scope: .agentExtension)])
    harness.autoAnswer = { _ in nil }
    harness.event("c1", ext: "3001", attributes: card)
    harness.event("c2", ext: "3001", attributes: [:])
    let state = harness.engine.snapshot(now: harness.now, wallNow: harness.wallNow)
    let decoded = try JSONDecoder().decode(EngineState.self, from: JSONEncoder().encode(state))
    #expect(decoded == state)
    // The state file is written by hand (StateJSON.swift); JSONDecoder must read it back the same.
    let fromFile = try JSONDecoder().decode(EngineState.self, from: Data(state.jsonBytes()))
    #expect(fromFile == state)
    // The daemon's writer encodes the engine's image directly: the same document, byte for byte.
    let image = harness.engine.stateImage(now: harness.now, wallNow: harness.wallNow)
    #expect(image.jsonBytes() == state.jsonBytes())
    #expect(image.jsonBytes(pauseEvery: 1, pause: {}) == state.jsonBytes())
    #expect(state.windows.count == 1)
    #expect(state.windows[0].covered == ["c1", "c2"])
    #expect(state.windows[0].engagements.flatMap(\.targets).allSatisfy { $0.status == .pending })
}

@Test func theHandWrittenStateJSONCoversEveryShape() throws {
    let ids = CallIdentifiers(primary: "c\"1\\", secondary: ["connId": "00a\u{1}", "callUuid": "ü"])
    let window = WindowState(
        policy: "pause", feed: "gws", call: ids, agentExtension: nil, extensionScope: true, sequence: 3,
        openingSequence: 42, openedAtWallNanoseconds: -5, triggers: ["c1"], covered: [],
        engagements: [
            EngagementState(
                action: 0, address: .call(id: "c1"), call: "c1", context: ids, agentExtension: "3001", generation: 2,
                targets: [EngagedTargetState(target: "recorder", status: .applied)]),
            EngagementState(
                action: 1, address: .agentExtension("3001"), call: nil, context: CallIdentifiers(primary: "c2"),
                agentExtension: nil, generation: 0, targets: []),
        ],
        actions: [
            ActionSpecState(
                kind: .pauseRecording, target: "recorder", byExtension: false, deadlineNanoseconds: 2_000_000_000,
                fallback: ["backup"])
        ], mode: "enforce")
    var other = window
    other.openingSequence = nil
    other.agentExtension = "3001"
    let state = EngineState(windows: [window, other], pendingUndos: [PendingUndo(window: other, engagement: 1, target: "x")])
    #expect(try JSONDecoder().decode(EngineState.self, from: Data(state.jsonBytes())) == state)
    #expect(try JSONDecoder().decode(EngineState.self, from: Data(EngineState().jsonBytes())) == EngineState())
}

@Test func theStateVersionMovesWithEveryChangeToPersist() {
    let harness = EngineHarness(policies: [Policies.pause()])
    let start = harness.engine.stateVersion
    harness.event("c1", attributes: [:])
    #expect(harness.engine.stateVersion == start)  // a plain event changes nothing to persist
    harness.event("c1", attributes: card)
    #expect(harness.engine.stateVersion > start)
}

// MARK: - Reload

@Test func aReloadKeepsWindowsOfPoliciesThatStayAndAppliesTheirNewCap() throws {
    let harness = EngineHarness(policies: [Policies.pause(maxDuration: .seconds(600))])
    harness.event("c1", attributes: card)
    harness.wait(.seconds(30))
    let outcome = try harness.engine.reconfigure(
        EngineConfiguration(
            policies: [Policies.pause(maxDuration: .seconds(60))],
            targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        at: harness.now)
    #expect(outcome == ReloadOutcome(windowsKept: 1, windowsClosed: 0))
    harness.event("c1", attributes: card)  // still the same capture: no second window
    #expect(harness.count(.windowOpened) == 1)
    harness.wait(.seconds(29))
    #expect(harness.count(.windowClosed) == 0)
    harness.wait(.seconds(2))  // 60 s from the original open
    #expect(harness.records(.windowClosed).first?[.result] == "cap-expired")
}

@Test func aReloadThatRemovesAPolicyClosesItsWindowsAndUndoes() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: card)
    let replacement = PolicyDefinition(
        name: "other", feeds: ["sim"], start: .attributePresent(key: "X"), actions: [ActionSpec(kind: .mute, target: "recorder")])
    let outcome = try harness.engine.reconfigure(
        EngineConfiguration(policies: [replacement], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        at: harness.now)
    harness.drain()
    #expect(outcome == ReloadOutcome(windowsKept: 0, windowsClosed: 1))
    #expect(harness.records(.windowClosed).first?[.result] == "policy-removed")
    #expect(harness.sends.last == "resume-recording call c1 via recorder #1")
    harness.event("c1", attributes: ["X": "1"])
    #expect(harness.sends.last == "mute call c1 via recorder #1")
}

@Test func aReloadThatChangesActionsNeverLiftsProtectionMidCapture() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: card)
    _ = try harness.engine.reconfigure(
        EngineConfiguration(
            policies: [Policies.pause(actions: [ActionSpec(kind: .mute, target: "backup")])],
            targets: [
                TargetDescriptor(name: "recorder", confirmsByEvent: false),
                TargetDescriptor(name: "backup", confirmsByEvent: false),
            ]),
        at: harness.now)
    harness.drain()
    #expect(harness.sends == ["pause-recording call c1 via recorder #1"])  // nothing undone by the reload
    harness.event("c1", attributes: [:])
    // The window undoes what it applied; the new actions apply to the next capture.
    #expect(harness.sends.last == "resume-recording call c1 via recorder #1")
    harness.event("c1", attributes: card)
    #expect(harness.sends.last == "mute call c1 via backup #1")
}

@Test func eventsReplayedAfterARestartDoNotCloseARestoredWindow() {
    let policy = Policies.pause()
    let before = EngineHarness(policies: [policy])
    before.event("c1", .ringing, attributes: [:], sequence: 1)
    before.event("c1", attributes: card, sequence: 2)
    let after = before.restarted(after: .seconds(1), policies: [policy])
    // A feed that replays the call from its start after the restart.
    after.event("c1", .ringing, attributes: [:], sequence: 1)
    after.event("c1", attributes: card, sequence: 2)
    #expect(after.count(.windowClosed) == 0)
    #expect(after.count(.windowOpened) == 0)
    after.event("c1", attributes: [:], sequence: 3)  // genuinely new: the capture ended
    #expect(after.records(.windowClosed).first?[.result] == "stopped")
}

/// A window's entry names its call's current ids; the entry is rebuilt only when something
/// touches the window, and a call's new ids must count as a touch.
@Test func aWindowsStateEntryFollowsItsCallsIdsWithoutAFullRebuild() {
    let harness = EngineHarness(policies: [Policies.pause()])
    func event(_ secondary: [String: String], attributes: [String: String]) {
        harness.engine.ingest(
            CallUpdate(
                feed: "sim", ids: CallIdentifiers(primary: "c1", secondary: secondary), agentExtension: "3001",
                direction: .inbound, state: .established, attributes: attributes),
            at: harness.now)
        harness.drain()  // which also compares the incremental image with a full rebuild
    }
    event(["connId": "A"], attributes: card)
    #expect(harness.engine.snapshot(now: harness.now, wallNow: harness.wallNow).windows.first?.call.secondary == ["connId": "A"])
    harness.wait(.seconds(2))
    event(["connId": "B"], attributes: card)  // nothing else about the window changes
    let state = harness.engine.snapshot(now: harness.now, wallNow: harness.wallNow)
    #expect(state.windows.first?.call.secondary == ["connId": "B"])
    #expect(state == harness.engine.fullSnapshot(now: harness.now, wallNow: harness.wallNow))
}

/// Windows that close leave the image; windows nobody touched keep their entry object as it was.
@Test func theStateImageRebuildsOnlyTheWindowsThatChanged() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: card)
    harness.event("c2", attributes: card)
    let first = harness.engine.stateImage(now: harness.now, wallNow: harness.wallNow)
    #expect(first.windows.count == 2)
    harness.event("c2", attributes: [:])  // c2's window closes; c1's is untouched
    let second = harness.engine.stateImage(now: harness.now, wallNow: harness.wallNow)
    #expect(second.windows.count == 1)
    let kept = try #require(first.windows.values.first { $0.state.call.primary == "c1" })
    #expect(second.windows.values.first === kept)
}

/// With nobody taking snapshots (no usable state directory), the windows waiting for their entry
/// must not pile up: closed ones leave the list, open ones are there once each.
@Test func windowsWaitingForTheirStateEntryStayBoundedWithoutSnapshots() throws {
    let engine = try Engine(
        configuration: EngineConfiguration(
            policies: [Policies.pause()], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        options: EngineOptions(randomSeed: 1))
    var now = MonotonicInstant.zero
    func event(_ id: String, _ attributes: [String: String], _ state: CallState = .established) {
        engine.ingest(
            CallUpdate(
                feed: "sim", ids: CallIdentifiers(primary: id), agentExtension: "3001", direction: .inbound,
                state: state, attributes: attributes),
            at: now)
        for case .send(_, let ticket) in engine.takeEffects() { engine.attemptFinished(ticket, result: .accepted, at: now) }
        _ = engine.takeEffects()
        now = now + .milliseconds(1)
    }
    event("open", card)  // one window stays open throughout
    for serial in 0..<5_000 {
        event("c\(serial)", card)
        event("c\(serial)", [:])
        event("c\(serial)", [:], .released)
    }
    #expect(engine.openWindows.count == 1)
    #expect(engine.windowsToPersist.count - engine.windowsToPersistHead <= 2 * 1 + 1_024 + 1)
    // And the image it finally takes has exactly the open window.
    let image = engine.stateImage(now: now, wallNow: 1_800_000_000_000_000_000)
    #expect(image.windows.count == 1)
    #expect(image.state == engine.fullSnapshot(now: now, wallNow: 1_800_000_000_000_000_000))
}
