import MutewardenJSON
import MutewardenWebSocket
import Testing

@testable import MutewardenSocketIO

@Suite struct ConfigurationTests {
    @Test func theHandshakeURLCarriesTheVersionTransportAndQuery() throws {
        let configuration = try SocketIOConfiguration(
            url: "https://monitor3.voicenter.co.il", query: [SocketIOQueryItem("token", "a b+c/é")])
        #expect(configuration.url.secure)
        #expect(configuration.url.port == 443)
        #expect(configuration.url.path == "/socket.io/")
        let v3 = configuration.webSocket(for: .v3)
        #expect(v3.url.query == "EIO=3&transport=websocket&token=a%20b%2Bc%2F%C3%A9")
        #expect(v3.pingInterval == nil && v3.idleTimeout == nil)
        #expect(configuration.webSocket(for: .v4).url.query.hasPrefix("EIO=4&transport=websocket&"))

        let plain = try SocketIOConfiguration(url: "http://127.0.0.1:8080/custom/?x=1")
        #expect(!plain.url.secure)
        #expect(plain.url.path == "/custom/")
        #expect(plain.webSocket(for: .v4).url.query == "EIO=4&transport=websocket&x=1")
    }

    @Test func noSecretIsEverDescribed() throws {
        let token = "tok-secret-71be"
        let configuration = try SocketIOConfiguration(
            url: "wss://events.example/socket.io/", query: [SocketIOQueryItem("token", token)],
            headers: [WebSocketHeader("Authorization", "Bearer \(token)")], auth: .object([("token", .string(token))]))
        let texts = [
            "\(configuration)", "\(configuration.url)", "\(configuration.query)", "\(configuration.webSocket(for: .v3))",
            "\(configuration.webSocket(for: .v3).url)",
        ]
        for text in texts { #expect(!text.contains(token), "\(text)") }
        #expect(
            "\(configuration)"
                == "wss://events.example:443/socket.io/ version=auto query=[token] headers=[Authorization] auth=<redacted> tls=(\(configuration.tls))"
        )
    }

    @Test func invalidSettingsAreRefused() throws {
        #expect(throws: SocketIOError.invalidConfiguration("a WebSocket URL starts with ws:// or wss://")) {
            try SocketIOConfiguration(url: "ftp://x?token=secret")
        }
        let badNamespace = try SocketIOConfiguration(url: "ws://h", namespace: "admin")
        #expect(throws: SocketIOError.invalidConfiguration("the namespace must start with / and have no comma")) {
            try badNamespace.validate()
        }
        let badTimeout = try SocketIOConfiguration(url: "ws://h", handshakeTimeout: .zero)
        #expect(throws: SocketIOError.invalidConfiguration("the handshake timeout must be positive")) { try badTimeout.validate() }
        let badHeader = try SocketIOConfiguration(url: "ws://h", headers: [WebSocketHeader("Host", "x")])
        #expect(throws: SocketIOError.invalidConfiguration("header Host is set by the client itself (use url, origin or subprotocols)")) {
            try badHeader.validate()
        }
    }

    @Test func errorsSayWhatToDo() {
        #expect(SocketIOError.authRefused("the server refused the handshake with HTTP 401").requiresLogin)
        #expect(!SocketIOError.versionRefused(.v4, status: 400).requiresLogin)
        #expect(!SocketIOError.ended(.heartbeatTimeout("no pong within 5s of a ping")).requiresLogin)
        #expect(
            "\(SocketIOError.versionRefused(.v4, status: 400))"
                == "the server refused Engine.IO v4 (HTTP 400): it speaks another Engine.IO version")
        #expect(
            "\(SocketIOSessionEnd.connectRefused(message: String(repeating: "x", count: 500) + "\n"))".count
                == "the server refused the socket.io connection: ".count + 121)
    }
}
