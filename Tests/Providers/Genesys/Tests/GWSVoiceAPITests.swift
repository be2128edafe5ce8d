import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import Testing

@testable import MutewardenGenesys

@Test(arguments: [
    (ActionKind.mute, ActionVerb.apply, "MuteCall"), (.mute, .undo, "UnmuteCall"),
    (.pauseRecording, .apply, "PauseCallRecording"), (.pauseRecording, .undo, "ResumeCallRecording"),
])
func operationNames(_ kind: ActionKind, _ verb: ActionVerb, _ name: String) {
    #expect(GWSVoiceAPI.operationName(kind, verb) == name)
    #expect(GWSVoiceAPI.requestBody(kind, verb) == "{\"operationName\":\"\(name)\"}")
}

/// A call id is one path segment: nothing in it can reach another resource or the query.
@Test(arguments: [
    ("00LG0000030000000003", "/api/v2/me/calls/00LG0000030000000003"),
    ("a-b.c_d~e", "/api/v2/me/calls/a-b.c_d~e"),
    ("../../admin", "/api/v2/me/calls/..%2F..%2Fadmin"),
    ("id?x=1#f", "/api/v2/me/calls/id%3Fx%3D1%23f"),
    ("a b%", "/api/v2/me/calls/a%20b%25"),
    ("é", "/api/v2/me/calls/%C3%A9"),
])
func callPaths(_ id: String, _ path: String) {
    #expect(GWSVoiceAPI.callPath(id) == path)
}

@Test(arguments: [
    (200, "{\"statusCode\":0}", "accepted"),
    (200, "{\"statusCode\":20,\"statusMessage\":\"Access denied\"}", "reauthenticate"),
    (401, "", "reauthenticate"),
    (403, "{\"statusMessage\":\"Missing or invalid Csrf token\"}", "reauthenticate"),
    (200, "{\"statusCode\":2,\"statusMessage\":\"Parameter not valid for current state\"}", "call-gone"),
    (200, "{\"statusCode\":6,\"statusMessage\":\"Resource not found\"}", "call-gone"),
    (200, "{\"statusCode\":4,\"statusMessage\":\"Internal error\"}", "retryable"),
    (200, "{\"statusCode\":12}", "retryable"),
    (200, "{\"statusCode\":5,\"statusMessage\":\"No permission\"}", "permanent"),
    (200, "{\"statusCode\":10,\"statusMessage\":\"Input validation error\"}", "permanent"),
    (503, "", "retryable"),
    (404, "", "permanent"),
    (200, "{}", "retryable"),
])
func statusCodesAreClassified(_ httpStatus: Int, _ body: String, _ expected: String) throws {
    let answer = GWSVoiceAPI.classify(httpStatus: httpStatus, body: body.isEmpty ? nil : try JSONValue.parse(body))
    switch answer {
    case .accepted: #expect(expected == "accepted")
    case .reauthenticate: #expect(expected == "reauthenticate")
    case .failed(let failure): #expect(failure.disposition.rawValue == expected)
    }
}

@Test func aFailureCarriesTheStatusMessageAndCode() {
    let answer = GWSVoiceAPI.classify(
        httpStatus: 200, body: .object([("statusCode", .number(5)), ("statusMessage", .string("No permission"))]))
    #expect(answer == .failed(ActionFailure(.permanent, "GWS statusCode 5: No permission", code: "5")))
}
