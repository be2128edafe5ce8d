import Foundation
import MutewardenHTTP
import MutewardenModel
import Testing

@testable import MutewardenACS

/// A CloudEvent as Call Automation posts it.
func cloudEvent(_ type: String, _ data: String, id: String = "e1") -> String {
    """
    {"id":"\(id)","source":"calling/callConnections/c1","type":"Microsoft.Communication.\(type)",\
    "specversion":"1.0","time":"2026-12-03T10:00:00Z","datacontenttype":"application/json","data":\(data)}
    """
}

func batch(_ events: String...) -> [UInt8] { Array("[\(events.joined(separator: ","))]".utf8) }

let agentRaw = "8:acs:11111111-2222-3333-4444-555555555555_00000021-aaaa-bbbb-cccc-dddddddddddd"
let callerRaw = "4:+14255550123"

func participants(sequence: Int, agentMuted: Bool, call: String = "c1") -> String {
    cloudEvent(
        "ParticipantsUpdated",
        """
        {"callConnectionId":"\(call)","serverCallId":"s1","correlationId":"k1","sequenceNumber":\(sequence),"participants":[\
        {"identifier":{"rawId":"\(callerRaw)","kind":"phoneNumber","phoneNumber":{"value":"+14255550123"}},"isMuted":false,"isOnHold":false},\
        {"identifier":{"rawId":"\(agentRaw)","kind":"communicationUser","communicationUser":{"id":"\(agentRaw)"}},"isMuted":\(agentMuted),"isOnHold":false}]}
        """)
}

@Test func everyDocumentedEventIsRead() throws {
    let parsed = try ACSEvents.parse(
        batch(
            cloudEvent("CallConnected", #"{"callConnectionId":"c1","serverCallId":"s1","correlationId":"k1"}"#),
            participants(sequence: 3, agentMuted: true),
            cloudEvent("ContinuousDtmfRecognitionToneReceived", #"{"callConnectionId":"c1","tone":"five","sequenceId":1}"#),
            cloudEvent("ContinuousDtmfRecognitionToneReceived", #"{"callConnectionId":"c1","toneInfo":{"tone":"pound","sequenceId":2}}"#),
            cloudEvent("RecordingStateChanged", #"{"callConnectionId":"c1","recordingId":"r-1","state":"inactive"}"#),
            cloudEvent("PlayCompleted", #"{"callConnectionId":"c1"}"#),
            cloudEvent("CallDisconnected", #"{"callConnectionId":"c1"}"#)))
    #expect(parsed.skipped.isEmpty)
    #expect(parsed.events.map(\.type).first == "CallConnected")
    #expect(parsed.events[0].serverCallID == "s1")
    guard case .participantsUpdated(let sequence, let people) = parsed.events[1].payload else {
        Issue.record("not a roster")
        return
    }
    #expect(sequence == 3)
    #expect(
        people == [
            ACSEvents.Participant(rawId: callerRaw, kind: "phoneNumber", isMuted: false, isOnHold: false),
            ACSEvents.Participant(rawId: agentRaw, kind: "communicationUser", isMuted: true, isOnHold: false),
        ])
    #expect(parsed.events[2].payload == .toneReceived)
    #expect(parsed.events[3].payload == .toneReceived)
    #expect(parsed.events[4].payload == .recordingStateChanged(recordingID: "r-1", state: .inactive))
    #expect(parsed.events[5].payload == .other(type: "PlayCompleted"))
    #expect(parsed.events[6].payload == .callDisconnected)
}

@Test func aBadEventIsSkippedWithItsReasonAndTheRestOfTheBatchCounts() throws {
    let parsed = try ACSEvents.parse(
        batch(
            #"{"type":"Microsoft.Communication.CallConnected","data":{}}"#,
            #"{"type":"Other.Thing","data":{"callConnectionId":"c1"}}"#,
            #""a string""#,
            cloudEvent("ContinuousDtmfRecognitionToneReceived", #"{"callConnectionId":"c1","tone":"4111111111111111"}"#),
            cloudEvent("ParticipantsUpdated", #"{"callConnectionId":"c1","sequenceNumber":1e300,"participants":[]}"#),
            cloudEvent("CallConnected", #"{"callConnectionId":"c2"}"#)))
    #expect(parsed.events.map(\.callConnectionID) == ["c2"])
    #expect(parsed.skipped.count == 5)
    let reasons = parsed.skipped.map(\.reason).joined(separator: "\n")
    #expect(reasons.contains("callConnectionId"))
    #expect(reasons.contains("not a Call Automation event"))
    #expect(!reasons.contains("4111"), "a tone's value is never repeated in a reason")
}

@Test func aLoneEventIsABatchOfOneAndAnythingElseIsRefusedWhole() throws {
    let one = try ACSEvents.parse(Array(cloudEvent("CallConnected", #"{"callConnectionId":"c1"}"#).utf8))
    #expect(one.events.count == 1)
    #expect(throws: ACSEvents.Malformed.self) { try ACSEvents.parse(Array("42".utf8)) }
    #expect(throws: ACSEvents.Malformed.self) { try ACSEvents.parse(Array("[{".utf8)) }
    #expect(throws: ACSEvents.Malformed.self) {
        try ACSEvents.parse(Array(("[" + Array(repeating: "{}", count: 11).joined(separator: ",") + "]").utf8), maximumEvents: 10)
    }
}

@Test func anIdentifierWithControlCharactersOrTooLongIsNotUsed() throws {
    let long = String(repeating: "x", count: 300)
    let parsed = try ACSEvents.parse(
        batch(
            cloudEvent("CallConnected", #"{"callConnectionId":"c\n1"}"#),
            cloudEvent("CallConnected", #"{"callConnectionId":"\#(long)"}"#)))
    #expect(parsed.events.isEmpty)
    #expect(parsed.skipped.count == 2)
}

@Test func requestsAreBuiltAsTheSpecificationShowsThem() throws {
    let mute = ACSCallAutomationAPI.request(
        .mute(callConnectionID: "c/1", participant: agentRaw), endpoint: "https://res.communication.azure.com",
        apiVersion: "2024-09-15", unmuteAPIVersion: nil, operationContext: "key-1")
    #expect(mute.method == .post)
    #expect(mute.url == "https://res.communication.azure.com/calling/callConnections/c%2F1/participants:mute?api-version=2024-09-15")
    let body = String(decoding: mute.body, as: UTF8.self)
    #expect(body.contains(#""kind":"communicationUser""#))
    #expect(body.contains(#""operationContext":"key-1""#))
    let unmute = ACSCallAutomationAPI.request(
        .unmute(callConnectionID: "c1", participant: agentRaw), endpoint: "https://e", apiVersion: "2024-09-15",
        unmuteAPIVersion: "2024-09-01-preview", operationContext: "k")
    #expect(unmute.url == "https://e/calling/callConnections/c1/participants:unmute?api-version=2024-09-01-preview")
    let pause = ACSCallAutomationAPI.request(
        .pauseRecording(recordingID: "r 1"), endpoint: "https://e", apiVersion: "2024-09-15", unmuteAPIVersion: nil, operationContext: "k")
    #expect(pause.url == "https://e/calling/recordings/r%201:pause?api-version=2024-09-15")
}

@Test func answersAreClassified() {
    let mute = ACSCallAutomationAPI.Operation.mute(callConnectionID: "c1", participant: agentRaw)
    #expect(ACSCallAutomationAPI.classify(httpStatus: 200, body: [], operation: mute) == .accepted)
    #expect(ACSCallAutomationAPI.classify(httpStatus: 202, body: [], operation: .pauseRecording(recordingID: "r")) == .accepted)
    let gone = ACSCallAutomationAPI.classify(
        httpStatus: 404, body: Array(#"{"error":{"code":"8522","message":"Call not found"}}"#.utf8), operation: mute)
    guard case .failed(let failure) = gone else {
        Issue.record("404 accepted")
        return
    }
    #expect(failure.disposition == .callGone)
    #expect(failure.message.contains("8522: Call not found"))
    #expect(failure.code == "http 404 8522")
    func disposition(_ status: Int, renewed: Bool = false) -> ActionFailure.Disposition? {
        if case .failed(let failure) = ACSCallAutomationAPI.classify(
            httpStatus: status, body: Array("not json".utf8), operation: mute, credentialRenewed: renewed)
        {
            return failure.disposition
        }
        return nil
    }
    #expect(disposition(401) == .permanent)
    #expect(disposition(401, renewed: true) == .retryable)
    #expect(disposition(403) == .permanent)
    #expect(disposition(400) == .permanent)
    #expect(disposition(429) == .retryable)
    #expect(disposition(503) == .retryable)
}

/// Every input that ever crashed `fuzz-acs` (Fuzz/Regressions/acs), and its seeds, through the
/// parser and the feed core: read or refused, never a trap.
@Test func theFuzzInputsParseOrFailCleanlyThroughTheCore() throws {
    let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")
    var files: [URL] = []
    for folder in ["Regressions/acs", "Corpus/acs"] {
        files += try FileManager.default.contentsOfDirectory(at: fuzz.appendingPathComponent(folder), includingPropertiesForKeys: nil)
    }
    #expect(files.contains { $0.lastPathComponent.hasSuffix(".json") })
    for file in files where !file.lastPathComponent.hasPrefix(".") {
        var core = ACSFeedCore(configuration: .init(feed: "acs", maximumCalls: 4))
        guard let parsed = try? ACSEvents.parse(Array(Data(contentsOf: file))) else { continue }
        _ = core.receive(parsed, now: .zero)
        #expect(core.trackedCalls <= 4, "\(file.lastPathComponent)")
        _ = core.tick(now: .zero + .seconds(4 * 3600 + 1))
        #expect(core.trackedCalls == 0, "\(file.lastPathComponent)")
    }
}
