import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVoicenter

/// The login client of a `voicenter` feed with `credentials`, against the fake.
private func client(_ peer: VoicenterRESTPeer, _ credentials: VoicenterCredentials, logged: LoggedContext) throws -> VoicenterLoginClient {
    var settings = VoicenterFeedSettings(credentials: credentials, connector: .unavailable)
    settings.loginURL = peer.loginURL + "/"
    let feed = try #require(try settings.makeFeed(name: "vc", context: logged.context) as? VoicenterFeed)
    return feed.login
}

@Suite struct VoicenterLoginClientTests {
    @Test(arguments: [
        (
            VoicenterCredentials.token(Secret(reference: "env:T", value: VoicenterRESTPeer.token)), "/monitorAPI/Login/Token",
            #"{"token":"monitor-token-value"}"#
        ),
        (
            .user(email: VoicenterRESTPeer.email, pin: Secret(reference: "env:P", value: VoicenterRESTPeer.pin)), "/monitorAPI/Login/User",
            #"{"email":"agent@example.com","pin":"pin-4821"}"#
        ),
        (
            .account(username: VoicenterRESTPeer.username, password: Secret(reference: "env:W", value: VoicenterRESTPeer.password)),
            "/monitorAPI/Login/Account", #"{"username":"ops","password":"account-password-value"}"#
        ),
    ])
    func eachLoginKindPostsItsCredentialsAndGetsAToken(_ credentials: VoicenterCredentials, _ path: String, _ body: String) async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"url":"monitor7.voicenter.co","url_list":["https://monitor8.voicenter.co.il"],"token_life":600}"#)
            let logged = try LoggedContext()
            defer { logged.close() }
            let before = wallClockNanoseconds()
            let login = try await client(peer, credentials, logged: logged).login()
            let request = try #require(try await peer.requests("login").first)
            #expect(request["method"]?.string == "POST")
            #expect(request["path"]?.string == path)
            #expect(request["body"] == (try JSONValue.parse(body)))
            #expect(try await peer.issuedTokens() == [login.token.reveal()])
            #expect(login.url == "https://monitor7.voicenter.co")
            #expect(login.urlList == ["https://monitor8.voicenter.co.il"])
            let expiry = try #require(login.tokenExpiry)
            #expect(expiry > before + 590_000_000_000 && expiry < wallClockNanoseconds() + 610_000_000_000)
            #expect(login.refreshToken != nil)
        }
    }

    @Test func refusedCredentialsAreARefusalThatNamesNoSecret() async throws {
        try await withRESTPeer { peer in
            let logged = try LoggedContext()
            defer { logged.close() }
            let wrong = VoicenterCredentials.account(username: "ops", password: Secret(reference: "env:W", value: "wrong-password-value"))
            let login = try client(peer, wrong, logged: logged)
            do throws(VoicenterLoginError) {
                _ = try await login.login()
                Issue.record("the login succeeded")
            } catch {
                #expect(error.isRefusal)
                #expect("\(error)" == "Voicenter login refused: no token (StatusCode 401, 'Invalid credentials')")
            }
        }
    }

    @Test(arguments: ["top", "nested"], ["iso", "epoch-s", "epoch-ms"])
    func aRefreshSendsTheRefreshTokenAsBearerAndGetsANewToken(_ shape: String, _ format: String) async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"refresh_shape":"\#(shape)","expiry_format":"\#(format)","url":"monitor7.voicenter.co"}"#)
            let logged = try LoggedContext()
            defer { logged.close() }
            let login = try client(peer, .token(Secret(reference: "env:T", value: VoicenterRESTPeer.token)), logged: logged)
            let first = try await login.login()
            let second = try await login.refresh(first)
            let request = try #require(try await peer.requests("refresh").first)
            #expect(request["method"]?.string == "GET")
            #expect(request["authorization"]?.string == "Bearer " + (first.refreshToken?.reveal() ?? "?"))
            #expect(second.token != first.token)
            #expect(try await peer.issuedTokens() == [first.token.reveal(), second.token.reveal()])
            #expect(second.tokenExpiry != nil)
            #expect(second.url == "https://monitor7.voicenter.co")
            // The refresh token is spent: a second refresh with it is refused.
            do throws(VoicenterLoginError) {
                _ = try await login.refresh(first)
                Issue.record("a spent refresh token was accepted")
            } catch {
                #expect(error == .http(status: 401, what: "token refresh (GET /RefreshIdentityToken)"))
                #expect(error.isRefusal)
            }
        }
    }

    @Test func aLoginAPIThatIsDownIsATransportFailure() async throws {
        let logged = try LoggedContext()
        defer { logged.close() }
        var settings = VoicenterFeedSettings(credentials: .token(Secret(reference: "env:T", value: "t")), connector: .unavailable)
        settings.loginURL = "http://127.0.0.1:\(try freePort())/monitorAPI"
        settings.connectTimeout = .seconds(2)
        let feed = try #require(try settings.makeFeed(name: "vc", context: logged.context) as? VoicenterFeed)
        do throws(VoicenterLoginError) {
            _ = try await feed.login.login()
            Issue.record("the login succeeded")
        } catch {
            guard case .transport = error else {
                Issue.record("expected a transport failure: \(error)")
                return
            }
            #expect(!error.isRefusal)
        }
    }
}
