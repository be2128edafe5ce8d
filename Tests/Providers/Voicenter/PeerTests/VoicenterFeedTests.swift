import Foundation
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenSupervisor
import MutewardenTesting
import Testing

@testable import MutewardenVoicenter

// The `voicenter` feed against the fake REST API (its real login and refresh over the HTTP
// transport) and the in-process socket.io stand-in: everything but the socket.io wire.

/// A call that passes the Luhn check, as about one real ivrid in ten does: kept whole in `call=`.
private let cardLikeIvrid = "4509123456789012343"

private func snapshot(_ calls: [(sipID: String, ivrid: String, stage: String)]) -> JSONValue {
    let grouped = Dictionary(grouping: calls, by: \.sipID).sorted { $0.key < $1.key }
    return .object([
        ("servertime", .number(1_717_000_200)), ("servertimeoffset", .number(120)),
        (
            "extensions",
            .array(
                grouped.map { sipID, calls in
                    .object([
                        ("extenUser", .string(sipID)), ("number", .number(201)),
                        ("calls", .array(calls.map { call($0.ivrid, stage: $0.stage) })),
                    ])
                })
        ),
    ])
}

private func call(_ ivrid: String, stage: String, muted: Int = 0) -> JSONValue {
    .object([
        ("ivrid", .string(ivrid)), ("callstatus", .string("Talking")), ("direction", .string("Incoming")),
        ("recording", .object([("IsMuted", .number(Double(muted)))])), ("customdata", .object([("PCI_STAGE", .string(stage))])),
    ])
}

private func extensionEvent(_ reason: String, sipID: String, calls: [JSONValue], ended: String? = nil) -> JSONValue {
    var data: [(String, JSONValue)] = [("extenUser", .string(sipID)), ("calls", .array(calls))]
    if let ended { data.append(("currentCall", .object([("ivrid", .string(ended)), ("direction", .string("Incoming"))]))) }
    return .object([("reason", .string(reason)), ("data", .object(data)), ("servertime", .number(1)), ("servertimeoffset", .number(0))])
}

/// The feed under test, running until `stop()`.
private final class RunningFeed: Sendable {
    let sink = RecordingSink()
    let connector: FakeConnector
    let logged: LoggedContext
    let task: Task<Void, any Error>

    init(peer: VoicenterRESTPeer, connector: FakeConnector = FakeConnector(), configure: (inout VoicenterFeedSettings) -> Void = { _ in })
        throws
    {
        self.connector = connector
        logged = try LoggedContext()
        var settings = VoicenterFeedSettings(
            credentials: .token(Secret(reference: "env:VC_TOKEN", value: VoicenterRESTPeer.token)),
            connector: VoicenterConnectorChoice(name: "fake", connector: connector))
        settings.loginURL = peer.loginURL
        settings.servers = ["http://127.0.0.1:1"]
        settings.reconnect = ReconnectPolicy(initialDelay: .milliseconds(10), maximumDelay: .milliseconds(50))
        configure(&settings)
        let feed = try settings.makeFeed(name: "vc", context: logged.context)
        task = Task { [sink] in try await feed.run(delivering: sink) }
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
        logged.close()
    }

    var isUp: Bool { sink.feedStates.last?.up == true }
}

private func withFeed<T>(
    _ peer: VoicenterRESTPeer, connector: FakeConnector = FakeConnector(), configure: (inout VoicenterFeedSettings) -> Void = { _ in },
    _ body: (RunningFeed) async throws -> T
) async throws -> T {
    let running = try RunningFeed(peer: peer, connector: connector, configure: configure)
    do {
        let value = try await body(running)
        await running.stop()
        return value
    } catch {
        await running.stop()
        print("--- captured log ---\n" + running.logged.lines().joined(separator: "\n"))
        throw error
    }
}

@Suite struct VoicenterFeedTests {
    @Test func theFeedLogsInConnectsToTheLoginsServerAndMapsWhatItIsSent() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"url":"https://monitor7.voicenter.co","url_list":["monitor8.voicenter.co.il"]}"#)
            try await withFeed(peer) { running in
                let session = try await running.connector.waitForSession()
                let attempt = try #require(running.connector.attempts.first)
                #expect(attempt.url == "https://monitor7.voicenter.co")
                #expect(attempt.version == .v3)
                #expect(try await peer.issuedTokens() == [attempt.token])
                let login = try #require(try await peer.requests("login").first)
                #expect(login["path"]?.string == "/monitorAPI/Login/Token")
                #expect(login["body"] == .object([("token", .string(VoicenterRESTPeer.token))]))
                #expect(login["content_type"]?.string == "application/json")

                session.push("AllExtensionsStatus", snapshot([("KGpK4iWq", cardLikeIvrid, "CARD"), ("Zq81LmPo", "C-2", "NONE")]))
                #expect(await waitUntil { running.sink.resyncs.count == 1 && running.isUp })
                #expect(running.sink.resyncs.first?.current.map(\.ids.primary) == [cardLikeIvrid, "C-2"])
                #expect(running.sink.resyncs.first?.current.first?.agentExtension == "KGpK4iWq")

                session.push("ExtensionEvent", extensionEvent("ANSWER", sipID: "KGpK4iWq", calls: [call(cardLikeIvrid, stage: "CARD", muted: 1)]))
                let updates = try await running.sink.waitForUpdates(1)
                #expect(updates.first?.recording == .paused)
                #expect(updates.first?.attributes == ["PCI_STAGE": "CARD"])
            }
        }
    }

    @Test func failedConnectionsMoveThroughTheLoginsServersThenTheConfiguredOnes() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"url":"https://monitor7.voicenter.co","url_list":["monitor8.voicenter.co.il"]}"#)
            let connector = FakeConnector()
            connector.plan(.fail(Refused()), .fail(Refused()), .fail(Refused()))
            try await withFeed(peer, connector: connector) { running in
                _ = try await connector.waitForSession()
                #expect(
                    connector.attempts.map(\.url) == [
                        "https://monitor7.voicenter.co", "https://monitor8.voicenter.co.il", "http://127.0.0.1:1",
                        "https://monitor7.voicenter.co",
                    ])
                // One login serves every attempt: only a refused token asks for another.
                #expect(try await peer.requests("login").count == 1)
                #expect(running.sink.feedStates.first?.up == false)
                #expect(running.sink.feedStates.first?.detail.contains("https://monitor7.voicenter.co: the fake refused") == true)
            }
        }
    }

    @Test func aRefusedTokenMeansANewLoginBeforeTheNextConnection() async throws {
        try await withRESTPeer { peer in
            let connector = FakeConnector()
            connector.plan(.fail(VoicenterSocketError.tokenRefused("HTTP 401 on the handshake")))
            try await withFeed(peer, connector: connector) { running in
                _ = try await connector.waitForSession()
                let tokens = try await peer.issuedTokens()
                #expect(tokens.count == 2)
                #expect(connector.attempts.map(\.token) == tokens)
            }
        }
    }

    @Test func theKeepaliveCarriesTheTokenRenewedWhileConnected() async throws {
        try await withRESTPeer { peer in
            // A 4 s token, renewed a second before it expires, under a 2 s keepalive: the silence
            // limit (4 s) leaves a loaded host room to answer keepalives late.
            try await peer.configure(#"{"token_life":4,"expiry_format":"epoch-ms"}"#)
            try await withFeed(peer, configure: { $0.keepalive = .seconds(2) }) { running in
                let session = try await running.connector.waitForSession()
                session.push("AllExtensionsStatus", snapshot([]))
                // The first keepalive carries whichever token is current when it goes: on a loaded
                // host it can go after the renewal, so only the renewed token's is required.
                #expect(await waitUntil { session.emitted.contains { $0.name == "keepalive" } })
                let refresh = try await eventually("a refresh") { try await peer.requests("refresh").first }
                #expect(refresh["authorization"]?.string?.hasPrefix("Bearer ref-") == true)
                let second = try await eventually("a second token") { try await peer.issuedTokens().dropFirst().first }
                #expect(await waitUntil { session.emitted.contains { $0.name == "keepalive" && $0.data == .string(second) } })
                // Renewed under the same connection, which the keepalive answers kept alive.
                #expect(running.connector.attempts.count == 1)
                #expect(try await peer.requests("login").count == 1)
            }
        }
    }

    @Test func anExpiredRefreshTokenFallsBackToANewLogin() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"token_life":2,"refresh_life":1}"#)
            try await withFeed(peer, configure: { $0.keepalive = .seconds(1) }) { running in
                let session = try await running.connector.waitForSession()
                session.push("AllExtensionsStatus", snapshot([]))
                #expect(await waitUntil { (try? await peer.requests("login").count) == 2 })
                // The peer sees the login before the feed has read its answer and said so.
                #expect(await waitUntil { running.logged.lines().contains { $0.contains("token-renewed") } })
            }
        }
    }

    @Test func aKeepaliveAnsweredWithAnErrorMeansAReconnectionWithANewLogin() async throws {
        try await withRESTPeer { peer in
            let connector = FakeConnector(keepaliveAnswer: .object([("isOk", .bool(false)), ("errorCode", .number(3))]))
            try await withFeed(peer, connector: connector, configure: { $0.keepalive = .seconds(1) }) { running in
                let first = try await connector.waitForSession()
                first.push("AllExtensionsStatus", snapshot([]))
                _ = try await connector.waitForSession(2)
                #expect(first.isEnded)
                #expect(try await peer.requests("login").count == 2)
                #expect(running.sink.feedStates.contains { !$0.up && $0.detail.contains("keepaliveResponse with errorCode 3") })
            }
        }
    }

    @Test func aDroppedConnectionIsFeedDownThenTheNextServerAndAResync() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"url":"https://monitor7.voicenter.co"}"#)
            try await withFeed(peer) { running in
                let first = try await running.connector.waitForSession()
                first.push("AllExtensionsStatus", snapshot([("A", "X-1", "CARD"), ("A", "X-2", "NONE")]))
                #expect(await waitUntil { running.isUp })
                first.end(Refused())
                let second = try await running.connector.waitForSession(2)
                #expect(running.connector.attempts.map(\.url) == ["https://monitor7.voicenter.co", "http://127.0.0.1:1"])
                // X-1 ended while the feed was down: the resync does not list it.
                second.push("AllExtensionsStatus", snapshot([("A", "X-2", "NONE")]))
                #expect(await waitUntil { running.sink.resyncs.count == 2 && running.isUp })
                #expect(running.sink.resyncs.last?.current.map(\.ids.primary) == ["X-2"])
                #expect(running.sink.feedStates.map(\.up) == [true, false, true])
            }
        }
    }

    @Test func withoutASocketIOClientTheFeedIsDownAndSaysWhy() async throws {
        try await withRESTPeer { peer in
            let logged = try LoggedContext()
            defer { logged.close() }
            var settings = VoicenterFeedSettings(
                credentials: .token(Secret(reference: "env:VC_TOKEN", value: VoicenterRESTPeer.token)), connector: .unavailable)
            settings.loginURL = peer.loginURL
            let sink = RecordingSink()
            let feed = try settings.makeFeed(name: "vc", context: logged.context)
            let task = Task { try await feed.run(delivering: sink) }
            #expect(await waitUntil { !sink.feedStates.isEmpty })
            task.cancel()
            _ = try? await task.value
            #expect(sink.feedStates.first?.up == false)
            #expect(sink.feedStates.first?.detail.contains("this build has no socket.io client") == true)
        }
    }

    @Test func noTokenPasswordOrCardNumberReachesTheLog() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"token_life":2}"#)
            let connector = FakeConnector()
            connector.plan(.fail(VoicenterSocketError.tokenRefused("44 Not authorized")))
            try await withFeed(
                peer, connector: connector,
                configure: {
                    $0.credentials = .account(
                        username: VoicenterRESTPeer.username,
                        password: Secret(reference: "env:VC_PASSWORD", value: VoicenterRESTPeer.password))
                    $0.keepalive = .seconds(1)
                }
            ) { running in
                let session = try await connector.waitForSession()
                session.push("AllExtensionsStatus", snapshot([("A", cardLikeIvrid, "CARD")]))
                // A call that cannot be read, with a card number in its custom data.
                session.push(
                    "ExtensionEvent",
                    .object([
                        ("reason", .string("ANSWER")), ("ivruniqueid", .string(cardLikeIvrid)),
                        ("data", .string("customer read 4111 1111 1111 1111")),
                    ]))
                session.push(
                    "ExtensionEvent",
                    extensionEvent(
                        "ANSWER", sipID: "A",
                        calls: [.object([("callstatus", .string("Talking")), ("customdata", .object([("PAN", .string("4111111111111111"))]))])]))
                #expect(await waitUntil { running.logged.lines().contains { $0.contains("token-renewed") } })
                #expect(await waitUntil { running.logged.lines().filter { $0.contains("result=skipped") }.count >= 2 })

                let tokens = try await peer.issuedTokens()
                let refreshTokens = try await peer.requests("refresh").compactMap { $0["authorization"]?.string?.dropFirst(7) }
                #expect(tokens.count >= 3 && !refreshTokens.isEmpty)
                let lines = running.logged.lines()
                let log = lines.joined(separator: "\n")
                for secret in tokens + refreshTokens.map(String.init) + [VoicenterRESTPeer.password, "4111111111111111", "4111 1111 1111 1111"] {
                    #expect(!log.contains(secret), "\(secret.prefix(4))… reached the log")
                }
                // The call id is kept whole in its own field, though it looks like a card number.
                #expect(lines.contains { $0.contains("call=\(cardLikeIvrid)") })
                #expect(lines.contains { $0.contains("logged in to \(peer.loginURL)") })
            }
        }
    }
}
