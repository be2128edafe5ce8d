import MutewardenConfig
import MutewardenProviderKit
import MutewardenModel
import Testing

let fullExample = #"""
    feeds:
      cc:
        type: test-feed
        url: wss://cc.example/events
        rate: 50
        token: ${env:TOKEN}
        tls: {verify: false}
      backup-cc:
        type: test-feed
        url: https://backup.example
    targets:
      recorder:
        type: test-target
        password: ${env:PASS}
        confirms_by_event: true
        timeout: 750ms
        transport: http
        fail_ratio: 0.25
        hosts: [rec1.example, rec2.example]
      phone:
        type: test-target
        password: literal-password
    policies:
      card-capture:
        feeds: [cc, backup-cc]
        scope: extension
        mode: dry-run
        start:
          all:
            - state: [established, held]
            - any:
                - {attribute: PCI_STAGE, equals: 1234}
                - {attribute: PCI_STAGE, in: [card, cvv, "007"]}
                - {attribute: PAN_HINT, matches: '\d{4}'}
            - {attribute: AGENT, present: true}
            - {attribute: SUPERVISOR, absent: true}
            - {attribute: QUEUE, not_equals: test}
        stop: {attribute: PCI_STAGE, equals: done}
        max_duration: 5m
        on_timeout: keep
        actions:
          - kind: pause-recording
            target: recorder
            by: extension
            deadline: 1500ms
            retry: {initial: 50ms, max: 2s}
            fallback: [phone]
          - kind: mute
            target: phone
      defaults:
        feeds: [cc]
        start: {state: established}
        actions:
          - kind: mute
            target: phone
    logging:
      level: notice
      target: journal
      attributes: [PCI_STAGE, QUEUE]
    state:
      directory: /srv/mutewarden
      max_calls: 5000
      idle_limit: 2h
    """#

@Test func fullExampleDecodesToTheEngineConfiguration() throws {
    let configuration = try loader().load(yaml: fullExample, file: "full.yaml")
    let cardCapture = PolicyDefinition(
        name: "card-capture", feeds: ["cc", "backup-cc"],
        start: .all([
            .state([.established, .held]),
            .any([
                .attributeEquals(key: "PCI_STAGE", value: "1234"),
                .attributeIn(key: "PCI_STAGE", values: ["card", "cvv", "007"]),
                .attributeMatches(key: "PAN_HINT", pattern: #"\d{4}"#),
            ]),
            .attributePresent(key: "AGENT"),
            .attributeAbsent(key: "SUPERVISOR"),
            .attributeNotEquals(key: "QUEUE", value: "test"),
        ]),
        stop: .attributeEquals(key: "PCI_STAGE", value: "done"),
        actions: [
            ActionSpec(
                kind: .pauseRecording, target: "recorder", addressing: .agentExtension, deadline: .milliseconds(1500),
                retry: RetryPolicy(initialBackoff: .milliseconds(50), maximumBackoff: .seconds(2)), fallback: ["phone"]),
            ActionSpec(kind: .mute, target: "phone"),
        ],
        scope: .agentExtension, maxDuration: .seconds(300), onTimeout: .keep, mode: .dryRun)
    // Every default, spelled out: a change to one is a change to what operators get.
    let defaults = PolicyDefinition(
        name: "defaults", feeds: ["cc"], start: .state([.established]), stop: nil,
        actions: [
            ActionSpec(
                kind: .mute, target: "phone", addressing: .call, deadline: .seconds(2),
                retry: RetryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1)), fallback: [])
        ],
        scope: .call, maxDuration: .seconds(600), onTimeout: .resume, mode: .enforce)
    let expected = EngineConfiguration(
        policies: [cardCapture, defaults],
        targets: [
            TargetDescriptor(name: "recorder", confirmsByEvent: true),
            TargetDescriptor(name: "phone", confirmsByEvent: false),
        ],
        limits: TrackerLimits(maxCalls: 5000, idleLimit: .seconds(7200)))
    #expect(configuration.engine == expected)

    #expect(configuration.files == ["full.yaml"])
    #expect(configuration.feeds.map(\.name) == ["cc", "backup-cc"])
    #expect(configuration.feeds.map(\.type) == ["test-feed", "test-feed"])
    #expect(configuration.feeds.map(\.location.description) == ["full.yaml:2:3", "full.yaml:8:3"])
    let cc = try #require(configuration.feeds.first?.settings as? TestFeedSettings)
    #expect(cc.url == "wss://cc.example/events")
    #expect(cc.rate == 50)
    #expect(cc.token?.reveal() == "env-token")
    #expect(cc.token?.reference == "env:TOKEN")
    #expect(cc.verifyTLS == false)
    let backup = try #require(configuration.feeds.last?.settings as? TestFeedSettings)
    #expect(backup.rate == 10 && backup.token == nil && backup.verifyTLS)

    #expect(configuration.targets.map(\.name) == ["recorder", "phone"])
    let recorder = try #require(configuration.targets.first?.settings as? TestTargetSettings)
    #expect(recorder.password.reveal() == "env-password")
    #expect(recorder.timeout == .milliseconds(750))
    #expect(recorder.transport == .http)
    #expect(recorder.failRatio == 0.25)
    #expect(recorder.hosts == ["rec1.example", "rec2.example"])
    let phone = try #require(configuration.targets.last?.settings as? TestTargetSettings)
    #expect(phone.password.reference == "inline")
    #expect(phone.password.reveal() == "literal-password")

    #expect(configuration.logging.level == .notice)
    #expect(configuration.logging.target == .journal)
    #expect(configuration.logging.attributeAllowlist == ["PCI_STAGE", "QUEUE"])
    #expect(configuration.state.directory == "/srv/mutewarden")
    #expect(configuration.state.limits == TrackerLimits(maxCalls: 5000, idleLimit: .seconds(7200)))
}

@Test func sectionsThatAreLeftOutTakeTheirDefaults() throws {
    let configuration = try loader().load(yaml: "feeds: {}\n", file: "min.yaml")
    #expect(configuration.feeds.isEmpty && configuration.targets.isEmpty)
    #expect(configuration.engine == EngineConfiguration(policies: [], targets: [], limits: TrackerLimits()))
    #expect(configuration.logging.level == .info)
    #expect(configuration.logging.target == .auto)
    #expect(configuration.logging.attributeAllowlist.isEmpty)
    #expect(configuration.state.directory == "/var/lib/mutewarden")
    #expect(configuration.state.limits == TrackerLimits(maxCalls: 100_000, idleLimit: .seconds(4 * 3600)))
}

@Test func theControlSocketIsOnByDefaultInTheRuntimeDirectory() throws {
    let defaults = try loader().load(yaml: "feeds: {}\n", file: "min.yaml").control
    #expect(defaults == ControlConfiguration())
    #expect(defaults.socketPath(environment: [:]) == "/run/mutewarden/control.sock")
    #expect(defaults.socketPath(environment: ["RUNTIME_DIRECTORY": "/run/mutewarden"]) == "/run/mutewarden/control.sock")
    #expect(defaults.socketPath(environment: ["RUNTIME_DIRECTORY": "/run/a:/run/b"]) == "/run/a/control.sock")
    let configured = try loader().load(yaml: "control:\n  socket: /tmp/mw/control.sock\n", file: "c.yaml").control
    #expect(configured.socketPath(environment: ["RUNTIME_DIRECTORY": "/run/mutewarden"]) == "/tmp/mw/control.sock")
    let off = try loader().load(yaml: "control: {enabled: false}\n", file: "c.yaml").control
    #expect(off.socketPath(environment: [:]) == nil)
}

@Test(arguments: [
    ("debug", AuditSeverity.debug), ("info", .info), ("notice", .notice), ("warning", .warning), ("error", .error),
    ("critical", .critical),
])
func logLevels(name: String, severity: AuditSeverity) throws {
    let configuration = try loader().load(yaml: "logging: {level: \(name)}\n", file: "log.yaml")
    #expect(configuration.logging.level == severity)
}

@Test(arguments: [
    ("{state: established}", Condition.state([.established])),
    ("{attribute: A, equals: yes}", .attributeEquals(key: "A", value: "yes")),
    ("{attribute: A, equals: 0042}", .attributeEquals(key: "A", value: "0042")),
    ("{attribute: A, equals: ''}", .attributeEquals(key: "A", value: "")),
    ("{attribute: A, in: [1, true, x]}", .attributeIn(key: "A", values: ["1", "true", "x"])),
    ("{any: [{attribute: A, absent: true}]}", .any([.attributeAbsent(key: "A")])),
])
func conditionForms(yaml: String, expected: Condition) throws {
    let configuration = try loader().load(yaml: policy(start: yaml), file: "c.yaml")
    #expect(configuration.engine.policies.first?.start == expected)
}

@Test(arguments: [
    ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("5m", .seconds(300)), ("1h", .seconds(3600)),
    ("0s", .zero),
    (
        "007s", .seconds(7),
    ),
])
func validDurations(text: String, expected: Duration) {
    #expect(parseDuration(text) == expected)
}

@Test(arguments: ["", "10", "5 min", "-1s", "1.5h", "1d", "s", "ms", "+5s", " 5s", "5s ", "5S", "1e3s", "٣s", "99999999999999999999h"])
func invalidDurations(text: String) {
    #expect(parseDuration(text) == nil)
}

@Test func diagnosticsRenderLikeACompiler() {
    let positioned = ConfigDiagnostic(
        location: MutewardenConfig.SourceLocation(file: "/etc/mutewarden/mutewarden.yaml", line: 3, column: 5),
        message: "bad")
    let fileOnly = ConfigDiagnostic(location: MutewardenConfig.SourceLocation(file: "/etc/mutewarden/x.yaml"), message: "unreadable")
    #expect(positioned.description == "/etc/mutewarden/mutewarden.yaml:3:5: error: bad")
    #expect(fileOnly.description == "/etc/mutewarden/x.yaml: error: unreadable")
    #expect(ConfigDiagnostic(location: nil, message: "m").description == "error: m")
    #expect(ConfigurationError(diagnostics: [positioned, fileOnly]).description == "\(positioned)\n\(fileOnly)")
}

@Test func providerTypesAreListedSorted() {
    let registry = ProviderRegistry(
        feeds: [FeedProvider(type: "b") { _ in nil }, FeedProvider(type: "a") { _ in nil }],
        targets: [TargetProvider(type: "log") { _ in nil }])
    #expect(registry.feedTypes == ["a", "b"])
    #expect(registry.targetTypes == ["log"])
}

@Test func aProviderThatRefusesWithoutSayingWhyStillFailsTheLoad() {
    let registry = ProviderRegistry(feeds: [FeedProvider(type: "silent") { _ in nil }], targets: [])
    do {
        _ = try ConfigurationLoader(registry: registry, environment: [:]).load(yaml: "feeds:\n  f: {type: silent}\n", file: "s.yaml")
        Issue.record("loaded")
    } catch {
        #expect(error.diagnostics.map(\.description) == ["s.yaml:2:6: error: invalid settings in feed 'f'"])
    }
}

/// A provider with a list of servers, as real platform providers have.
@Test func nestedProviderSectionsReportUnknownKeysAndTypes() {
    struct Servers: FeedSettings {
        var hosts: [String]
        var summary: String { hosts.joined(separator: ", ") }
        func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { TestFeed(name: name) }
    }
    let registry = ProviderRegistry(
        feeds: [
            FeedProvider(type: "multi") { section in
                let servers = section.settingsList("servers") ?? []
                let hosts = servers.compactMap { $0.requiredString("host") }
                for server in servers { _ = server.int("port", in: 1...65535) }
                return Servers(hosts: hosts)
            }
        ], targets: [])
    let yaml = """
        feeds:
          f:
            type: multi
            servers:
              - {host: a.example, port: 8443}
              - {host: b.example, prot: 8443}
              - {port: 70000}
        """
    do {
        _ = try ConfigurationLoader(registry: registry, environment: [:]).load(yaml: yaml, file: "m.yaml")
        Issue.record("loaded")
    } catch {
        #expect(
            error.diagnostics.map(\.description) == [
                "m.yaml:6:27: error: unknown key 'prot' in item 2 of 'servers' in feed 'f'; expected one of: host, port (did you mean 'port'?)",
                "m.yaml:7:9: error: missing required key 'host' in item 3 of 'servers' in feed 'f'",
                "m.yaml:7:16: error: 'port' in item 3 of 'servers' in feed 'f' must be between 1 and 65535; found 70000",
            ])
    }
}
