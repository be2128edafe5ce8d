import MutewardenModel
import MutewardenProviderKit
import Testing

@testable import MutewardenVerba

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private let success = #"<?xml version="1.0" encoding="UTF-8"?><VerbaApi><Response code="0" type="MuteRecording"></Response></VerbaApi>"#
private let gone =
    #"<?xml version="1.0" encoding="UTF-8"?><VerbaApi><Response code="2" type="MuteRecording"><ErrorMessage description="Error">Call cannot be found.</ErrorMessage></Response></VerbaApi>"#

@Suite struct VerbaXMLTests {
    @Test func theDocumentedAnswersAreRead() throws {
        let ok = try #require(VerbaAnswer.read(bytes(success)))
        #expect(ok.isSuccess)
        #expect(ok.type == "MuteRecording")
        let error = try #require(VerbaAnswer.read(bytes(gone)))
        #expect(!error.isSuccess)
        #expect(error.code == "2")
        #expect(error.errorMessage == "Call cannot be found.")
        #expect(error.errorDescription == "Error")
    }

    @Test func entitiesCDATACommentsAndSingleQuotesAreRead() throws {
        let root = try VerbaXML.parse(
            bytes(
                "\u{FEFF}<!-- c --><VerbaApi><Response code='0' type=\"a&amp;b\"><!-- x --><Token><![CDATA[t-1]]>&#x41;&#66;</Token></Response></VerbaApi>\n"
            ))
        let response = try #require(root.child("response"))
        #expect(response.attribute("TYPE") == "a&b")
        #expect(response.child("Token")?.text == "t-1AB")
    }

    @Test(arguments: [
        "", "not xml", "<VerbaApi>", "<a></b>", "<a x=1></a>", "<a x='1' x='2'/>", "<a>&unknown;</a>", "<a>&#0;</a>",
        "<a>&#x110000;</a>", "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", "<a/><b/>", "<a><!-- unterminated </a>", "<a x='<'/>",
    ])
    func malformedXMLIsRefusedNotCrashedOn(_ text: String) {
        #expect(throws: VerbaXMLError.self) { try VerbaXML.parse(bytes(text)) }
    }

    @Test func depthElementsAndSizeAreBounded() {
        let deep = String(repeating: "<a>", count: VerbaXML.maximumDepth + 1) + String(repeating: "</a>", count: VerbaXML.maximumDepth + 1)
        #expect(throws: VerbaXMLError.self) { try VerbaXML.parse(bytes(deep)) }
        let wide = "<a>" + String(repeating: "<b/>", count: VerbaXML.maximumElements) + "</a>"
        #expect(throws: VerbaXMLError.self) { try VerbaXML.parse(bytes(wide)) }
        let large = "<a>" + String(repeating: "x", count: VerbaXML.maximumBytes) + "</a>"
        #expect(throws: VerbaXMLError.self) { try VerbaXML.parse(bytes(large)) }
    }

    @Test func platformTextIsBoundedAndStrippedOfControlCharacters() throws {
        let long = String(repeating: "é", count: 500)
        let answer = try #require(
            VerbaAnswer.read(
                bytes(#"<VerbaApi><Response code="7"><ErrorMessage description="E&#10;rr">\#(long)&#27;[2J</ErrorMessage></Response></VerbaApi>"#)))
        #expect(answer.errorDescription == "Err")
        #expect(try #require(answer.errorMessage).unicodeScalars.count <= 201)
        #expect(!(answer.errorMessage ?? "").unicodeScalars.contains { $0.value < 0x20 })
    }
}

@Suite struct VerbaAPITests {
    private let operation = "Verba MuteRecording mute=3 for extension 3001 (status ongoing)"

    private func failureOf(_ outcome: VerbaOutcome) -> ActionFailure? {
        switch outcome {
        case .accepted: nil
        case .failed(let failure), .unauthorized(let failure): failure
        }
    }

    @Test func codeZeroIsAccepted() {
        #expect(VerbaAPI.classify(httpStatus: 200, body: bytes(success), operation: operation) == .accepted)
    }

    @Test func callCannotBeFoundIsCallGoneWithTheCodeAndMessageForTheAudit() throws {
        let failure = try #require(failureOf(VerbaAPI.classify(httpStatus: 200, body: bytes(gone), operation: operation)))
        #expect(failure.disposition == .callGone)
        #expect(failure.code == "code 2")
        #expect(failure.message == "\(operation): code 2: Error: 'Call cannot be found.'")
    }

    @Test(arguments: ["More than one call matches the criteria.", "MORE THAN ONE call found", "Multiple calls match"])
    func moreThanOneMatchingCallIsPermanent(_ text: String) throws {
        let body =
            #"<VerbaApi><Response code="2" type="MuteRecording"><ErrorMessage description="Error">\#(text)</ErrorMessage></Response></VerbaApi>"#
        let outcome = VerbaAPI.classify(httpStatus: 200, body: bytes(body), operation: operation)
        guard case .failed(let failure) = outcome else {
            Issue.record("expected a plain failure, got \(outcome)")
            return
        }
        #expect(failure.disposition == .permanent)
        #expect(failure.message.contains("more than one call matches"))
    }

    @Test(arguments: [
        (401, ""), (403, ""),
        (200, #"<VerbaApi><Response code="3"><ErrorMessage description="Error">Invalid token.</ErrorMessage></Response></VerbaApi>"#),
        (200, #"<VerbaApi><Response code="3"><ErrorMessage>Token not found</ErrorMessage></Response></VerbaApi>"#),
    ])
    func aRefusedTokenIsDroppedAndRetried(_ status: Int, _ body: String) throws {
        let outcome = VerbaAPI.classify(httpStatus: status, body: bytes(body), operation: operation)
        guard case .unauthorized(let failure) = outcome else {
            Issue.record("expected unauthorized, got \(outcome)")
            return
        }
        #expect(failure.disposition == .retryable)
    }

    @Test(arguments: [
        (500, "", ActionFailure.Disposition.retryable), (503, "busy", .retryable), (400, "", .permanent), (501, "", .permanent),
        (200, "not xml", .retryable), (200, "<VerbaApi><Response/></VerbaApi>", .retryable),
        (200, #"<VerbaApi><Response code="9"><ErrorMessage>Recorder busy</ErrorMessage></Response></VerbaApi>"#, .retryable),
        (404, gone, .callGone),
    ])
    func otherAnswersAreClassified(_ status: Int, _ body: String, _ disposition: ActionFailure.Disposition) throws {
        let failure = try #require(failureOf(VerbaAPI.classify(httpStatus: status, body: bytes(body), operation: operation)))
        #expect(failure.disposition == disposition, "\(failure)")
    }

    @Test func theTokenAnswerIsRead() {
        let answer = #"<VerbaApi><Response code="0" type="RequestToken"><Token>09835e02-6c10-11e0-bb22-ba324924019b</Token></Response></VerbaApi>"#
        #expect(VerbaAPI.token(httpStatus: 200, body: bytes(answer)) == .success("09835e02-6c10-11e0-bb22-ba324924019b"))
        let refused =
            #"<VerbaApi><Response code="1" type="RequestToken"><ErrorMessage description="Error">Invalid credentials</ErrorMessage></Response></VerbaApi>"#
        guard case .failure(let error) = VerbaAPI.token(httpStatus: 200, body: bytes(refused)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(error.disposition == .permanent)
        #expect("\(error)".contains("Invalid credentials"))
        #expect(VerbaAPI.token(httpStatus: 401, body: []).failureValue?.disposition == .permanent)
        #expect(VerbaAPI.token(httpStatus: 502, body: []).failureValue?.disposition == .retryable)
        #expect(VerbaAPI.token(httpStatus: 200, body: bytes(success)).failureValue == .malformed("code 0 but no usable Token"))
    }

    @Test func requestsCarryEveryParameterEncodedAndHideTheirSecrets() {
        let key = Secret(reference: "env:K", value: "key&1")
        let token = Secret(reference: "verba token", value: "tok-secret")
        let parameters = VerbaAPI.muteParameters(.extension("30 01", status: "ongoing"), mute: "3", apiKey: key, token: token)
        let get = VerbaAPI.request(baseURL: "https://v/verba/api", method: .get, parameters: parameters)
        #expect(get.url == "https://v/verba/api?action=MuteRecording&apiKey=key%261&extension=30%2001&status=ongoing&mute=3&token=tok-secret")
        #expect(!"\(get)".contains("tok-secret") && !"\(get)".contains("key%261"))
        let post = VerbaAPI.request(
            baseURL: "https://v/verba/api", method: .post, parameters: VerbaAPI.muteParameters(.callID("a-1"), mute: "0", apiKey: key, token: nil))
        #expect(post.url == "https://v/verba/api")
        #expect(String(decoding: post.body, as: UTF8.self) == "action=MuteRecording&apiKey=key%261&callID=a-1&mute=0")
        let login = VerbaAPI.tokenRequest(baseURL: "https://v/verba/api", apiKey: key, username: "svc", password: Secret(reference: "p", value: "pw"))
        #expect(login.headers.first { $0.name == "Authorization" }?.value == "Basic c3ZjOnB3")
        #expect(!"\(login)".contains("c3ZjOnB3"))
    }

    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")])
    func base64IsRFC4648(_ input: String, _ output: String) {
        #expect(VerbaAPI.base64(Array(input.utf8)) == output)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
