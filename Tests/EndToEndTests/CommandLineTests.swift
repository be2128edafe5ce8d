import Foundation
import Testing

@Suite(.serialized) struct CommandLineTests {
    @Test func versionPrintsTheVersion() async throws {
        let result = try await BinaryRunner.run(["version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("mutewarden "))
    }

    @Test func theDaemonAllocatesWithJemallocInOneArena() async throws {
        // Linked is not enough: `version` checks that malloc itself resolves to jemalloc's.
        let result = try await BinaryRunner.run(["version"])
        #expect(result.stdout.contains("allocator: jemalloc 5."), "\(result.stdout)")
        #expect(result.stdout.contains(", 1 arena\n"), "\(result.stdout)")
    }

    @Test(arguments: [[], ["run"], ["check-config"], ["version"]])
    func everyCommandHasHelp(_ command: [String]) async throws {
        let result = try await BinaryRunner.run(command + ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: mutewarden"))
    }

    @Test func theDefaultConfigurationPathIsTheDocumentedOne() async throws {
        let result = try await BinaryRunner.run(["check-config", "--help"])
        #expect(result.stdout.contains("/etc/mutewarden/mutewarden.yaml"))
    }

    @Test func aBadOptionIsAUsageError() async throws {
        let result = try await BinaryRunner.run(["run", "--for", "ten seconds", "--config", "config/demo.yaml"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--for expects a duration"))
    }

    @Test(arguments: [
        "config/demo.yaml", "config/examples/acs.yaml", "config/examples/genesys.yaml", "config/examples/graph.yaml",
        "config/examples/voicenter.yaml", "config/examples/verba.yaml", "config/examples/genesys-verba.yaml",
    ])
    func checkConfigPassesEveryShippedExample(_ path: String) async throws {
        // Example credentials: a directory holding each credential the examples name.
        let credentials = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        try "example-password".write(to: credentials.appendingPathComponent("gws-password"), atomically: true, encoding: .utf8)
        try "example-voicenter-token".write(
            to: credentials.appendingPathComponent("voicenter-token"), atomically: true, encoding: .utf8)
        try "endpoint=https://example.communication.azure.com/;accesskey=ZXhhbXBsZS1hY2Nlc3Mta2V5"
            .write(to: credentials.appendingPathComponent("acs-connection-string"), atomically: true, encoding: .utf8)
        try "example-verba-api-key".write(to: credentials.appendingPathComponent("verba-api-key"), atomically: true, encoding: .utf8)
        try "example-verba-password".write(to: credentials.appendingPathComponent("verba-password"), atomically: true, encoding: .utf8)
        try "example-graph-client-secret".write(
            to: credentials.appendingPathComponent("graph-client-secret"), atomically: true, encoding: .utf8)
        let result = try await BinaryRunner.run(
            ["check-config", "--config", path], environment: ["CREDENTIALS_DIRECTORY": credentials.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("configuration OK"))
        #expect(!result.stdout.contains("example-password"))
        #expect(!result.stdout.contains("example-voicenter-token"))
        #expect(!result.stdout.contains("ZXhhbXBsZS1hY2Nlc3Mta2V5"))
        #expect(!result.stdout.contains("example-verba-api-key"))
        #expect(!result.stdout.contains("example-verba-password"))
        #expect(!result.stdout.contains("example-graph-client-secret"))
    }

    @Test func checkConfigRefusesToMuteTheAgentThroughVoicentersRecordingAPI() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mutewarden.yaml")
        try """
        feeds:
          vc: { type: voicenter, token: "${env:VC_TOKEN}" }
        targets:
          rec: { type: voicenter, monitor_url: "https://monitor1.voicenter.co" }
        policies:
          card:
            feeds: [vc]
            start: { attribute: PCI_STAGE, equals: CARD }
            actions: [{ kind: mute, target: rec }]
        """.write(to: file, atomically: true, encoding: .utf8)
        let result = try await BinaryRunner.run(
            ["check-config", "--config", file.path], environment: ["VC_TOKEN": "token-never-shown"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("mutewarden.yaml:9:37: error: target 'rec' (type voicenter) cannot perform 'mute'"))
        #expect(result.stderr.contains("not the agent's audio"))
        #expect(!result.output.contains("token-never-shown"))
    }

    @Test func everyExampleIsCovered() throws {
        let examples = try FileManager.default.contentsOfDirectory(
            atPath: BinaryRunner.packageRoot.appendingPathComponent("config/examples").path)
        #expect(
            examples.sorted() == ["acs.yaml", "genesys-verba.yaml", "genesys.yaml", "graph.yaml", "verba.yaml", "voicenter.yaml"],
            "add new examples to checkConfigPassesEveryShippedExample")
    }

    @Test func checkConfigPassesTheExampleInTheDocumentation() async throws {
        let markdown = try String(
            contentsOf: BinaryRunner.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        // The full example is the longest ```yaml block that has all five sections.
        let blocks = markdown.components(separatedBy: "```yaml\n").dropFirst().map {
            $0.components(separatedBy: "```")[0]
        }
        let example = try #require(
            blocks.filter { block in ["feeds:", "targets:", "policies:", "logging:", "state:"].allSatisfy(block.contains) }
                .max { $0.count < $1.count })
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mutewarden.yaml")
        try example.write(to: file, atomically: true, encoding: .utf8)
        let result = try await BinaryRunner.run(
            ["check-config", "--config", file.path],
            environment: ["GWS_PASSWORD": "not-used", "CREDENTIALS_DIRECTORY": directory.path])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func aBrokenConfigurationIsRefusedWithEveryErrorAndExit78() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mutewarden.yaml")
        try """
        feeds:
          sim:
            type: simulator
            call_rat: 2
        targets:
          recorder: { type: log }
        policies:
          card:
            feeds: [sim, nowhere]
            start: { attribute: PCI_STAGE, equals: CARD }
            max_duration: 10 minutes
            actions:
              - { kind: mute, target: recorder, deadline: 2s }
        """.write(to: file, atomically: true, encoding: .utf8)
        let result = try await BinaryRunner.run(["check-config", "--config", file.path])
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(file.path):4:5: error: unknown key 'call_rat'"))
        #expect(result.stderr.contains("\(file.path):9:18: error:"))
        #expect(result.stderr.contains("nowhere"))
        #expect(result.stderr.contains("\(file.path):11:19: error:"))
        #expect(result.stderr.contains("3 errors"))
        #expect(result.stdout.isEmpty)
    }

    @Test func runRefusesABadConfigurationWithExit78() async throws {
        let result = try await BinaryRunner.run(["run", "--config", "/nonexistent/mutewarden.yaml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/mutewarden.yaml"))
    }

    @Test func secretsNeverAppearInCheckConfigOutput() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A secret in an unknown key of a provider that takes none: the error must not echo it.
        let file = directory.appendingPathComponent("mutewarden.yaml")
        try """
        feeds:
          sim: { type: simulator, password: "${env:MW_TEST_SECRET}" }
        targets:
          recorder: { type: log, token: hunter2-literal-secret }
        policies:
          card:
            feeds: [sim]
            start: { attribute: PCI_STAGE, equals: CARD }
            actions: [{ kind: mute, target: recorder }]
        """.write(to: file, atomically: true, encoding: .utf8)
        let result = try await BinaryRunner.run(
            ["check-config", "--config", file.path], environment: ["MW_TEST_SECRET": "s3cr3t-value-do-not-log"])
        #expect(result.status == 78)
        #expect(!result.stderr.contains("s3cr3t-value-do-not-log"))
        #expect(!result.stderr.contains("hunter2-literal-secret"))
    }
}
