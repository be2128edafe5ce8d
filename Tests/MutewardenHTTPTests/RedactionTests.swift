import MutewardenModel
import Testing

@testable import MutewardenHTTP

private let card = "4111111111111111"
private let bearer = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig"

private func everyRendering(of value: Any) -> String {
    var dumped = ""
    dump(value, to: &dumped)
    return [
        String(describing: value), String(reflecting: value), "\(value)", dumped,
        Mirror(reflecting: value).children.map { "\($0.label ?? ""): \($0.value)" }.joined(separator: "\n"),
    ].joined(separator: "\n")
}

@Test func requestRenderingsNeverShowBodyCredentialsOrQuery() {
    let request = HTTPRequest(
        .post, "https://agent:hunter2@gws.example/api/v2/me/calls/42?token=tok-\(bearer)#frag",
        headers: [
            HTTPHeader("Authorization", "Bearer \(bearer)"),
            HTTPHeader("Cookie", "JSESSIONID=session-cookie-value"),
            HTTPHeader("X-CSRF-Token", "csrf-value-123"),
            HTTPHeader("X-XSRF-TOKEN", "xsrf-value-456"),
            HTTPHeader("X-Api-Key", "api-key-value"),
            HTTPHeader("X-Platform-Code", "marked-secret-value", secret: true),
            HTTPHeader("Content-Type", "application/json"),
        ],
        text: "{\"pan\":\"\(card)\"}")
    let text = everyRendering(of: request) + everyRendering(of: request.headers)
    for secret in [
        card, bearer, "hunter2", "tok-", "session-cookie-value", "csrf-value-123", "xsrf-value-456", "api-key-value",
        "marked-secret-value", "#frag",
    ] {
        #expect(!text.contains(secret), "\(secret) leaked")
    }
    // What is safe stays readable, so the logs still help.
    #expect(text.contains("POST https://gws.example/api/v2/me/calls/42?<redacted>"))
    #expect(text.contains("Content-Type: application/json"))
    #expect(text.contains("Authorization: <redacted>"))
    #expect(text.contains("16 bytes") || text.contains("\(request.body.count) bytes"))
}

@Test func responseRenderingsHideSessionCookiesAndBody() {
    let response = HTTPResponse(
        status: 200, headers: [HTTPHeader("Set-Cookie", "JSESSIONID=abc123secret; Path=/"), HTTPHeader("Server", "gws")],
        body: Array("token=\(bearer)".utf8))
    let text = everyRendering(of: response)
    #expect(!text.contains("abc123secret"))
    #expect(!text.contains(bearer))
    #expect(text.contains("Server: gws"))
}

@Test func configurationRenderingsHideTheKeyPassphraseAndProxyCredentials() {
    let configuration = HTTPClientConfiguration(
        name: "gws",
        tls: TLSOptions(clientCertificatePath: "/etc/mw/client.crt", clientKeyPassword: "key-passphrase-value"),
        proxy: .url("http://proxyuser:proxy-password@proxy.example:3128"))
    let text = everyRendering(of: configuration) + everyRendering(of: configuration.tls)
    #expect(!text.contains("key-passphrase-value"))
    #expect(!text.contains("proxy-password"))
    #expect(text.contains("proxy.example:3128"))
}

@Test(arguments: [
    ("https://host/path", "https://host/path"),
    ("https://user:pw@host:8443/a/b?x=1&token=2", "https://host:8443/a/b?<redacted>"),
    ("http://host?only=query", "http://host?<redacted>"),
    ("http://host#fragment", "http://host"),
    ("user:pw@proxy:3128", "proxy:3128"),
])
func urlRedaction(url: String, expected: String) {
    #expect(Redaction.redactedURL(url) == expected)
}

@Test func errorDetailsFromLibcurlLoseProxyCredentials() {
    let detail = HTTPError.sanitizedDetail("Unsupported proxy syntax in 'http://u:secretpw@proxy:1'", code: 5)
    #expect(!detail.contains("secretpw"))
    #expect(detail.contains("proxy:1"))
}
