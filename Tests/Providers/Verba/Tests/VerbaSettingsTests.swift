import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVerba

private let registry = ProviderRegistry(feeds: [SimulatorLikeFeed.provider], targets: [VerbaTargetSettings.targetProvider])

/// A feed type for the loader: the Verba provider has none, and the loader wants a feed.
enum SimulatorLikeFeed {
    struct Settings: FeedSettings {
        var summary: String { "test feed" }
        func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { fatalError("not run") }
    }
    static let provider = FeedProvider(type: "test") { _ in Settings() }
}

private let secrets = ["VERBA_KEY": "api-key-value-never-shown", "VERBA_PW": "password-value-never-shown"]

private func load(
    _ target: String, kind: String = "pause-recording", by: String = "extension"
) throws(ConfigurationError) -> DaemonConfiguration {
    try ConfigurationLoader(registry: registry, environment: secrets).load(
        yaml: """
            feeds:
              f: { type: test }
            targets:
              rec: \(target)
            policies:
              card:
                feeds: [f]
                start: { attribute: PCI_STAGE, equals: CARD }
                actions: [{ kind: \(kind), target: rec, by: \(by) }]
            """, file: "verba.yaml")
}

private let minimal =
    #"{ type: verba, base_url: https://verba.example/verba/api, api_key: "${env:VERBA_KEY}", username: svc, password: "${env:VERBA_PW}" }"#

@Test func aMinimalTargetDecodesWithItsDefaultsAndConfirmsByTheAPIsAnswer() throws {
    let configuration = try load(minimal)
    let settings = try #require(configuration.targets.first?.settings as? VerbaTargetSettings)
    #expect(settings.baseURL == "https://verba.example/verba/api")
    #expect(settings.apiKey.reveal() == "api-key-value-never-shown")
    #expect(settings.login == .basic)
    #expect(settings.username == "svc")
    #expect(settings.password?.reveal() == "password-value-never-shown")
    #expect(settings.method == .get)
    #expect(settings.muteValue == "3")
    #expect(settings.unmuteValue == "0")
    #expect(settings.status == "ongoing")
    #expect(settings.callIDKey == nil)
    #expect(settings.tokenLifetime == .seconds(3600))
    #expect(settings.tokenRenewAfter == .seconds(3000))
    #expect(configuration.engine.targets.first { $0.name == "rec" }?.confirmsByEvent == false)
    for secret in secrets.values { #expect(!settings.summary.contains(secret)) }
    #expect(settings.summary.contains("<secret env:VERBA_KEY>"))
}

@Test func everyKeyIsRead() throws {
    let configuration = try load(
        """
        { type: verba, base_url: "http://127.0.0.1:8080/verba/api/", api_key: k, login: basic, username: u, password: p, method: post,
          mute_value: "1", unmute_value: "0", status: "ongoing,next", call_id_key: callUuid, token_lifetime: 30m,
          token_renew_after: 20m, verify_with_get_mute_state: false, max_connections: 2, timeout: 3s, connect_timeout: 1s,
          tls: { insecure: false } }
        """, by: "call")
    let settings = try #require(configuration.targets.first?.settings as? VerbaTargetSettings)
    #expect(settings.baseURL == "http://127.0.0.1:8080/verba/api")
    #expect(settings.method == .post)
    #expect(settings.muteValue == "1")
    #expect(settings.status == "ongoing,next")
    #expect(settings.callIDKey == "callUuid")
    #expect(settings.tokenLifetime == .seconds(1800))
    #expect(settings.tokenRenewAfter == .seconds(1200))
    #expect(settings.maxConnections == 2)
    #expect(settings.timeout == .seconds(3))
    #expect(settings.connectTimeout == .seconds(1))
}

@Test func aShortTokenLifeMovesTheDefaultRenewalWithIt() throws {
    let configuration = try load(#"{ type: verba, base_url: https://v/verba/api, api_key: k, username: u, password: p, token_lifetime: 60s }"#)
    let settings = try #require(configuration.targets.first?.settings as? VerbaTargetSettings)
    #expect(settings.tokenRenewAfter == .seconds(50))
}

@Test func withoutAuthenticationNoCredentialsAreAskedFor() throws {
    let configuration = try load(#"{ type: verba, base_url: https://v/verba/api, api_key: k, login: none }"#)
    let settings = try #require(configuration.targets.first?.settings as? VerbaTargetSettings)
    #expect(settings.login == .none)
    #expect(settings.summary.contains("no token"))
}

@Test(arguments: [
    (#"{ type: verba, base_url: verba.example/api, api_key: k, username: u, password: p }"#, "verba.yaml:4:33: error:", "must start with https://"),
    (#"{ type: verba, base_url: "https://v/api?x=1", api_key: k, username: u, password: p }"#, "verba.yaml:4:33: error:", "without a query"),
    (#"{ type: verba, base_url: https://v/api, username: u, password: p }"#, "verba.yaml:4:8: error:", "missing required key 'api_key'"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, password: p }"#, "verba.yaml:4:", "'login: basic' needs 'username'"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, username: u }"#, "verba.yaml:4:", "'login: basic' needs 'password'"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, password: p }"#, "verba.yaml:4:", "read only with 'login: basic'"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: token }"#, "verba.yaml:4:", "expected one of: basic, none"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, method: put }"#, "verba.yaml:4:", "expected one of: get, post"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, mute_value: "3&x=1" }"#, "verba.yaml:4:", "value of Verba's 'mute'"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, unmute_value: "3" }"#, "verba.yaml:4:", "would not resume"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, status: live }"#, "verba.yaml:4:", "ongoing, next or last"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, token_lifetime: 1s }"#, "verba.yaml:4:", "between 10s and 24h"),
    (
        #"{ type: verba, base_url: https://v/api, api_key: k, login: none, token_renew_after: 2h }"#, "verba.yaml:4:",
        "shorter than the token's life"
    ),
    (
        #"{ type: verba, base_url: https://v/api, api_key: k, login: none, verify_with_get_mute_state: true }"#, "verba.yaml:4:",
        "no read-back over HTTP"
    ),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, max_connections: 0 }"#, "verba.yaml:4:", "max_connections"),
    (#"{ type: verba, base_url: https://v/api, api_key: k, login: none, mute: 3 }"#, "verba.yaml:4:", "unknown key 'mute'"),
])
func badSettingsAreRefusedWithTheirLocation(_ target: String, _ location: String, _ message: String) {
    #expect {
        _ = try load(target)
    } throws: { error in
        let text = "\(error)"
        return text.contains(location) && text.contains(message) && secrets.values.allSatisfy { !text.contains($0) }
    }
}

@Test func aSecretInAnErrorIsNeverShown() {
    #expect {
        _ = try load(#"{ type: verba, base_url: https://v/api, api_key: "${env:VERBA_KEY}", password: "${env:VERBA_PW}" }"#)
    } throws: { error in
        let text = "\(error)"
        return text.contains("needs 'username'") && secrets.values.allSatisfy { !text.contains($0) }
    }
}

@Test func checkConfigRefusesToMuteTheAgentThroughVerba() {
    #expect {
        _ = try load(minimal, kind: "mute")
    } throws: { error in
        "\(error)".contains("mutes the *recording's* channels, not the agent's audio")
    }
}
