import MutewardenModel
import Testing

@testable import MutewardenWebSocket

@Suite struct WebSocketConfigurationTests {
    @Test func parsesURLs() throws {
        let plain = try WebSocketURL("ws://example.test/socket.io/?EIO=3&transport=websocket&token=abc123")
        #expect(!plain.secure && plain.host == "example.test" && plain.port == 80)
        #expect(plain.path == "/socket.io/" && plain.query == "EIO=3&transport=websocket&token=abc123")
        #expect(plain.hostHeader == "example.test")
        #expect(plain.target == "/socket.io/?EIO=3&transport=websocket&token=abc123")
        #expect(plain.description == "ws://example.test:80/socket.io/?…")

        let secure = try WebSocketURL("wss://gws.example.test:8443")
        #expect(secure.secure && secure.port == 8443 && secure.path == "/" && secure.query.isEmpty)
        #expect(secure.hostHeader == "gws.example.test:8443")
        #expect(try WebSocketURL("wss://h.test").port == 443)

        let ipv6 = try WebSocketURL("ws://[::1]:9000/x#fragment")
        #expect(ipv6.host == "::1" && ipv6.port == 9000 && ipv6.path == "/x")
        #expect(ipv6.hostHeader == "[::1]:9000")
    }

    @Test(arguments: [
        "http://example.test/", "ws://", "ws://user:pass@example.test/", "ws://example.test:0/",
        "ws://example.test:99999/", "ws://example.test:port/", "ws://[::1/", "ws://exa mple.test/",
        "ws://example.test/a b", "wss://example.test/?a b",
    ])
    func rejectsBadURLsWithoutQuotingThem(text: String) {
        do {
            _ = try WebSocketURL(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(!"\(error)".contains("pass"))
            #expect(!"\(error)".contains("a b"))
        }
    }

    @Test func validatesHeadersAndLimits() throws {
        let url = try WebSocketURL("wss://example.test/")
        #expect(throws: Never.self) {
            try WebSocketConfiguration(url: url, headers: [WebSocketHeader("Authorization", "Bearer x")]).validate()
        }
        let injected = WebSocketConfiguration(url: url, headers: [WebSocketHeader("Cookie", "a=b\r\nX-Evil: 1")])
        #expect(throws: WebSocketError.invalidConfiguration("the value of header Cookie has control characters")) {
            try injected.validate()
        }
        #expect(throws: WebSocketError.self) {
            try WebSocketConfiguration(url: url, headers: [WebSocketHeader("Host", "elsewhere")]).validate()
        }
        #expect(throws: WebSocketError.self) {
            try WebSocketConfiguration(url: url, headers: [WebSocketHeader("Bad Name", "v")]).validate()
        }
        #expect(throws: WebSocketError.self) { try WebSocketConfiguration(url: url, subprotocols: ["a b"]).validate() }
        #expect(throws: WebSocketError.self) {
            try WebSocketConfiguration(url: url, tls: TLSOptions(clientCertificatePath: "/c.pem")).validate()
        }
        #expect(throws: WebSocketError.self) { try WebSocketConfiguration(url: url, maximumMessageSize: 0).validate() }
        #expect(throws: WebSocketError.self) { try WebSocketConfiguration(url: url, pingInterval: .zero).validate() }
        #expect(WebSocketConfiguration(url: url).maximumMessageSize == 1 << 20)
    }

    @Test func descriptionsAndTheRedactorNeverShowSecrets() throws {
        let configuration = WebSocketConfiguration(
            url: try WebSocketURL("wss://example.test/feed?token=s3cr3t-token&agent=42"),
            headers: [WebSocketHeader("Authorization", "Bearer abc.def.ghi"), WebSocketHeader("Cookie", "sid=xyz789")],
            tls: TLSOptions(caBundlePath: "/etc/mw/ca.pem", insecure: true))
        let text = "\(configuration) \(configuration.headers) \(configuration.url)"
        for secret in ["s3cr3t-token", "abc.def.ghi", "sid=xyz789", "agent=42"] { #expect(!text.contains(secret)) }
        #expect(text.contains("Authorization: <redacted>") && text.contains("headers=[Authorization,Cookie]"))
        #expect(text.contains("INSECURE"))
        let redact = Redactor(secrets: configuration.secrets)
        #expect(
            redact("GET /feed?token=s3cr3t-token&agent=42 failed, auth Bearer abc.def.ghi")
                == "GET /feed?<redacted> failed, auth <redacted>")
        #expect(redact("only s3cr3t-token here") == "only <redacted> here")
    }

    @Test func errorsReadForAnOperator() {
        #expect("\(WebSocketError.notConnected)" == "not connected")
        #expect("\(WebSocketError.connection("the connection was lost"))" == "the connection was lost")
    }
}
