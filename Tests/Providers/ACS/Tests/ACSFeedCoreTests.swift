import MutewardenModel
import Testing

@testable import MutewardenACS

struct ACSCoreHarness {
    var core = ACSFeedCore(configuration: .init(feed: "acs", keyingQuietPeriod: .seconds(5), idleLimit: .seconds(3600)))
    var now = MonotonicInstant(nanoseconds: 1_000_000_000)

    mutating func receive(_ events: String...) throws -> [CallUpdate] {
        let parsed = try ACSEvents.parse(Array("[\(events.joined(separator: ","))]".utf8))
        return delivered(core.receive(parsed, now: now))
    }

    mutating func advance(_ duration: Duration) -> [CallUpdate] {
        now = now + duration
        return delivered(core.tick(now: now))
    }

    func delivered(_ outputs: [ACSFeedCore.Output]) -> [CallUpdate] {
        outputs.flatMap { output -> [CallUpdate] in
            if case .deliver(let updates) = output { return updates }
            return []
        }
    }
}

@Test func aCallIsFollowedFromConnectedToDisconnectedWithItsAgentMuteAndRecording() throws {
    var harness = ACSCoreHarness()
    let connected = try harness.receive(cloudEvent("CallConnected", #"{"callConnectionId":"c1","serverCallId":"s1"}"#))
    #expect(connected.map(\.state) == [.established])
    #expect(connected.first?.ids.secondary["serverCallId"] == "s1")
    let roster = try harness.receive(participants(sequence: 1, agentMuted: false))
    #expect(roster.first?.agentExtension == agentRaw)
    #expect(roster.first?.mute == .off)
    #expect(roster.first?.participants == [callerRaw, agentRaw])
    let recording = try harness.receive(
        cloudEvent("RecordingStateChanged", #"{"callConnectionId":"c1","recordingId":"r-9","state":"active"}"#))
    #expect(recording.first?.recording == .recording)
    #expect(recording.first?.ids.secondary["recordingId"] == "r-9")
    let muted = try harness.receive(participants(sequence: 2, agentMuted: true))
    #expect(muted.first?.mute == .on)
    #expect(muted.first?.recording == .recording, "what was known stays known")
    let ended = try harness.receive(cloudEvent("CallDisconnected", #"{"callConnectionId":"c1"}"#))
    #expect(ended.map(\.state) == [.released])
    #expect(harness.core.trackedCalls == 0)
}

@Test func anOlderRosterArrivingLateIsIgnored() throws {
    var harness = ACSCoreHarness()
    _ = try harness.receive(participants(sequence: 5, agentMuted: true))
    let stale = try harness.receive(participants(sequence: 4, agentMuted: false))
    #expect(stale.isEmpty)
    let repeated = try harness.receive(participants(sequence: 6, agentMuted: true))
    #expect(repeated.isEmpty, "nothing changed")
}

@Test func tonesSetTheKeyingAttributeUntilTheQuietPeriodPassesAndNeverCarryTheDigit() throws {
    var harness = ACSCoreHarness()
    _ = try harness.receive(cloudEvent("CallConnected", #"{"callConnectionId":"c1"}"#))
    let keying = try harness.receive(
        cloudEvent("ContinuousDtmfRecognitionToneReceived", #"{"callConnectionId":"c1","tone":"four"}"#))
    #expect(keying.first?.attributes == ["dtmf": "keying"])
    #expect(harness.advance(.seconds(3)).isEmpty)
    #expect(try harness.receive(cloudEvent("ContinuousDtmfRecognitionToneReceived", #"{"callConnectionId":"c1","tone":"one"}"#)).isEmpty)
    #expect(harness.advance(.seconds(3)).isEmpty, "the second tone restarted the quiet period")
    let quiet = harness.advance(.seconds(3))
    #expect(quiet.first?.attributes == [:])
    #expect(harness.core.nextDeadline == harness.now + .seconds(3600) - .seconds(6), "idle counts from the last event")
}

@Test func aCallThatNeverDisconnectsIsForgottenAfterTheIdleLimitWithARecord() throws {
    var harness = ACSCoreHarness()
    _ = try harness.receive(cloudEvent("CallConnected", #"{"callConnectionId":"c1"}"#))
    harness.now = harness.now + .seconds(3600)
    let outputs = harness.core.tick(now: harness.now)
    #expect(harness.delivered(outputs).map(\.state) == [.released])
    #expect(outputs.contains { if case .report(.warning, let message, _) = $0 { message.contains("taken as ended") } else { false } })
}

@Test func aDisconnectForAnUnknownCallStillSaysItEnded() throws {
    var harness = ACSCoreHarness()
    let ended = try harness.receive(cloudEvent("CallDisconnected", #"{"callConnectionId":"c7"}"#))
    #expect(ended.map(\.ids.primary) == ["c7"])
    #expect(ended.map(\.state) == [.released])
}

@Test func unknownTypesAreCountedAndSkipped() throws {
    var harness = ACSCoreHarness()
    _ = try harness.receive(
        cloudEvent("PlayCompleted", #"{"callConnectionId":"c1"}"#), cloudEvent("PlayCompleted", #"{"callConnectionId":"c1"}"#),
        cloudEvent("SomethingNew", #"{"callConnectionId":"c1"}"#))
    #expect(harness.core.takeSkippedCounts() == ["PlayCompleted": 2, "SomethingNew": 1])
    #expect(harness.core.trackedCalls == 0)
}

@Test func theAgentIsTheParticipantOfTheConfiguredKindAndPrefix() throws {
    var harness = ACSCoreHarness()
    harness.core = ACSFeedCore(configuration: .init(feed: "acs", agentIDPrefix: "8:acs:nomatch"))
    let roster = try harness.receive(participants(sequence: 1, agentMuted: true))
    #expect(roster.first?.agentExtension == nil)
    #expect(roster.first?.mute == nil)
}

@Test func theTrackerIsBoundedAndSaysSo() throws {
    var harness = ACSCoreHarness()
    harness.core = ACSFeedCore(configuration: .init(feed: "acs", maximumCalls: 1))
    _ = try harness.receive(cloudEvent("CallConnected", #"{"callConnectionId":"c1"}"#))
    let parsed = try ACSEvents.parse(Array("[\(cloudEvent("CallConnected", #"{"callConnectionId":"c2"}"#))]".utf8))
    let outputs = harness.core.receive(parsed, now: harness.now)
    #expect(outputs.contains { if case .report(.critical, _, _) = $0 { true } else { false } })
    #expect(harness.core.trackedCalls == 1)
}
