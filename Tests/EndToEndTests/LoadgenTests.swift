import Foundation
import MutewardenTesting
import Testing

/// mutewarden-loadgen against the real daemon, briefly and at a low rate: the harness behind
/// `make bench` works end to end and the daemon misses and repeats nothing. Nothing here is
/// timed: latency figures belong to the benchmark, on a release build and a quiet machine.
@Suite(.serialized) struct LoadgenTests {
    static var loadgen: URL { BinaryRunner.binary.deletingLastPathComponent().appendingPathComponent("mutewarden-loadgen") }

    func run(_ arguments: [String]) async throws -> [String: Any] {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("loadgen-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try await runProgram(
            LoadgenTests.loadgen.path, arguments + ["--output", output.path, "--quiet"], timeout: .seconds(120))
        let data = try #require(
            FileManager.default.contents(atPath: output.path), "no report (\(result.exit)): \(result.output.suffix(2000))")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test(arguments: ["long-polling", "websocket"])
    func theDaemonSendsEveryActionOnce(over transport: String) async throws {
        let report = try await run([
            "--daemon", BinaryRunner.binary.path, "--transport", transport, "--rate", "300", "--calls", "400",
            "--warmup", "1", "--duration", "4", "--grace", "3",
        ])
        #expect(report["error"] == nil)
        let actions = try #require(report["actions"] as? [String: Int])
        #expect(actions["expected", default: 0] > 0)
        #expect(actions["received"] == actions["expected"])
        #expect(actions["missed"] == 0)
        #expect(actions["duplicated"] == 0)
        #expect(actions["unexpected"] == 0)
        let latency = try #require(report["latency_ms"] as? [String: Double])
        for key in ["p50", "p90", "p99", "p999", "max"] { #expect(latency[key] != nil) }
        let daemon = try #require(report["daemon"] as? [String: Any])
        for key in ["cpu_seconds", "peak_rss_mib", "memory_per_call_bytes", "rss_curve"] { #expect(daemon[key] != nil) }
        #expect((report["events_per_second"] as? Double ?? 0) > 0)
        let server = try #require(report["server"] as? [String: Int])
        #expect(server["resyncs", default: 0] >= 1)
        #expect(server["csrf_missing"] == 0)
        if transport == "websocket" {
            #expect(server["web_socket_upgrades_with_credentials", default: 0] >= 1)
            #expect(server["poll_replies"] == 0)
        }
    }

    /// The generator alone, with its built-in consumer: what `make bench` reports as headroom, on
    /// each transport.
    @Test(arguments: ["long-polling", "websocket"])
    func theSinkReadsTheStream(_ transport: String) async throws {
        let report = try await run([
            "--sink", "--transport", transport, "--rate", "2000", "--calls", "1000", "--warmup", "1", "--duration", "2",
            "--grace", "0",
        ])
        #expect(report["error"] == nil)
        #expect(report["transport"] as? String == transport)
        #expect((report["events_written"] as? Int ?? 0) > 0)
        let server = try #require(report["server"] as? [String: Int])
        if transport == "websocket" {
            #expect(server["web_socket_upgrades_with_credentials", default: 0] >= 1)
            #expect(server["poll_replies"] == 0)
        } else {
            #expect(server["poll_replies", default: 0] > 0)
        }
    }

    /// The daemon's voicenter feed and target against the generator's Voicenter side, on each
    /// Engine.IO version: every MuteUnmuteCalls expected comes once, those of calls made while
    /// their extension's window was open included, and so do the undos of every call a window
    /// covered.
    @Test(
        .enabled("once this build's voicenter feed has a socket.io client") { try await LoadgenTests.voicenterFeedConnects() },
        arguments: ["3", "4"])
    func theDaemonCoversEveryCallOfTheExtensionOnVoicenter(engineIO: String) async throws {
        let report = try await run([
            "--platform", "voicenter", "--eio", engineIO, "--daemon", BinaryRunner.binary.path, "--rate", "300", "--calls", "400",
            "--warmup", "1", "--duration", "6", "--grace", "3",
        ])
        #expect(report["error"] == nil)
        let actions = try #require(report["actions"] as? [String: Int])
        #expect(actions["expected", default: 0] > 0)
        #expect(actions["received"] == actions["expected"])
        #expect(actions["missed"] == 0)
        #expect(actions["duplicated"] == 0)
        #expect(actions["unexpected"] == 0)
        let newCalls = try #require(report["new_call_latency_ms"] as? [String: Double])
        #expect(newCalls["count", default: 0] > 0)
        let server = try #require(report["server"] as? [String: Any])
        #expect(server["resyncs"] as? Int ?? 0 >= 1)
        let voicenter = try #require(server["voicenter"] as? [String: Int])
        #expect(voicenter["eio\(engineIO)_sessions", default: 0] >= 1)
        #expect(voicenter["malformed_packets"] == 0)
    }

    /// Whether this build's voicenter feed can connect: check-config's summary of the feed says
    /// when the build has no socket.io client for it. A configuration it refuses is an error.
    static func voicenterFeedConnects() async throws -> Bool {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("voicenter.yaml")
        try """
        feeds:
          vc:
            type: voicenter
            token: ${env:MW_TEST_VOICENTER_TOKEN}
        targets:
          recorder:
            type: log
        policies:
          card:
            feeds: [vc]
            start: { attribute: PCI_STAGE, equals: CARD }
            actions:
              - { kind: pause-recording, target: recorder }
        state:
          directory: \(directory.appendingPathComponent("state").path)
        """.write(to: config, atomically: true, encoding: .utf8)
        let checked = try await BinaryRunner.run(
            ["check-config", "--config", config.path], environment: ["MW_TEST_VOICENTER_TOKEN": "test-token"])
        guard checked.status == 0 else { throw TestFailure("check-config refused a voicenter feed: \(checked.output)") }
        return !checked.output.contains("no socket.io client")
    }

    /// The Voicenter side with its built-in consumer: the REST login, an Engine.IO 4 session with
    /// the token in the query, the snapshot, then the stream, one frame per event.
    @Test func theSinkReadsVoicentersStream() async throws {
        let report = try await run([
            "--platform", "voicenter", "--sink", "--rate", "2000", "--calls", "1000", "--warmup", "1", "--duration", "2",
            "--grace", "0",
        ])
        #expect(report["error"] == nil)
        #expect(report["platform"] as? String == "voicenter")
        #expect(report["transport"] as? String == "socket.io")
        #expect(report["extensions"] as? Int == 800)
        #expect((report["events_written"] as? Int ?? 0) > 0)
        let server = try #require(report["server"] as? [String: Any])
        #expect(server["logins"] as? Int == 1)
        #expect(server["resyncs"] as? Int == 1)
        let voicenter = try #require(server["voicenter"] as? [String: Int])
        #expect(voicenter["eio4_sessions"] == 1)
        #expect(voicenter["pongs_received"] == voicenter["pings_sent"])
        #expect(voicenter["malformed_packets"] == 0)
    }

    /// The floor consumer logs in as the daemon does and sends every action once, so its latency
    /// is a fair floor for the daemon's; over websocket it upgrades with the session cookie and the
    /// Basic credentials, as the daemon does.
    @Test(arguments: ["long-polling", "websocket"])
    func theReflexConsumerSendsEveryActionOnce(_ transport: String) async throws {
        let report = try await run([
            "--reflex", "--transport", transport, "--rate", "500", "--calls", "400", "--warmup", "1", "--duration", "3",
            "--grace", "2",
        ])
        #expect(report["error"] == nil)
        #expect(report["reflex"] as? Bool == true)
        #expect(report["transport"] as? String == transport)
        let actions = try #require(report["actions"] as? [String: Int])
        #expect(actions["expected", default: 0] > 0)
        #expect(actions["received"] == actions["expected"])
        #expect(actions["duplicated"] == 0)
        #expect(actions["unexpected"] == 0)
        let server = try #require(report["server"] as? [String: Int])
        #expect(server["csrf_missing"] == 0)
        #expect(server["logins", default: 0] == 1)
        if transport == "websocket" {
            #expect(server["web_socket_upgrades_with_credentials"] == 1)
            #expect(server["poll_replies"] == 0)
            #expect(server["web_socket_frames", default: 0] > 0)
        }
    }
}
