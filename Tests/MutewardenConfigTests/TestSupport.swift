import Foundation
import MutewardenConfig
import MutewardenProviderKit
import MutewardenModel
import Testing

// Test-only providers: the loader knows nothing about provider keys, so these exercise every
// ConfigSection accessor and the unknown-key check inside provider settings.

struct TestFeedSettings: FeedSettings {
    var url: String
    var rate: Int
    var token: Secret?
    var verifyTLS: Bool

    var summary: String { "url \(url), rate \(rate), token \(token.map(String.init(describing:)) ?? "none")" }

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { TestFeed(name: name) }
}

struct TestFeed: CallFeed {
    let name: String
    func run(delivering sink: any CallUpdateSink) async throws {}
}

enum TestTransport: String, CaseIterable, Sendable {
    case http, https
}

struct TestTargetSettings: TargetSettings {
    var password: Secret
    var confirmsByEvent: Bool
    var timeout: Duration
    var transport: TestTransport
    var failRatio: Double
    var hosts: [String]

    var summary: String { "password \(password), \(transport.rawValue), hosts \(hosts)" }

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        TestTarget(descriptor: TargetDescriptor(name: name, confirmsByEvent: confirmsByEvent))
    }
}

struct TestTarget: ActionTarget {
    let descriptor: TargetDescriptor
    func perform(_ request: ActionRequest) async -> ActionAttemptResult { .accepted }
}

let testRegistry = ProviderRegistry(
    feeds: [
        FeedProvider(type: "test-feed") { section in
            let url = section.requiredString("url")
            let rate = section.int("rate", in: 1...1000) ?? 10
            let token = section.secret("token")
            let verify = section.settings("tls")?.bool("verify") ?? true
            guard let url else { return nil }
            guard url.hasPrefix("https://") || url.hasPrefix("wss://") else {
                section.error("'url' must use https or wss", key: "url")
                return nil
            }
            return TestFeedSettings(url: url, rate: rate, token: token, verifyTLS: verify)
        }
    ],
    targets: [
        TargetProvider(type: "test-target") { section in
            let password = section.requiredSecret("password")
            let confirms = section.bool("confirms_by_event") ?? false
            let timeout = section.duration("timeout") ?? .seconds(5)
            let transport = section.choice("transport", TestTransport.self) ?? .https
            let failRatio = section.double("fail_ratio", in: 0...1) ?? 0
            let hosts = section.stringList("hosts") ?? []
            guard let password else { return nil }
            return TestTargetSettings(
                password: password, confirmsByEvent: confirms, timeout: timeout, transport: transport,
                failRatio: failRatio, hosts: hosts)
        }
    ])

let testEnvironment = ["PASS": "env-password", "TOKEN": "env-token"]

func loader(_ environment: [String: String] = testEnvironment) -> ConfigurationLoader {
    ConfigurationLoader(registry: testRegistry, environment: environment)
}

/// The diagnostics of a configuration expected to be invalid; records an issue if it loads.
func diagnostics(
    of yaml: String, environment: [String: String] = testEnvironment, sourceLocation: Testing.SourceLocation = #_sourceLocation
) -> [ConfigDiagnostic] {
    do {
        _ = try loader(environment).load(yaml: yaml, file: "test.yaml")
        Issue.record("configuration loaded but should not have", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics
    }
}

/// The diagnostics of a configuration file expected to be invalid.
func diagnostics(ofFile path: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
    do {
        _ = try loader().load(path: path)
        Issue.record("configuration loaded but should not have", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.diagnostics.map(\.description)
    }
}

/// A scratch directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("mutewarden-config-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func write(_ text: String, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Feeds `f` and targets `t` and `backup`: 11 lines, so a body appended to it starts on line 12.
let header = """
    feeds:
      f:
        type: test-feed
        url: https://cc.example
    targets:
      t:
        type: test-target
        password: ${env:PASS}
      backup:
        type: test-target
        password: ${env:PASS}

    """

/// `header`, then policy `p` whose body starts on line 14 at column 5.
func policy(_ body: String) -> String {
    header + "policies:\n  p:\n" + body
}

/// A policy whose `start` value is written at line 15, column 12.
func policy(start: String) -> String {
    policy(
        """
            feeds: [f]
            start: \(start)
            actions:
              - kind: mute
                target: t
        """)
}

/// A policy with one action whose body starts at line 17, column 9 (after `      - `).
func policy(action: String) -> String {
    policy(
        """
            feeds: [f]
            start: {attribute: PCI_STAGE, equals: card}
            actions:
              - \(action)
        """)
}
