import MutewardenHTTP
import MutewardenModel
import Testing

@testable import MutewardenVoicenter

@Test func byCallSendsTheIvridAndByExtensionTheSIPID() {
    #expect(
        VoicenterMuteAPI.parameters(.call(id: "4509123456789012343"), .apply).map { [$0.0, $0.1] } == [
            ["ivrid", "4509123456789012343"], ["state", "1"],
        ])
    #expect(VoicenterMuteAPI.parameters(.agentExtension("KGpK4iWq"), .undo).map { [$0.0, $0.1] } == [["extension", "KGpK4iWq"], ["state", "0"]])
}

@Test func postSendsJSONAndGetSendsTheSameInTheQuery() {
    let parameters = VoicenterMuteAPI.parameters(.call(id: "a&b=c d"), .apply)
    let post = VoicenterMuteAPI.request(url: "https://m1/api/MuteUnmuteCalls", method: .postJSON, parameters: parameters)
    #expect(post.method == .post)
    #expect(post.url == "https://m1/api/MuteUnmuteCalls")
    #expect(String(decoding: post.body, as: UTF8.self) == #"{"ivrid":"a&b=c d","state":"1"}"#)
    #expect(post.headers.contains { $0.name == "Content-Type" && $0.value == "application/json" })
    let get = VoicenterMuteAPI.request(url: "https://m1/api/MuteUnmuteCalls", method: .get, parameters: parameters)
    #expect(get.method == .get)
    // An id can never add a parameter of its own.
    #expect(get.url == "https://m1/api/MuteUnmuteCalls?ivrid=a%26b%3Dc%20d&state=1")
    #expect(get.body.isEmpty)
}

@Test(arguments: [
    (200, #"{"ErrorCode":200,"Message":"Success","ActionID":"14d3b31988b247be8ff5818d1cadc3d3"}"#, "accepted"),
    (200, #"{"ErrorCode":"200","Message":"Success","ActionID":"14d3"}"#, "accepted"),
    (200, #"{"ErrorCode":" 200 ","Message":"Success"}"#, "accepted"),
    (200, #"{"ErrorCode":404,"Message":"UniqueIvrID not found"}"#, "call-gone"),
    (200, #"{"ErrorCode":"1","Message":"UniqueIvrID not found"}"#, "call-gone"),
    (404, #"{"ErrorCode":404,"Message":"UniqueIvrID not found"}"#, "call-gone"),
    (200, #"{"ErrorCode":400,"Message":"Parameters are not valid, should be \"ivrid\" and \"mute\""}"#, "permanent"),
    (200, #"{"ErrorCode":500,"Message":"Internal error"}"#, "retryable"),
    (200, #"{"ErrorCode":"E17","Message":"Busy"}"#, "retryable"),
    (200, #"{"Message":"Success"}"#, "retryable"),
    (200, "<html>gateway</html>", "retryable"),
    (503, "", "retryable"),
    (429, "", "retryable"),
    (403, "Forbidden", "permanent"),
    (401, #"{"Message":"Unauthorized"}"#, "permanent"),
])
func answersAreClassified(_ status: Int, _ body: String, _ expected: String) {
    switch VoicenterMuteAPI.classify(httpStatus: status, body: Array(body.utf8), operation: "op") {
    case .accepted: #expect(expected == "accepted")
    case .failed(let failure): #expect(failure.disposition.rawValue == expected, "\(failure)")
    }
}

@Test func theMessageAndErrorCodeGoIntoTheFailure() {
    let result = VoicenterMuteAPI.classify(
        httpStatus: 200, body: Array(#"{"ErrorCode":"404","Message":"UniqueIvrID not found"}"#.utf8),
        operation: "Voicenter MuteUnmuteCalls state 1 for call 42")
    #expect(
        result
            == .failed(
                ActionFailure(
                    .callGone, "Voicenter MuteUnmuteCalls state 1 for call 42: ErrorCode 404: 'UniqueIvrID not found'",
                    code: "ErrorCode 404")))
}

@Test func aLongOrControlRiddenMessageIsBounded() {
    let message = String(repeating: "x", count: 500) + "\\u001b[31m"
    let result = VoicenterMuteAPI.classify(
        httpStatus: 200, body: Array(#"{"ErrorCode":7,"Message":"\#(message)"}"#.utf8), operation: "op")
    guard case .failed(let failure) = result else {
        Issue.record("expected a failure")
        return
    }
    #expect(failure.message.count < 260)
    #expect(!failure.message.contains("\u{1B}"))
}
