import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import Testing

@testable import MutewardenGraph

private let base = "https://graph.example/v1.0"

@Test func theRequestsAreTheDocumentedOnes() throws {
    let mute = GraphCallsAPI.request(.muteBot(call: "c 1"), graphURL: base, clientContext: "key-1")
    #expect(mute.method == .post)
    #expect(mute.url == base + "/communications/calls/c%201/mute")
    #expect(try JSONValue.parse(mute.body) == JSONValue.object([("clientContext", .string("key-1"))]))
    #expect(GraphCallsAPI.request(.unmuteBot(call: "c"), graphURL: base, clientContext: "k").url == base + "/communications/calls/c/unmute")
    #expect(
        GraphCallsAPI.request(.muteParticipant(call: "c", participant: "p/1"), graphURL: base, clientContext: "k").url
            == base + "/communications/calls/c/participants/p%2F1/mute")
    let pause = GraphCallsAPI.request(.updateRecordingStatus(call: "c", recording: false), graphURL: base, clientContext: "k")
    #expect(pause.url == base + "/communications/calls/c/updateRecordingStatus")
    #expect(try JSONValue.parse(pause.body)["status"] == .string("notRecording"))
    let resume = GraphCallsAPI.request(.updateRecordingStatus(call: "c", recording: true), graphURL: base, clientContext: "k")
    #expect(try JSONValue.parse(resume.body)["status"] == .string("recording"))
}

@Test func theClientContextIsAtMost256Bytes() {
    #expect(GraphCallsAPI.clientContext("abc") == "abc")
    #expect(GraphCallsAPI.clientContext(String(repeating: "é", count: 300)).utf8.count == 256)
}

private func classify(_ status: Int, _ body: String, renewed: Bool = false) -> GraphCallsAPI.Answer {
    GraphCallsAPI.classify(
        httpStatus: status, body: Array(body.utf8), operation: .updateRecordingStatus(call: "c", recording: false), credentialRenewed: renewed)
}

private func disposition(_ answer: GraphCallsAPI.Answer) -> ActionFailure.Disposition? {
    if case .failed(let failure) = answer { return failure.disposition }
    return nil
}

@Test func anOperationsStatusDecides() {
    let completed = classify(
        200, ##"{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","id":"op","status":"completed","clientContext":"k"}"##)
    guard case .completed(let operation?) = completed else {
        Issue.record("\(completed)")
        return
    }
    #expect(operation.id == "op")
    // The seed's sample wraps the operation in "value".
    guard
        case .running(let running) = classify(
            200, ##"{"value":{"@odata.type":"#microsoft.graph.muteParticipantOperation","id":"op2","status":"running","clientContext":"k"}}"##)
    else {
        Issue.record("a wrapped running operation not read")
        return
    }
    #expect(running.id == "op2")
    guard case .running = classify(200, ##"{"id":"op3","status":"notStarted"}"##) else {
        Issue.record("notStarted not read as running")
        return
    }
    guard case .failed(let failure) = classify(200, ##"{"status":"failed","resultInfo":{"code":403,"subcode":8522,"message":"denied"}}"##) else {
        Issue.record("failed not read")
        return
    }
    #expect(failure.disposition == .permanent)
    #expect(failure.message.contains("code 403, subcode 8522: denied"))
    #expect(failure.code == "operation failed 403/8522")
    guard case .completed(nil) = classify(202, "") else {
        Issue.record("an empty 2xx is not completed")
        return
    }
}

@Test func statusesAreClassified() {
    #expect(disposition(classify(404, ##"{"error":{"code":"ItemNotFound","message":"call not found"}}"##)) == .callGone)
    #expect(disposition(classify(401, "")) == .permanent)
    #expect(disposition(classify(401, "", renewed: true)) == .retryable)
    #expect(disposition(classify(403, "")) == .permanent)
    #expect(disposition(classify(429, "")) == .retryable)
    #expect(disposition(classify(503, "")) == .retryable)
    #expect(disposition(classify(400, "")) == .permanent)
    if case .failed(let failure) = classify(404, ##"{"error":{"code":"ItemNotFound","message":"call not found"}}"##) {
        #expect(failure.message.contains("ItemNotFound: call not found"))
        #expect(failure.code == "http 404 ItemNotFound")
    }
}
