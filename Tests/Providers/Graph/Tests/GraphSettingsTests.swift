import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import Testing

@testable import MutewardenGraph

private let registry = ProviderRegistry(feeds: [GraphFeedSettings.feedProvider], targets: [GraphTargetSettings.targetProvider])
private let environment = ["GRAPH_SECRET": "graph-client-secret-never-shown"]

private let feed = "{ type: graph, path: /callbacks/graph, app_id: app-1, tenant: tenant-1 }"
private let target = #"{ type: graph, tenant: tenant-1, client_id: app-1, client_secret: "${env:GRAPH_SECRET}" }"#

private func load(feed: String = feed, target: String = target, action: String = "{ kind: pause-recording, target: graph }")
    throws(ConfigurationError) -> DaemonConfiguration
{
    try ConfigurationLoader(registry: registry, environment: environment).load(
        yaml: """
            ingress: { address: 127.0.0.1, port: 8443, tls: false }
            feeds:
              graph: \(feed)
            targets:
              graph: \(target)
            policies:
              card:
                feeds: [graph]
                start: { attribute: dtmf, equals: keying }
                actions: [\(action)]
            """, file: "graph.yaml")
}

private func errors(_ body: () throws(ConfigurationError) -> DaemonConfiguration) -> String {
    do {
        _ = try body()
        return ""
    } catch {
        return "\(error)"
    }
}

@Test func theFeedAndTargetAreReadWithGraphsDefaults() throws {
    let configuration = try load()
    let feedSettings = try #require(configuration.feeds.first?.settings as? GraphFeedSettings)
    #expect(feedSettings.jwt.audiences == ["app-1"])
    #expect(feedSettings.jwt.issuers == ["https://api.botframework.com"])
    #expect(feedSettings.jwt.requiredClaims == ["tid": "tenant-1"])
    #expect(feedSettings.jwt.openIDConfigurationURL == "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration")
    #expect(feedSettings.core.agent == .bot(appID: "app-1"))
    let targetSettings = try #require(configuration.targets.first?.settings as? GraphTargetSettings)
    #expect(targetSettings.graphURL == "https://graph.microsoft.com/v1.0")
    #expect(targetSettings.credentials.scope == "https://graph.microsoft.com/.default")
    #expect(targetSettings.credentials.tokenURL == "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token")
    #expect(targetSettings.leg == .bot)
    #expect(!targetSettings.summary.contains("never-shown"))
    #expect(!feedSettings.summary.contains("never-shown"))
}

@Test func urlsAndTheAgentAreConfigurable() throws {
    let configuration = try load(
        feed: "{ type: graph, path: /g, app_id: a, tenant: t, openid_configuration: http://127.0.0.1:9/oidc, agent: participant, "
            + "agent_identities: [user, phone], agent_id_prefix: '5810' }",
        target:
            #"{ type: graph, tenant: t, client_id: a, client_secret: "${env:GRAPH_SECRET}", graph_url: "http://127.0.0.1:9/v1.0/", authority_url: http://127.0.0.1:9 }"#
    )
    let feedSettings = try #require(configuration.feeds.first?.settings as? GraphFeedSettings)
    #expect(feedSettings.core.agent == .participant(kinds: ["user", "phone"], idPrefix: "5810"))
    #expect(feedSettings.jwt.openIDConfigurationURL == "http://127.0.0.1:9/oidc")
    let targetSettings = try #require(configuration.targets.first?.settings as? GraphTargetSettings)
    #expect(targetSettings.graphURL == "http://127.0.0.1:9/v1.0")
    #expect(targetSettings.credentials.tokenURL == "http://127.0.0.1:9/t/oauth2/v2.0/token")
}

@Test func checkConfigRefusesAParticipantMuteBecauseItCannotBeUndone() {
    let refused = errors { () throws(ConfigurationError) in
        try load(
            target: #"{ type: graph, tenant: t, client_id: a, client_secret: "${env:GRAPH_SECRET}", leg: participant }"#,
            action: "{ kind: mute, target: graph }")
    }
    #expect(refused.contains("no way to unmute"))
    #expect(!refused.contains("never-shown"))
    // The bot's own leg can be unmuted.
    #expect(errors { () throws(ConfigurationError) in try load(action: "{ kind: mute, target: graph }") } == "")
    #expect(
        errors { () throws(ConfigurationError) in try load(action: "{ kind: pause-recording, target: graph, by: extension }") }.contains(
            "use 'by: call'"))
}

@Test func missingAndWrongKeysAreAllReported() {
    let text = errors { () throws(ConfigurationError) in
        try load(feed: "{ type: graph, path: callbacks, agent: robot }", target: "{ type: graph, graph_url: ftp://x }")
    }
    for expected in ["app_id", "tenant", "'path' must be", "agent", "client_id", "client_secret", "graph_url"] {
        #expect(text.contains(expected), "\(expected) not reported in \(text)")
    }
    #expect(
        errors { () throws(ConfigurationError) in try load(feed: "{ type: graph, path: /g, app_id: a, tenant: t, agent_id_prefix: x }") }.contains(
            "agent: participant"))
}
