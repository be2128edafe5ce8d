import Foundation
import MutewardenJSON
import MutewardenModel
import Testing

@testable import MutewardenGenesys

private func fixture(_ name: String) throws -> JSONValue {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
    return try JSONValue.parse(try Data(contentsOf: url))
}

@Test func theSeedsMuteNotificationMapsToAnUpdate() throws {
    let message = try fixture("mute-on")
    #expect(message["channel"]?.string == "/v2/me/calls")
    guard case .update(let update, let type) = try GWSCallEvents.map(notification: message["data"]!, feed: "gws") else {
        Issue.record("expected an update")
        return
    }
    #expect(type == "StatusChange")
    #expect(update.feed == "gws")
    #expect(update.ids.primary == "00HLPA5Q24AT9D8VH0A0K2LAES00000G")
    #expect(update.ids.secondary == ["callUuid": "00HLPA5Q24AT9D8VH0A0K2LAES00000G", "connId": "0071026ce59fd010"])
    #expect(update.agentExtension == "3001")
    #expect(update.direction == .internal)
    #expect(update.state == .established)
    #expect(update.mute == .on)
    #expect(update.recording == .stopped)
    #expect(update.participants == ["3002", "3003"])
    // No userData in the message: the attached data is gone.
    #expect(update.attributes == [:])
}

@Test func attachedDataBecomesAttributesWhateverTheValueType() throws {
    let message = try fixture("attached-data")
    guard case .update(let update, let type) = try GWSCallEvents.map(notification: message["data"]!, feed: "gws") else {
        Issue.record("expected an update")
        return
    }
    #expect(type == "AttachedDataChanged")
    #expect(update.attributes?["PCI_STAGE"] == "CARD")
    #expect(update.attributes?["AccountNumber"] == "12345678")
    #expect(update.attributes?["Priority"] == "true")
    #expect(update.attributes?["Nested"] == "{\"a\":1}")
    #expect(update.direction == .inbound)
    #expect(update.participants == ["5551234"])
    #expect(update.mute == .off)
    #expect(update.recording == .recording)
}

@Test func aRecordingStateChangeReportsPaused() throws {
    let message = try fixture("recording-paused")
    guard case .update(let update, let type) = try GWSCallEvents.map(notification: message["data"]!, feed: "gws") else {
        Issue.record("expected an update")
        return
    }
    #expect(type == "CallRecordingStateChange")
    #expect(update.recording == .paused)
    #expect(update.attributes?["GSIP_RECORD"] == "PAUSED")
}

@Test(arguments: [
    ("Ringing", CallState.ringing), ("Dialing", .dialing), ("Established", .established), ("Held", .held),
    ("Released", .released), ("Completed", .released),
])
func callStatesMapOntoTheNormalizedStates(_ name: String, _ state: CallState) {
    #expect(GWSCallEvents.callState(name) == state)
}

@Test(arguments: [
    ("[]", "data is not an object"),
    ("{}", "no messageType"),
    ("{\"messageType\":\"CallStateChangeMessage\"}", "no call object"),
    ("{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"state\":\"Established\"}}", "the call has no id"),
    ("{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"id\":\"c1\"}}", "call c1 has no state"),
    ("{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"id\":\"c1\",\"state\":\"Teleported\"}}", "unknown state 'Teleported'"),
])
func malformedNotificationsSayWhy(_ text: String, _ reason: String) throws {
    let data = try JSONValue.parse(text)
    #expect {
        _ = try GWSCallEvents.map(notification: data, feed: "gws")
    } throws: { error in
        "\(error)".contains(reason)
    }
}

@Test func otherMessageTypesAreIgnoredNotErrors() throws {
    let data = try JSONValue.parse("{\"messageType\":\"DeviceStateChangeMessage\"}")
    #expect(try GWSCallEvents.map(notification: data, feed: "gws") == .ignored(messageType: "DeviceStateChangeMessage"))
}

@Test func theCallListKeepsGoodCallsAndReportsBadOnes() throws {
    var body = try fixture("calls-list")
    guard case .object(var members) = body, case .array(var calls)? = body["calls"] else { return }
    calls.append(.object([("id", .string("broken"))]))
    members = members.map { $0.0 == "calls" ? ("calls", .array(calls)) : $0 }
    body = .object(members)
    let result = GWSCallEvents.mapCallList(body, feed: "gws", agentExtension: "3001")
    #expect(result.statusCode == 0)
    #expect(result.calls.map(\.ids.primary) == ["00HLPA5Q24AT9D8VH0A0K2LAES00000H", "00HLPA5Q24AT9D8VH0A0K2LAES00000J"])
    #expect(result.calls[0].attributes == ["PCI_STAGE": "CARD"])
    #expect(result.calls[1].state == .held)
    #expect(result.skipped.count == 1)
}
