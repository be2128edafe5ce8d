import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVoicenter

private let registry = ProviderRegistry(
    feeds: [VoicenterFeedSettings.feedProvider], targets: [VoicenterTargetSettings.targetProvider])

private let environment = ["VC_TOKEN": "token-value-never-shown", "VC_PIN": "pin-value-never-shown", "VC_PW": "pw-value-never-shown"]

private let secretValues = Array(environment.values)

private let defaultTarget = "{ type: voicenter, monitor_url: https://monitor1.voicenter.co }"

private func load(feed: String, target: String = defaultTarget, action: String = "{ kind: pause-recording, target: rec }")
    throws(ConfigurationError) -> DaemonConfiguration
{
    try ConfigurationLoader(registry: registry, environment: environment).load(
        yaml: """
            feeds:
              vc: \(feed)
            targets:
              rec: \(target)
            policies:
              card:
                feeds: [vc]
                start: { attribute: PCI_STAGE, equals: CARD }
                actions: [\(action)]
            """, file: "vc.yaml")
}

private let tokenFeed = #"{ type: voicenter, token: "${env:VC_TOKEN}" }"#

/// `file:line:column` of `needle` in the feed's (line 2) or the target's (line 4) text.
private func location(_ needle: String, in text: String, line: Int = 2) -> String {
    let offset = text.distance(from: text.startIndex, to: text.range(of: needle)!.lowerBound)
    return "vc.yaml:\(line):\(7 + (line == 2 ? 0 : 1) + offset): error:"
}

@Test func aTokenFeedDecodesWithTheDocumentedDefaults() throws {
    let configuration = try load(feed: tokenFeed)
    let settings = try #require(configuration.feeds.first?.settings as? VoicenterFeedSettings)
    #expect(settings.loginURL == "https://loginapi.voicenter.co.il/monitorAPI")
    #expect(settings.credentials == .token(Secret(reference: "env:VC_TOKEN", value: "token-value-never-shown")))
    #expect(settings.servers == VoicenterFeedSettings.defaultServers)
    #expect(settings.socketIOVersion == .v3)
    #expect(settings.keepalive == .seconds(60))
    #expect(settings.resyncInterval == .seconds(300))
    #expect(settings.extensionField == .extenUser)
    #expect(settings.maxConnections == 2)
    #expect(settings.timeout == .seconds(10))
    #expect(settings.connectTimeout == .seconds(5))
    #expect(settings.connector == .unavailable)
    #expect(settings.summary.contains("this build has no socket.io client"))
    for value in secretValues { #expect(!settings.summary.contains(value)) }
    let target = try #require(configuration.targets.first?.settings as? VoicenterTargetSettings)
    #expect(target.muteURL == "https://monitor1.voicenter.co/api/MuteUnmuteCalls")
    #expect(target.method == .postJSON)
    #expect(target.confirmsByEvent)
    #expect(target.maxConnections == 8)
    #expect(configuration.engine.targets.first { $0.name == "rec" }?.confirmsByEvent == true)
}

@Test func everyFeedKeyIsRead() throws {
    let feed = """
        { type: voicenter, login_url: "http://127.0.0.1:9/monitorAPI/", login: account, username: ops, password: "${env:VC_PW}", \
        servers: [monitor9.voicenter.co, "http://127.0.0.1:8"], socketio_version: auto, keepalive: 30s, resync_interval: 2m, \
        extension_field: number, max_connections: 3, timeout: 4s, connect_timeout: 2s, reconnect_max: 9s, tls: { insecure: true } }
        """
    let settings = try #require(try load(feed: feed).feeds.first?.settings as? VoicenterFeedSettings)
    #expect(settings.loginURL == "http://127.0.0.1:9/monitorAPI")
    #expect(settings.credentials == .account(username: "ops", password: Secret(reference: "env:VC_PW", value: "pw-value-never-shown")))
    #expect(settings.servers == ["https://monitor9.voicenter.co", "http://127.0.0.1:8"])
    #expect(settings.socketIOVersion == .auto)
    #expect(settings.keepalive == .seconds(30))
    #expect(settings.resyncInterval == .seconds(120))
    #expect(settings.extensionField == .number)
    #expect(settings.maxConnections == 3)
    #expect(settings.timeout == .seconds(4))
    #expect(settings.connectTimeout == .seconds(2))
    #expect(settings.reconnect.maximumDelay == .seconds(9))
    #expect(settings.tls.insecure)
    #expect(settings.summary.contains("TLS verification OFF"))
    #expect(settings.coreConfiguration(feed: "vc").silenceLimit == .seconds(60))
}

@Test func aUserLoginTakesAnEmailAndAPIN() throws {
    let settings = try #require(
        try load(feed: #"{ type: voicenter, login: user, email: a@example.com, pin: "${env:VC_PIN}" }"#).feeds.first?.settings
            as? VoicenterFeedSettings)
    #expect(settings.credentials == .user(email: "a@example.com", pin: Secret(reference: "env:VC_PIN", value: "pin-value-never-shown")))
    #expect(!settings.summary.contains("pin-value-never-shown"))
}

@Test(arguments: [
    (#"{ type: voicenter }"#, "{", "'login: token' needs 'token'"),
    (#"{ type: voicenter, login: user, email: a@b.c }"#, "user", "'login: user' needs 'pin'"),
    (#"{ type: voicenter, login: account, password: "${env:VC_PW}" }"#, "account", "'login: account' needs 'username'"),
    (#"{ type: voicenter, login: sso, token: "${env:VC_TOKEN}" }"#, "sso", "expected one of: token, user, account"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", pin: "${env:VC_PIN}" }"#, "\"${env:VC_PIN}\"", "'pin' is read only with 'login: user'"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", login_url: loginapi.voicenter.co.il }"#, "loginapi", "must start with https://"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", login_url: "https://x/?a=1" }"#, "\"https", "without a query"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", servers: ["ws://m1"] }"#, "[", "'ws://m1' is not a server name"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", socketio_version: 5 }"#, "5", "expected one of: 3, 4, auto"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", keepalive: 1h }"#, "1h", "between 1s and 10m"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", resync_interval: 1s }"#, "1s", "between 10s and 24h"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", extension_field: sip }"#, "sip", "expected one of: extenUser, number"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", max_connections: 0 }"#, "0", "between 1 and 64"),
    (#"{ type: voicenter, token: "${env:VC_TOKEN}", keepalive_interval: 5s }"#, "keepalive_interval", "unknown key 'keepalive_interval'"),
])
func badFeedSettingsAreRefusedWithTheirLocation(_ feed: String, _ at: String, _ message: String) {
    #expect {
        _ = try load(feed: feed)
    } throws: { error in
        let text = "\(error)"
        let expected = location(at, in: feed)
        let found = text.contains(expected) && text.contains(message) && secretValues.allSatisfy { !text.contains($0) }
        if !found { print("expected \(expected) \(message) in:\n\(text)") }
        return found
    }
}

@Test func everyTargetKeyIsRead() throws {
    let target = """
        { type: voicenter, mute_url: "https://monapisec.voicenter.co.il/Comet/API/MuteUnmuteCalls", method: get, \
        confirm_by_event: false, max_connections: 2, timeout: 3s, connect_timeout: 1s, tls: { ca_file: /etc/ssl/vc.pem } }
        """
    let configuration = try load(feed: tokenFeed, target: target)
    let settings = try #require(configuration.targets.first?.settings as? VoicenterTargetSettings)
    #expect(settings.muteURL == "https://monapisec.voicenter.co.il/Comet/API/MuteUnmuteCalls")
    #expect(settings.method == .get)
    #expect(!settings.confirmsByEvent)
    #expect(settings.maxConnections == 2)
    #expect(settings.timeout == .seconds(3))
    #expect(settings.connectTimeout == .seconds(1))
    #expect(settings.tls.caBundlePath == "/etc/ssl/vc.pem")
    #expect(configuration.engine.targets.first { $0.name == "rec" }?.confirmsByEvent == false)
    #expect(settings.summary.contains("by GET"))
}

@Test(arguments: [
    ("{ type: voicenter }", "{", "missing required key 'monitor_url'"),
    ("{ type: voicenter, monitor_url: https://m1, mute_url: https://m1/x }", "https://m1/x", "not both"),
    ("{ type: voicenter, monitor_url: monitor1.voicenter.co }", "monitor1", "must start with https://"),
    ("{ type: voicenter, monitor_url: https://m1, method: put }", "put", "expected one of: post-json, get"),
    ("{ type: voicenter, monitor_url: https://m1, confirm_by_event: maybe }", "maybe", "confirm_by_event"),
])
func badTargetSettingsAreRefusedWithTheirLocation(_ target: String, _ at: String, _ message: String) {
    #expect {
        _ = try load(feed: tokenFeed, target: target)
    } throws: { error in
        let text = "\(error)"
        let expected = location(at, in: target, line: 4)
        let found = text.contains(expected) && text.contains(message)
        if !found { print("expected \(expected) \(message) in:\n\(text)") }
        return found
    }
}

@Test func checkConfigRefusesMuteOnThisTargetAndSaysWhy() {
    #expect {
        _ = try load(feed: tokenFeed, action: "{ kind: mute, target: rec }")
    } throws: { error in
        let text = "\(error)"
        return text.contains("vc.yaml:9:") && text.contains("target 'rec' (type voicenter) cannot perform 'mute'")
            && text.contains("stops the call *recording*, not the agent's audio")
    }
    // As a fallback too.
    #expect {
        _ = try ConfigurationLoader(registry: registry, environment: environment).load(
            yaml: """
                feeds:
                  vc: \(tokenFeed)
                targets:
                  rec: \(defaultTarget)
                  other: \(defaultTarget)
                policies:
                  card:
                    feeds: [vc]
                    start: { attribute: PCI_STAGE, equals: CARD }
                    actions: [{ kind: mute, target: other, fallback: [rec], by: extension }]
                """, file: "vc.yaml")
    } throws: { error in
        "\(error)".contains("target 'rec' (type voicenter) cannot perform 'mute' by extension")
    }
    // Pausing the recording, by call or by extension, is what it does.
    #expect(throws: Never.self) { try load(feed: tokenFeed, action: "{ kind: pause-recording, target: rec, by: extension }") }
}
