import MutewardenJSON
import MutewardenProviderKit
import Testing

@testable import MutewardenVoicenter

private let second: Int64 = 1_000_000_000
private let now: Int64 = 1_717_000_000 * second

@Test func theLoginAnswerGivesTheTokenItsExpiryAndTheServersInOrder() throws {
    let body = try JSONValue.parse(
        #"""
        {"StatusCode":0,"Status":"OK","Data":{"Socket":{"Token":"tok-secret-1","TokenExpiry":"2024-05-29T17:26:40Z",
         "RefreshToken":"ref-secret-1","RefreshTokenExpiry":1717086400000,"Url":"https://monitor7.voicenter.co/",
         "URLList":["monitor7.voicenter.co","monitor8.voicenter.co.il",42,"ftp://nope","bad host"],
         "Client":"https://loginapi.voicenter.co.il/monitorAPI/GetSocketClient?v=1.3.7","Version":"1","PersonId":9}}}
        """#)
    let login = try VoicenterLoginAnswer.parse(body, obtainedAt: now)
    #expect(login.token.reveal() == "tok-secret-1")
    #expect(login.tokenExpiry == 1_717_003_600 * second)
    #expect(login.refreshToken?.reveal() == "ref-secret-1")
    #expect(login.refreshTokenExpiry == 1_717_086_400 * second)
    #expect(login.url == "https://monitor7.voicenter.co")
    #expect(login.urlList == ["https://monitor7.voicenter.co", "https://monitor8.voicenter.co.il"])
    #expect(login.client?.hasSuffix("v=1.3.7") == true)
    #expect(
        login.socketURLs(configured: ["https://monitor1.voicenter.co", "monitor8.voicenter.co.il"]) == [
            "https://monitor7.voicenter.co", "https://monitor8.voicenter.co.il", "https://monitor1.voicenter.co",
        ])
    // Nothing that prints the login shows a token.
    for text in ["\(login)", String(reflecting: login), "\(VoicenterCredentials.token(login.token))"] {
        #expect(!text.contains("tok-secret-1"))
        #expect(!text.contains("ref-secret-1"))
    }
}

@Test func aRefreshAnswerMayCarryTheSocketFieldsAtTheTopAndKeepsWhatItLeavesOut() throws {
    let first = try VoicenterLoginAnswer.parse(
        try JSONValue.parse(#"{"Data":{"Socket":{"Token":"a","RefreshToken":"r","Url":"monitor7.voicenter.co"}}}"#), obtainedAt: now)
    let refreshed = try VoicenterLoginAnswer.parse(
        try JSONValue.parse(#"{"Token":"b","TokenExpiry":1717003600}"#), obtainedAt: now + second, previous: first)
    #expect(refreshed.token.reveal() == "b")
    #expect(refreshed.tokenExpiry == 1_717_003_600 * second)
    #expect(refreshed.refreshToken?.reveal() == "r")
    #expect(refreshed.url == "https://monitor7.voicenter.co")
    let underData = try VoicenterLoginAnswer.parse(try JSONValue.parse(#"{"Data":{"token":"c"}}"#), obtainedAt: now)
    #expect(underData.token.reveal() == "c")
}

@Test(arguments: [
    (#"{"StatusCode":401,"Status":"Invalid credentials"}"#, "no token (StatusCode 401, 'Invalid credentials')"),
    (#"{"StatusCode":"1","Data":null}"#, "no token (StatusCode 1)"),
    (#"{}"#, "the answer holds no token"),
])
func anAnswerWithoutATokenIsARefusal(_ json: String, _ reason: String) throws {
    #expect {
        _ = try VoicenterLoginAnswer.parse(try JSONValue.parse(json), obtainedAt: now)
    } throws: { error in
        guard let error = error as? VoicenterLoginError, case .refused(let why) = error else { return false }
        return why == reason && error.isRefusal
    }
}

@Test(arguments: [#"[]"#, #"{"Token":""}"#, #"{"Token":7}"#])
func unreadableAnswersAreMalformed(_ json: String) throws {
    #expect {
        _ = try VoicenterLoginAnswer.parse(try JSONValue.parse(json), obtainedAt: now)
    } throws: { error in
        guard case .malformed? = error as? VoicenterLoginError else { return false }
        return true
    }
}

@Test(arguments: [
    (JSONValue.number(1_717_003_600), Int64(1_717_003_600)),
    (.number(1_717_003_600_000), 1_717_003_600),
    (.string("1717003600"), 1_717_003_600),
    (.string("2024-05-29T17:26:40Z"), 1_717_003_600),
    (.string("2024-05-29T17:26:40.250Z"), 1_717_003_600),
    (.string("2024-05-29T19:26:40+02:00"), 1_717_003_600),
    (.string("2024-05-29T19:26:40+0200"), 1_717_003_600),
    (.string("2024-05-29 17:26:40"), 1_717_003_600),
    (.string("2024-05-29T17:26"), 1_717_003_560),
    (.string("2000-02-29T00:00:00Z"), 951_782_400),
])
func expiriesAreReadInEveryFormTheSDKAccepts(_ value: JSONValue, _ seconds: Int64) {
    let expiry = VoicenterTime.expiry(value)
    #expect(expiry.map { $0 / second } == seconds)
}

@Test(arguments: [
    JSONValue.string("tomorrow"), .string("2024-02-30T00:00:00Z"), .string("2024-05-29T25:00:00Z"), .string("2024-05-29T17:26:40X"),
    .string("1899-01-01T00:00:00Z"), .number(0), .number(-5), .number(.infinity), .string(""), .null, .bool(true),
    .string("2024-05-29T17:26:40."), .string("99999999999999999999"),
])
func unreadableExpiriesAreNil(_ value: JSONValue) {
    #expect(VoicenterTime.expiry(value) == nil)
}

@Test func theRefreshComesAheadOfTheExpiryByAFifthOfTheLifeWithinBounds() {
    func login(life seconds: Int64?) -> VoicenterSocketLogin {
        VoicenterSocketLogin(
            token: Secret(reference: "t", value: "t"), tokenExpiry: seconds.map { now + $0 * second }, obtainedAt: now)
    }
    #expect(login(life: 3600).refreshAt == now + 3540 * second)
    #expect(login(life: 100).refreshAt == now + 80 * second)
    #expect(login(life: 2).refreshAt == now + 1 * second)
    #expect(login(life: nil).refreshAt == nil)
    #expect(login(life: 10).isUsable(at: now + 9 * second))
    #expect(!login(life: 10).isUsable(at: now + 10 * second))
    #expect(login(life: nil).isUsable(at: .max))
    #expect(!login(life: 10).canRefresh(at: now))
}

@Test(
    arguments: [
        ("monitor1.voicenter.co", "https://monitor1.voicenter.co"), ("https://monitor1.voicenter.co/", "https://monitor1.voicenter.co"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"), ("wss://monitor1.voicenter.co", nil), ("", nil), ("monitor 1", nil),
        ("https://monitor1.voicenter.co/?x=1", nil), ("https://", nil), ("https://ex@mple.com", nil),
    ] as [(String, String?)])
func serverNamesAreNormalizedOrDropped(_ text: String, _ expected: String?) {
    #expect(VoicenterLoginAnswer.normalizedServer(text) == expected)
}

@Test func credentialsPutTheirSecretOnlyInTheBody() {
    let account = VoicenterCredentials.account(username: "ops", password: Secret(reference: "env:VC_PASSWORD", value: "pw-1"))
    #expect(account.body() == #"{"username":"ops","password":"pw-1"}"#)
    #expect(account.pathSegment == "Account")
    #expect(!"\(account)".contains("pw-1"))
    let user = VoicenterCredentials.user(email: "a@b.c", pin: Secret(reference: "file:/pin", value: "1234"))
    #expect(user.body() == #"{"email":"a@b.c","pin":"1234"}"#)
    #expect(user.pathSegment == "User")
    #expect(VoicenterCredentials.token(Secret(reference: "x", value: "t")).body() == #"{"token":"t"}"#)
}
