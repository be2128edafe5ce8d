import MutewardenModel
import Testing

@testable import MutewardenGraph

private func parse(_ text: String) throws -> GraphNotifications.Body { try GraphNotifications.parse(Array(text.utf8)) }

private func batch(_ text: String) throws -> GraphNotifications.Batch {
    guard case .notifications(let batch) = try parse(text) else { throw GraphNotifications.Malformed(reason: "legacy") }
    return batch
}

/// The roster sample of MSG resources/commsnotification.md (platform-apis.md §2), with `key` as
/// the resource's key.
func rosterBody(key: String = "resourceUrl", call: String = "57dab8b1-894c-409a-b240-bd8beae78896", muted: Bool = true) -> String {
    """
    {"@odata.type":"#microsoft.graph.commsNotifications","value":[{"@odata.type":"#microsoft.graph.commsNotification",
      "changeType":"updated","\(key)":"/communications/calls/\(call)/participants",
      "resourceData":[{"@odata.type":"#microsoft.graph.participant","id":"2765eb15-01f8-47c6-b12b-c32111a4a86f",
        "info":{"identity":{"user":{"displayName":"Bob","id":"5810cede-f3cc-42eb-b2c1-e9bd5d53ec96"}}},"isMuted":\(muted),"isInLobby":false,
        "mediaStreams":[{"mediaType":"audio","direction":"sendReceive","label":"main-audio","sourceId":"1"}]},
       {"@odata.type":"#microsoft.graph.participant","id":"bot-participant",
        "info":{"identity":{"application":{"displayName":"Recorder","id":"app-1"}}},"isMuted":false}]}]}
    """
}

@Test(arguments: ["resourceUrl", "resource"])
func aRosterIsReadUnderEitherResourceKey(_ key: String) throws {
    let read = try batch(rosterBody(key: key))
    #expect(read.skipped.isEmpty)
    let notification = try #require(read.notifications.first)
    #expect(notification.callID == "57dab8b1-894c-409a-b240-bd8beae78896")
    #expect(notification.resource == .participants)
    guard case .participants(let participants) = notification.payloads.first else {
        Issue.record("not a roster: \(notification.payloads)")
        return
    }
    #expect(participants.map(\.id) == ["2765eb15-01f8-47c6-b12b-c32111a4a86f", "bot-participant"])
    #expect(participants[0].identities == ["user:5810cede-f3cc-42eb-b2c1-e9bd5d53ec96"])
    #expect(participants[0].isMuted == true)
    #expect(participants[1].identity("application") == "app-1")
    // Display names are personal data the feed has no use for.
    #expect(!"\(read)".contains("Bob"))
}

@Test func resourceDataIsOneEntityOrACollection() throws {
    let single = try batch(
        ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established"}}]}"##
    )
    #expect(single.notifications.first?.payloads == [.callState("established")])
    let collection = try batch(
        ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":[{"@odata.type":"#microsoft.graph.call","state":"hold"}]}]}"##
    )
    #expect(collection.notifications.first?.payloads == [.callState("hold")])
    // A lone commsNotification, and the older /app/calls/ path.
    let lone = try batch(##"{"changeType":"deleted","resource":"/app/calls/c-2","resourceData":{"state":"terminated"}}"##)
    #expect(lone.notifications.first?.callID == "c-2")
    #expect(lone.notifications.first?.changeType == .deleted)
}

@Test func aToneIsReportedAndNeverKept() throws {
    let read = try batch(
        ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established","toneInfo":{"sequenceId":1,"tone":"tone7"}}}]}"##
    )
    #expect(read.notifications.first?.payloads == [.tone, .callState("established")])
    #expect(!"\(read)".contains("tone7"))
    let bad = try batch(
        ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":{"toneInfo":{"tone":"4111111111111111"}}}]}"##)
    #expect(bad.notifications.isEmpty)
    #expect(bad.skipped.count == 1)
    #expect(!"\(bad.skipped)".contains("4111111111111111"))
}

@Test func anOperationNotificationIsRead() throws {
    let read = try batch(
        ##"""
        {"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1/operations/op-9",
          "resourceData":{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","status":"failed","clientContext":"key-1",
          "resultInfo":{"code":"403","subcode":"8522","message":"not allowed"}}}]}
        """##)
    guard case .operation(let operation)? = read.notifications.first?.payloads.first else {
        Issue.record("not an operation: \(read)")
        return
    }
    #expect(operation.type == "updateRecordingStatusOperation")
    #expect(operation.id == "op-9")
    #expect(operation.clientContext == "key-1")
    #expect(operation.status == .failed)
    #expect(operation.resultInfo == .init(code: 403, subcode: 8522, message: "not allowed"))
}

@Test func aLegacyIncomingCallIsToldApartFromGraphsFormat() throws {
    let legacy = ##"""
        {"id":"0b3b5f1d-0a8c","participants":[{"identity":"29:1abc","languageId":"en-US","originator":true}],"isMultiparty":false,
         "presentedModalityTypes":["audio"],"callState":"incoming","links":{"callback":"https://bot/api/calls"},"appId":"app-1"}
        """##
    #expect(try parse(legacy) == .legacy)
    #expect(throws: GraphNotifications.Malformed.self) { try parse(##"{"hello":"world"}"##) }
    #expect(throws: GraphNotifications.Malformed.self) { try parse("[1,2]") }
    #expect(throws: GraphNotifications.Malformed.self) { try parse("not json") }
}

@Test func aMalformedNotificationIsSkippedAndTheOthersCount() throws {
    let read = try batch(
        ##"""
        {"value":[
          {"changeType":"updated","resourceUrl":"/communications/other/x","resourceData":{}},
          {"changeType":"moved","resourceUrl":"/communications/calls/c-1","resourceData":{}},
          {"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":{"state":"flying"}},
          {"changeType":"updated","resourceUrl":"/communications/calls/c-1/participants","resourceData":[{"id":"p","isMuted":"yes"}]},
          {"changeType":"updated","resourceUrl":"/communications/calls/c-1","resourceData":{"state":"established"}}
        ]}
        """##)
    #expect(read.notifications.count == 1)
    #expect(read.skipped.count == 4)
    #expect(read.skipped.dropFirst().allSatisfy { $0.call == "c-1" })
}
