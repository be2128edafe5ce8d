import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting

@testable import MutewardenACS

/// How the daemon under test is configured against the fake.
struct ACSDaemonSetup: Sendable {
    enum Credential: Sendable { case accessKey, entra }
    var credential = Credential.accessKey
    var kind = "pause-recording"
    var unmuteAPIVersion: String?
    var quietPeriod = "1s"
    var deadline = "3s"

    /// The configuration's text for a daemon whose ingress listens on `port`.
    func yaml(fake: FakeACS, port: Int, directory: String) -> String {
        let target: String
        switch credential {
        case .accessKey:
            target = """
                    connection_string: "${env:ACS_CONNECTION}"
                """
        case .entra:
            target = """
                    endpoint: \(fake.baseURL)
                    tenant: \(FakeACS.tenant)
                    client_id: \(FakeACS.clientID)
                    client_secret: "${env:ACS_CLIENT_SECRET}"
                    authority_url: \(fake.baseURL)
                """
        }
        return """
            ingress:
              address: 127.0.0.1
              port: \(port)
              tls: false
            feeds:
              acs:
                type: acs
                path: /callbacks/acs
                resource_id: \(FakeACS.resourceID)
                openid_configuration: \(fake.openIDConfigurationURL)
                agent_kinds: [communicationUser]
                keying_quiet_period: \(quietPeriod)
            targets:
              acs:
                type: acs
            \(target)
            \(unmuteAPIVersion.map { "    unmute_api_version: \($0)" } ?? "")
            policies:
              keying:
                feeds: [acs]
                start: { attribute: dtmf, equals: keying }
                stop: { attribute: dtmf, absent: true }
                actions: [{ kind: \(kind), target: acs, by: call, deadline: \(deadline) }]
            logging:
              attributes: [dtmf]
            state:
              directory: \(directory)
            """
    }
}

/// The real daemon, in this process, with the `acs` feed on its ingress and the `acs` target on
/// the fake, until `finish()`.
final class ACSRunningDaemon: Sendable {
    let daemon: Daemon
    let logs: InMemoryLogStore
    let task: Task<Int32, any Error>
    let signals: AsyncStream<DaemonSignal>.Continuation
    let directory: URL
    let port: Int
    /// What the next reload reads: the test may change it before sending `.reload`.
    let text: Locked<String>

    var callbackURL: String { "http://127.0.0.1:\(port)/callbacks/acs" }

    static func loader(_ fake: FakeACS) -> ConfigurationLoader {
        ConfigurationLoader(
            registry: ProviderRegistry(feeds: [ACSFeedSettings.feedProvider], targets: [ACSTargetSettings.targetProvider]),
            environment: ["ACS_CONNECTION": fake.connectionString, "ACS_CLIENT_SECRET": FakeACS.clientSecret])
    }

    init(fake: FakeACS, setup: ACSDaemonSetup, port given: Int? = nil) throws {
        port = try given ?? freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-acs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let loader = Self.loader(fake)
        let text = Locked(setup.yaml(fake: fake, port: port, directory: directory.path))
        self.text = text
        let configuration = try loader.load(yaml: text.withLock { $0 }, file: "acs.yaml")
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        logs = handler.store
        daemon = try Daemon(
            configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler },
            reloader: { () throws(ConfigurationError) -> DaemonConfiguration in
                try loader.load(yaml: text.withLock { $0 }, file: "acs.yaml")
            })
        let (stream, continuation) = AsyncStream<DaemonSignal>.makeStream()
        signals = continuation
        task = Task { [daemon] in try await daemon.run(signals: stream) }
    }

    func lines() -> [String] { logs.lines() }

    func waitForLine(_ fragments: String..., timeout: Duration = .seconds(20)) async -> Bool {
        await waitUntil(timeout: timeout) { self.lines().contains { line in fragments.allSatisfy(line.contains) } }
    }

    func count(_ fragments: String...) -> Int { lines().filter { line in fragments.allSatisfy(line.contains) }.count }

    func feedUp() async -> Bool { await waitForLine("audit=feed.up", "feed=acs") }

    func finish() async throws -> Int32 {
        signals.yield(.terminate)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await task.value
    }
}
