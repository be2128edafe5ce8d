import Foundation
import MutewardenJSON
import MutewardenModel
import Testing

@testable import MutewardenVoicenter

func fixture(_ name: String) throws -> JSONValue {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
    return try JSONValue.parse(try Data(contentsOf: url))
}

/// A 19-digit ivrid that passes the Luhn check, as about one real ivrid in ten does.
let cardLikeIvrid = "4509123456789012343"

@Test func theSnapshotListsEveryLiveCallWithItsExtensionAndLeavesSpyLegsOut() throws {
    let snapshot = try VoicenterEvents.snapshot(try fixture("all-extensions-status"), feed: "vc", field: .extenUser)
    #expect(snapshot.extensions.map(\.extensionID) == ["KGpK4iWq", "Zq81LmPo", "Aa11Bb22"])
    let dana = snapshot.extensions[0]
    #expect(dana.calls.count == 1)
    let call = try #require(dana.calls.first)
    #expect(call.feed == "vc")
    #expect(call.ids.primary == cardLikeIvrid)
    #expect(call.agentExtension == "KGpK4iWq")
    #expect(call.state == .established)
    #expect(call.direction == .inbound)
    #expect(call.recording == .recording)
    #expect(call.mute == nil)
    #expect(call.attributes == ["PCI_STAGE": "CARD", "Note": "card 4111 1111 1111 1111", "Attempt": "2"])
    #expect(call.participants == ["0501234567"])
    #expect(call.sequence == nil)
    // Lior's Spy leg of Dana's call is a supervisor listening in: not a call of Lior's.
    #expect(snapshot.extensions[1].calls.map(\.ids.primary) == ["1717000150987654321-2"])
    #expect(snapshot.extensions[1].calls[0].state == .dialing)
    #expect(snapshot.extensions[1].calls[0].direction == .outbound)
    #expect(snapshot.extensions[1].calls[0].recording == .paused)
    #expect(snapshot.extensions[1].calls[0].attributes == [:])
    #expect(snapshot.extensions[2].calls.isEmpty)
    // servertime is the server's local time, servertimeoffset minutes ahead of UTC.
    #expect(snapshot.serverTime == Double(1_717_000_200 - 120 * 60))
}

@Test func theExtensionCanBeAddressedByItsNumberInstead() throws {
    let snapshot = try VoicenterEvents.snapshot(try fixture("all-extensions-status"), feed: "vc", field: .number)
    #expect(snapshot.extensions.map(\.extensionID) == ["201", "202", "203"])
    #expect(snapshot.extensions[0].calls[0].agentExtension == "201")
}

@Test func aNewCallEventGivesEveryLiveCallOfTheExtensionWhateverTheIdSpelling() throws {
    let event = try VoicenterEvents.extensionEvent(try fixture("extension-event-newcall"), feed: "vc", field: .extenUser)
    #expect(event.reason == "NEWCALL")
    #expect(event.ended == nil)
    #expect(event.state.calls.map(\.ids.primary) == [cardLikeIvrid, "1717000300555555555-7"])
    #expect(event.state.calls.map(\.state) == [.held, .dialing])
    #expect(event.state.calls.map(\.direction) == [.inbound, .outbound])
    // No customdata on the new call: no news, not "none".
    #expect(event.state.calls[1].attributes == nil)
    #expect(event.state.calls[1].recording == .recording)
    #expect(event.serverTime == Double(1_717_000_300 - 7200))
}

@Test func onHangupTheCurrentCallIsTheEndedOneAndTheCallsAreTheLiveOnes() throws {
    let event = try VoicenterEvents.extensionEvent(try fixture("extension-event-hangup"), feed: "vc", field: .extenUser)
    let ended = try #require(event.ended)
    #expect(ended.ids.primary == "1717000300555555555-7")
    #expect(ended.state == .released)
    #expect(ended.agentExtension == "KGpK4iWq")
    // What the ended call carried is not news about it any more.
    #expect(ended.attributes == nil)
    #expect(event.state.calls.map(\.ids.primary) == [cardLikeIvrid])
    #expect(event.state.calls[0].recording == .paused)
    #expect(event.state.calls[0].attributes == ["PCI_STAGE": "DONE"])
}

@Test func aHangupWithoutCurrentCallEndsTheCallTheEventNames() throws {
    let payload = try JSONValue.parse(
        #"{"reason":"HANGUP","ivruniqueid":"99-1","data":{"extenUser":"KGpK4iWq","calls":[]},"servertime":5,"servertimeoffset":0}"#)
    let event = try VoicenterEvents.extensionEvent(payload, feed: "vc", field: .extenUser)
    #expect(event.ended?.ids.primary == "99-1")
    #expect(event.ended?.state == .released)
    #expect(event.state.calls.isEmpty)
}

@Test func theEndOfASpyLegEndsNothing() throws {
    let payload = try JSONValue.parse(
        #"{"reason":"HANGUP","ivruniqueid":"99-1","data":{"extenUser":"S","calls":[],"currentCall":{"ivrid":"99-1","direction":"Spy"}}}"#)
    #expect(try VoicenterEvents.extensionEvent(payload, feed: "vc", field: .extenUser).ended == nil)
}

@Test func stringTimesAndKeyValueCustomDataAreRead() throws {
    let event = try VoicenterEvents.extensionEvent(try fixture("extension-event-answer"), feed: "vc", field: .extenUser)
    #expect(event.serverTime == Double(1_717_000_500 - 7200))
    let call = try #require(event.state.calls.first)
    #expect(call.attributes == ["PCI_STAGE": "CARD", "Order": "12345"])
    #expect(call.recording == .paused)
    #expect(call.state == .established)
}

@Test(arguments: [
    ("Ringing", CallState.ringing), ("Dialing", .dialing), ("Talking", .established), ("Hold", .held),
    // Listed as live: kept, as established, rather than dropped.
    ("Transferring", .established),
])
func callStatusesMapOntoTheNormalizedStates(_ status: String, _ state: CallState) throws {
    let call = try VoicenterEvents.call(
        JSONValue.object([("ivrid", .string("c1")), ("callstatus", .string(status))]), feed: "vc", agentExtension: "E", offset: nil)
    #expect(call.update.state == state)
    #expect(call.notes.isEmpty == (status != "Transferring"))
}

@Test(
    arguments: [
        (JSONValue.number(1), ReportedRecording.paused), (.number(0), .recording), (.string("1"), .paused), (.string("0"), .recording),
        (.bool(true), .paused), (.bool(false), .recording), (.string("maybe"), nil), (.number(2), nil), (.null, nil),
    ] as [(JSONValue, ReportedRecording?)])
func isMutedIsTheReportedRecordingState(_ value: JSONValue, _ expected: ReportedRecording?) {
    #expect(VoicenterEvents.recording(JSONValue.object([("IsMuted", value)])) == expected)
    #expect(VoicenterEvents.recording(nil as JSONValue?) == nil)
}

@Test(
    arguments: [
        (nil, nil), ("null", [:]), (#"{"A":"1","B":2,"C":true,"D":null,"E":{"x":1}}"#, ["A": "1", "B": "2", "C": "true", "D": "", "E": #"{"x":1}"#]),
        (#"[{"key":"A","value":"1"},{"Name":"B","Value":2},{"nokey":1}]"#, ["A": "1", "B": "2"]),
        (#""{\"A\":\"1\"}""#, ["A": "1"]), (#""plain""#, nil), ("42", nil),
    ] as [(String?, [String: String]?)])
func customDataBecomesAttributes(_ json: String?, _ expected: [String: String]?) throws {
    #expect(VoicenterEvents.attributes(try json.map { try JSONValue.parse($0) }) == expected)
}

@Test(arguments: [
    ("[]", "the payload is not an object"),
    ("{}", "no reason"),
    (#"{"reason":"NEWCALL","data":[]}"#, "NEWCALL: data is not an object"),
    (#"{"reason":"HANGUP","data":{"calls":[]}}"#, "HANGUP names no ended call"),
    (#"{"reason":"HANGUP","data":{"calls":[],"currentCall":{"ivrid":12}}}"#, "has no usable ivrid"),
])
func malformedExtensionEventsSayWhy(_ text: String, _ reason: String) throws {
    #expect {
        _ = try VoicenterEvents.extensionEvent(try JSONValue.parse(text), feed: "vc", field: .extenUser)
    } throws: { error in
        "\(error)".contains(reason)
    }
}

@Test func callsThatCannotBeReadAreSkippedAndTheRestCount() throws {
    let payload = try JSONValue.parse(
        #"{"reason":"ANSWER","data":{"extenUser":"E","calls":[{"ivrid":"ok","callstatus":"Talking"},"#
            + #"{"ivrid":123456789012345678,"customdata":{"PAN":"4111111111111111"}},{"callstatus":"Talking"},7]}}"#)
    let event = try VoicenterEvents.extensionEvent(payload, feed: "vc", field: .extenUser)
    #expect(event.state.calls.map(\.ids.primary) == ["ok"])
    #expect(event.state.skipped.count == 3)
    #expect(event.state.skipped.allSatisfy { !$0.reason.contains("4111") && !$0.reason.contains("1234567890") })
}

@Test func aRefusedSnapshotCarriesItsErrorCode() throws {
    #expect {
        _ = try VoicenterEvents.snapshot(try JSONValue.parse(#"{"errorCode":"403","errorDesc":"bad token"}"#), feed: "vc", field: .extenUser)
    } throws: { error in
        (error as? VoicenterEvents.Malformed)?.errorCode == "403"
    }
    #expect {
        _ = try VoicenterEvents.snapshot(try JSONValue.parse(#"{"extensions":{}}"#), feed: "vc", field: .extenUser)
    } throws: { error in
        (error as? VoicenterEvents.Malformed)?.errorCode == nil
    }
}

@Test(
    arguments: [
        (JSONValue.number(1_717_000_200), JSONValue.number(120), 1_717_000_200.0 - 7200),
        (.string("1717000200"), .string("-60"), 1_717_000_200.0 + 3600),
        (.number(1_717_000_200), nil, 1_717_000_200.0),
    ] as [(JSONValue, JSONValue?, Double)])
func feedTimesAreShiftedToUTC(_ value: JSONValue, _ offset: JSONValue?, _ expected: Double) {
    #expect(VoicenterTime.utcSeconds(value, offsetMinutes: offset) == expected)
}

@Test func unsetOrUnreadableFeedTimesAreNil() {
    #expect(VoicenterTime.utcSeconds(.number(0), offsetMinutes: .number(120)) == nil)
    #expect(VoicenterTime.utcSeconds(.string("soon"), offsetMinutes: nil) == nil)
    #expect(VoicenterTime.utcSeconds(.number(5), offsetMinutes: .number(1e9)) == nil)
}
