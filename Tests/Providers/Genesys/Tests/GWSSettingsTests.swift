import MutewardenConfig
import MutewardenProviderKit
import MutewardenModel
import MutewardenTesting
import Testing

@testable import MutewardenGenesys

private let registry = ProviderRegistry(feeds: [GWSSettings.feedProvider], targets: [GWSSettings.targetProvider])

private func load(feed: String, target: String = "{ type: genesys, base_url: https://gws, username: u, password: \"${env:PW}\" }")
    throws(ConfigurationError) -> DaemonConfiguration
{
    try ConfigurationLoader(registry: registry, environment: ["PW": "pw-value-never-shown"]).load(
        yaml: """
            feeds:
              gws: \(feed)
            targets:
              voice: \(target)
            policies:
              card:
                feeds: [gws]
                start: { attribute: PCI_STAGE, equals: CARD }
                actions: [{ kind: mute, target: voice }]
            """, file: "gws.yaml")
}

@Test func aFullFeedDecodesWithDefaultsAndTheTargetConfirmsByEvent() throws {
    let configuration = try load(
        feed: "{ type: genesys, base_url: https://gws.example.com, username: svc, password: \"${env:PW}\", agent_extension: \"3001\" }")
    let settings = try #require(configuration.feeds.first?.settings as? GWSSettings)
    #expect(settings.cometdPath == "/api/v2/notifications")
    #expect(settings.channels == ["/v2/me/calls"])
    #expect(settings.agentExtension == "3001")
    #expect(settings.password.reveal() == "pw-value-never-shown")
    #expect(!settings.summary.contains("pw-value-never-shown"))
    #expect(configuration.engine.targets.first { $0.name == "voice" }?.confirmsByEvent == true)
}

@Test(arguments: [
    ("{ type: genesys, base_url: gws.example.com, username: u, password: p }", "gws.yaml:2:35: error:", "must start with https://"),
    ("{ type: genesys, base_url: https://gws, password: p }", "gws.yaml:2:8: error:", "missing required key 'username'"),
    ("{ type: genesys, base_url: https://gws, username: u }", "gws.yaml:2:8: error:", "missing required key 'password'"),
    (
        "{ type: genesys, base_url: https://gws, username: u, password: p, cometd_path: notifications }", "gws.yaml:2:87: error:",
        "must start with '/'"
    ),
    (
        "{ type: genesys, base_url: https://gws, username: u, password: p, transport: comet }", "gws.yaml:2:85: error:",
        "expected one of: long-polling, websocket"
    ),
    ("{ type: genesys, base_url: https://gws, username: u, password: p, max_message_size: 10 }", "gws.yaml:2:92: error:", "between 1024 and 4194304"),
    ("{ type: genesys, base_url: https://gws, username: u, password: p, channels: [] }", "gws.yaml:2:84: error:", "at least one channel"),
    ("{ type: genesys, base_url: https://gws, username: u, password: p, tls: { insecur: true } }", "gws.yaml:2:81: error:", "unknown key 'insecur'"),
])
func badGenesysSettingsAreRefusedWithTheirLocation(_ feed: String, _ location: String, _ message: String) {
    #expect {
        _ = try load(feed: feed)
    } throws: { error in
        let text = "\(error)"
        return text.contains(location) && text.contains(message) && !text.contains("pw-value-never-shown")
    }
}

@Test func theFeedAndTheTargetOfOneServerAndUserShareASession() throws {
    let configuration = try load(
        feed: "{ type: genesys, base_url: https://shared.example, username: svc, password: \"${env:PW}\" }",
        target: "{ type: genesys, base_url: https://shared.example, username: svc, password: \"${env:PW}\" }")
    let context = TestProviderContext().context
    let feedSettings = try #require(configuration.feeds.first?.settings as? GWSSettings)
    let targetSettings = try #require(configuration.targets.first?.settings as? GWSSettings)
    #expect(try feedSettings.session(context: context) === targetSettings.session(context: context))
}

@Test func theWebSocketTransportAndTheMessageLimitAreChosenInTheFeed() throws {
    let configuration = try load(
        feed: "{ type: genesys, base_url: https://gws, username: u, password: p, transport: websocket, max_message_size: 65536 }")
    let settings = try #require(configuration.feeds.first?.settings as? GWSSettings)
    #expect(settings.transport == .websocket)
    #expect(settings.maximumMessageBytes == 65536)
    #expect(settings.summary.contains("websocket"))
    let defaults = try #require(
        try load(feed: "{ type: genesys, base_url: https://gws, username: u, password: p }")
            .feeds.first?.settings as? GWSSettings)
    #expect(defaults.transport == .longPolling)
    #expect(defaults.maximumMessageBytes == 256 << 10)
}
