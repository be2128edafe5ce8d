import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import Testing

@testable import MutewardenACS

private let registry = ProviderRegistry(feeds: [ACSFeedSettings.feedProvider], targets: [ACSTargetSettings.targetProvider])

private let connection = "endpoint=https://res.communication.azure.com/;accesskey=c2VjcmV0LWFjY2Vzcy1rZXktbmV2ZXItc2hvd24="
private let environment = [
    "ACS_CONNECTION": connection, "ACS_SECRET": "query-secret-never-shown-1234", "ACS_CLIENT_SECRET": "client-secret-never-shown",
]

private let jwtFeed = "{ type: acs, path: /callbacks/acs, resource_id: 11111111-2222-3333-4444-555555555555 }"
private let hmacTarget = #"{ type: acs, connection_string: "${env:ACS_CONNECTION}" }"#

private func load(feed: String = jwtFeed, target: String = hmacTarget, action: String = "{ kind: pause-recording, target: acs }")
    throws(ConfigurationError) -> DaemonConfiguration
{
    try ConfigurationLoader(registry: registry, environment: environment).load(
        yaml: """
            ingress: { address: 127.0.0.1, port: 8443, tls: false }
            feeds:
              acs: \(feed)
            targets:
              acs: \(target)
            policies:
              card:
                feeds: [acs]
                start: { attribute: dtmf, equals: keying }
                actions: [\(action)]
            """, file: "acs.yaml")
}

private func errors(_ body: () throws(ConfigurationError) -> DaemonConfiguration) -> String {
    do {
        _ = try body()
        return ""
    } catch {
        return "\(error)"
    }
}

@Test func theJWTFeedAndTheHMACTargetAreRead() throws {
    let configuration = try load()
    let feed = try #require(configuration.feeds.first?.settings as? ACSFeedSettings)
    guard case .jwt(let jwt) = feed.authentication else {
        Issue.record("not a JWT feed")
        return
    }
    #expect(jwt.audiences == ["11111111-2222-3333-4444-555555555555"])
    #expect(jwt.issuers == ["https://acscallautomation.communication.azure.com"])
    #expect(feed.path == "/callbacks/acs")
    let target = try #require(configuration.targets.first?.settings as? ACSTargetSettings)
    #expect(target.endpoint == "https://res.communication.azure.com")
    #expect(target.apiVersion == "2024-09-15")
    #expect(!target.summary.contains("c2VjcmV0"))
    #expect(!feed.summary.contains("c2VjcmV0"))
}

@Test func theQuerySecretFeedAndTheEntraTargetAreRead() throws {
    let configuration = try load(
        feed: #"{ type: acs, path: /cb, authentication: query-secret, secret: "${env:ACS_SECRET}", secret_parameter: key }"#,
        target: #"""
            { type: acs, endpoint: "https://res.communication.azure.com", tenant: contoso.onmicrosoft.com,
                  client_id: 00000000-0000-0000-0000-000000000001, client_secret: "${env:ACS_CLIENT_SECRET}" }
            """#)
    let feed = try #require(configuration.feeds.first?.settings as? ACSFeedSettings)
    guard case .querySecret(let parameter, _) = feed.authentication else {
        Issue.record("not a query-secret feed")
        return
    }
    #expect(parameter == "key")
    #expect(!feed.summary.contains("query-secret-never-shown"))
    let target = try #require(configuration.targets.first?.settings as? ACSTargetSettings)
    guard case .entra(let credentials) = target.credential else {
        Issue.record("not Entra")
        return
    }
    #expect(credentials.scope == "https://communication.azure.com//.default")
    #expect(!target.summary.contains("client-secret-never-shown"))
}

@Test func muteIsRefusedWithoutAnUnmuteAPIVersionAndAcceptedWithOne() throws {
    let refused = errors { () throws(ConfigurationError) in try load(action: "{ kind: mute, target: acs }") }
    #expect(refused.contains("participants:unmute"))
    #expect(refused.contains("cannot perform 'mute'"))
    _ = try load(
        target: #"{ type: acs, connection_string: "${env:ACS_CONNECTION}", unmute_api_version: 2024-09-01-preview }"#,
        action: "{ kind: mute, target: acs }")
    let byExtension = errors { () throws(ConfigurationError) in try load(action: "{ kind: pause-recording, target: acs, by: extension }") }
    #expect(byExtension.contains("has no extension to address"))
}

@Test func badSettingsAreRefusedWithTheirPlaceAndNoSecret() {
    let missing = errors { () throws(ConfigurationError) in try load(feed: "{ type: acs, path: /cb }") }
    #expect(missing.contains("needs 'resource_id'"))
    let shortSecret = errors { () throws(ConfigurationError) in
        try load(feed: "{ type: acs, path: /cb, authentication: query-secret, secret: short }")
    }
    #expect(shortSecret.contains("at least 16 characters"))
    let badPath = errors { () throws(ConfigurationError) in try load(feed: "{ type: acs, path: cb, resource_id: x }") }
    #expect(badPath.contains("acs.yaml:3:"))
    let mixed = errors { () throws(ConfigurationError) in
        try load(feed: "{ type: acs, path: /cb, resource_id: x, secret: aaaaaaaaaaaaaaaaaaaa }")
    }
    #expect(mixed.contains("read only with 'authentication: query-secret'"))
    let badConnection = errors { () throws(ConfigurationError) in
        try load(target: #"{ type: acs, connection_string: "endpoint=ftp://x;accesskey=c2VjcmV0LXZhbHVl" }"#)
    }
    #expect(badConnection.contains("connection_string"))
    #expect(!badConnection.contains("c2VjcmV0LXZhbHVl"))
    let both = errors { () throws(ConfigurationError) in
        try load(target: #"{ type: acs, connection_string: "${env:ACS_CONNECTION}", tenant: t, client_id: c }"#)
    }
    #expect(both.contains("not both"))
    let notPreview = errors { () throws(ConfigurationError) in
        try load(target: #"{ type: acs, connection_string: "${env:ACS_CONNECTION}", unmute_api_version: 2024-09-15 }"#)
    }
    #expect(notPreview.contains("preview"))
    for text in [missing, shortSecret, badPath, mixed, badConnection, both, notPreview] {
        #expect(!text.contains("c2VjcmV0LWFjY2Vzcy1rZXktbmV2ZXItc2hvd24"))
    }
}

@Test func theRecordingIdComesFromTheFeedOrFromTheConfiguredAttribute() throws {
    let configuration = try load(target: #"{ type: acs, connection_string: "${env:ACS_CONNECTION}", recording_id_attribute: REC_ID }"#)
    let settings = try #require(configuration.targets.first?.settings as? ACSTargetSettings)
    var request = ActionRequest(
        kind: .pauseRecording, verb: .apply, target: "acs", address: .call(id: "c1"), feed: "acs",
        call: CallIdentifiers(primary: "c1"), agentExtension: nil, idempotencyKey: "k", attempt: 1, policy: "card")
    guard case .failure(let failure) = ACSTarget.operation(for: request, settings: settings) else {
        Issue.record("a pause without a recording id was sent")
        return
    }
    #expect(failure.disposition == .retryable)
    request.attributes = ["REC_ID": "rec-7", "CARD": "4111111111111111"]
    #expect(try ACSTarget.operation(for: request, settings: settings).get() == .pauseRecording(recordingID: "rec-7"))
    request.call.secondary["recordingId"] = "rec-from-event"
    #expect(try ACSTarget.operation(for: request, settings: settings).get() == .pauseRecording(recordingID: "rec-from-event"))
}
