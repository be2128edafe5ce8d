import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenIngress
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenSimulator
import MutewardenTesting
import Synchronization
import Testing

/// The metrics listener of a running daemon, scraped and parsed by the reference Prometheus client.
@Suite struct MetricsTests {
    /// The rows of docs/operations.md's metrics table: name, type and label names.
    struct DocumentedMetric: Hashable {
        var name: String
        var type: String
        var labels: Set<String>
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func documentedMetrics() throws -> [DocumentedMetric] {
        let markdown = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        return markdown.split(separator: "\n").compactMap { line -> DocumentedMetric? in
            guard line.hasPrefix("| `mutewarden_") else { return nil }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3 else { return nil }
            let labels = cells[2] == "none" ? [] : cells[2].split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
            return DocumentedMetric(name: cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")), type: cells[1], labels: Set(labels))
        }
    }

    @Test func theDemoIsScrapedWithEveryDocumentedMetricAndItsValuesMove() async throws {
        var configuration = try ConfigurationLoader(
            registry: ProviderRegistry(feeds: [SimulatorSettings.provider], targets: [LogTargetSettings.provider])
        ).load(path: Self.root.appendingPathComponent("config/demo.yaml").path)
        configuration.state.directory = temporaryStateDirectory()
        configuration.metrics = .loopback(port: try freePort())
        try await withDaemon(configuration) { daemon, url in
            let first = try await PrometheusScrape.fetch(url)
            #expect(first.status == 200)
            #expect(first.contentType == "text/plain; version=0.0.4; charset=utf-8")
            // The demo opens windows within seconds; flaky-mute fails every attempt (a control
            // failure), and its fallback confirms.
            let later = try await eventually("the demo's metrics to move", timeout: .seconds(60), every: .milliseconds(250)) {
                () async throws -> PrometheusScrape? in
                let scrape = try await PrometheusScrape.fetch(url)
                let moved =
                    scrape.value("mutewarden_events_total", ["feed": "sim"]) > first.value("mutewarden_events_total", ["feed": "sim"])
                    && scrape.value("mutewarden_windows_opened_total", ["feed": "sim"]) > 0
                    && scrape.value("mutewarden_actions_total", ["result": "confirmed", "target": "recorder"]) > 0
                    && scrape.value("mutewarden_actions_total", ["result": "confirmed", "target": "backup-mute"]) > 0
                    && scrape.value("mutewarden_actions_total", ["result": "failed", "target": "flaky-mute"]) > 0
                    && scrape.value("mutewarden_control_failures_total", ["target": "flaky-mute"]) > 0
                    && scrape.value("mutewarden_time_to_protection_seconds_count", ["policy": "pause-recording-during-card"]) > 0
                return moved ? scrape : nil
            }
            // Names, types and label names exactly as documented, and nothing undocumented.
            let documented = try Self.documentedMetrics()
            #expect(documented.count >= 9)
            let scraped = later.families.filter { $0.name.hasPrefix("mutewarden_") }.map { family in
                DocumentedMetric(
                    name: family.type == "counter" ? family.name + "_total" : family.name, type: family.type,
                    labels: Set(family.samples.flatMap(\.labels.keys)).subtracting(["le"]))
            }
            #expect(Set(scraped) == Set(documented))
            #expect(later.value("mutewarden_feed_up", ["feed": "sim"]) == 1)
            #expect(later.family("mutewarden_engine_queue_depth")?.samples.count == 1)
            #expect(later.family("mutewarden_windows_open")?.samples.count == 1)
            // Time to protection: a histogram in seconds, its buckets cumulative up to +Inf.
            let buckets = later.families.flatMap(\.samples).filter {
                $0.name == "mutewarden_time_to_protection_seconds_bucket" && $0.labels["policy"] == "pause-recording-during-card"
                    && $0.labels["target"] == "recorder"
            }
            #expect(buckets.last?.labels["le"] == "+Inf")
            #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.value <= $1.value })
            // Each confirmation is matched to its own window: only the policies' own targets appear.
            let pairs = Set(
                later.families.flatMap(\.samples).filter { $0.name == "mutewarden_time_to_protection_seconds_count" }.map {
                    "\($0.labels["policy"] ?? "")/\($0.labels["target"] ?? "")"
                })
            #expect(
                pairs.isSubset(of: [
                    "pause-recording-during-card/recorder", "mute-agent-during-card/flaky-mute", "mute-agent-during-card/backup-mute",
                ]), "\(pairs)")
            #expect(daemon.snapshot.statistics.eventsProcessed > 0)
        }
    }

    @Test func timeToProtectionRunsFromTheWindowsOpeningToTheConfirmation() async throws {
        let feed = ScriptedFeed(script: [
            CallUpdate(
                feed: "desk", ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound, state: .established,
                attributes: ["PCI_STAGE": "CARD"])
        ])
        var configuration = scriptedConfiguration(
            feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here), latency: .milliseconds(300),
            deadline: .seconds(10))
        configuration.metrics = .loopback(port: try freePort())
        try await withDaemon(configuration) { _, url in
            let scrape = try await eventually("the confirmation", timeout: .seconds(30), every: .milliseconds(50)) {
                () async throws -> PrometheusScrape? in
                let scrape = try await PrometheusScrape.fetch(url)
                return scrape.value("mutewarden_time_to_protection_seconds_count", ["policy": "card", "target": "recorder"]) == 1 ? scrape : nil
            }
            // The attempt takes the target's 300 ms: never in a lower bucket, and in the sum.
            let labels = ["policy": "card", "target": "recorder"]
            #expect(scrape.value("mutewarden_time_to_protection_seconds_sum", labels) >= 0.3)
            #expect(scrape.value("mutewarden_time_to_protection_seconds_bucket", labels.merging(["le": "0.25"]) { $1 }) == 0)
            #expect(scrape.value("mutewarden_time_to_protection_seconds_bucket", labels.merging(["le": "+Inf"]) { $1 }) == 1)
            #expect(scrape.value("mutewarden_windows_opened_total", ["policy": "card", "feed": "desk"]) == 1)
            #expect(scrape.value("mutewarden_actions_total", ["target": "recorder", "action": "pause-recording", "result": "confirmed"]) == 1)
            #expect(scrape.value("mutewarden_windows_open") == 1)
        }
    }

    @Test func aFeedGoingDownShowsAsDown() async throws {
        let feed = SwitchableFeed()
        var configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "switchable", settings: feed, location: here))
        configuration.metrics = .loopback(port: try freePort())
        try await withDaemon(configuration) { _, url in
            try await eventually("the feed to show as up", timeout: .seconds(30), every: .milliseconds(50)) { () async throws -> Bool? in
                let scrape = try await PrometheusScrape.fetch(url)
                return scrape.value("mutewarden_feed_up", ["feed": "desk"]) == 1 && scrape.value("mutewarden_events_total", ["feed": "desk"]) == 1
                    ? true : nil
            }
            feed.down.store(true, ordering: .releasing)
            try await eventually("the feed to show as down", timeout: .seconds(30), every: .milliseconds(50)) { () async throws -> Bool? in
                try await PrometheusScrape.fetch(url).value("mutewarden_feed_up", ["feed": "desk"]) == 0 ? true : nil
            }
        }
    }

    /// A card number in a call's attributes, as its call id and in every error the platform
    /// returns reaches the records (masked) but never the scrape: labels are configuration names.
    @Test func aCardNumberNeverReachesTheScrape() async throws {
        let pan = "4111111111111111"
        let feed = ScriptedFeed(script: [
            CallUpdate(
                feed: "desk", ids: CallIdentifiers(primary: "4012888888881881"), agentExtension: "4111111111111111",
                direction: .inbound, state: .established, attributes: ["PCI_STAGE": "CARD", "CardNumber": pan, pan: pan])
        ])
        let target = CardEchoTarget()
        var configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here))
        configuration.targets = [TargetConfiguration(name: "recorder", type: "card-echo", settings: target, location: here)]
        configuration.metrics = .loopback(port: try freePort())
        try await withDaemon(configuration) { _, url in
            let scrape = try await eventually("the control failure to be counted", timeout: .seconds(30), every: .milliseconds(100)) {
                () async throws -> PrometheusScrape? in
                let scrape = try await PrometheusScrape.fetch(url)
                return scrape.value("mutewarden_control_failures_total", ["target": "recorder", "policy": "card"]) >= 1 ? scrape : nil
            }
            #expect(scrape.value("mutewarden_actions_total", ["target": "recorder", "result": "retried"]) >= 1)
            #expect(target.attempts.load(ordering: .relaxed) >= 1)
            for forbidden in [pan, "4111 1111", "4012888888881881", "CardNumber", "declined"] {
                #expect(!scrape.text.contains(forbidden), "\(forbidden) in the scrape")
            }
            #expect(!PANMasker.containsPAN(scrape.text))
        }
    }

    @Test func theListenerRefusesWhatAScraperNeverSends() async throws {
        let feed = ScriptedFeed(script: [])
        var configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here))
        configuration.metrics = .loopback(port: try freePort(), path: "/scrape")
        try await withDaemon(configuration) { daemon, _ in
            let port = try #require(daemon.metricsPort)
            #expect(try await PrometheusScrape.status(port: port, method: "GET", path: "/scrape") == 200)
            #expect(try await PrometheusScrape.status(port: port, method: "POST", path: "/scrape", body: "{}") == 405)
            #expect(try await PrometheusScrape.status(port: port, method: "PUT", path: "/scrape", body: "x") == 405)
            #expect(try await PrometheusScrape.status(port: port, method: "GET", path: "/metrics") == 404)
            #expect(try await PrometheusScrape.status(port: port, method: "GET", path: "/scrape/../etc") == 404)
            // A body is refused by its declared length, before any of it is read.
            #expect(try await PrometheusScrape.status(port: port, method: "GET", path: "/scrape", body: "x") == 413)
            // A head over the cap gets no answer at all.
            let oversized = try await PrometheusScrape.status(
                port: port, method: "GET", path: "/scrape", headers: ["X-Padding": String(repeating: "a", count: 8192)])
            #expect(oversized != 200)
            // Still serving after all that.
            #expect(try await PrometheusScrape.status(port: port, method: "GET", path: "/scrape") == 200)
        }
    }

    /// A metrics port already taken is an error on the record, with the reason, and calls are
    /// still protected.
    @Test func aListenerThatCannotBindIsAnErrorNotAStop() async throws {
        let holder = try IngressServer(
            configuration: IngressConfiguration(address: "127.0.0.1", port: 0, security: .plain(behindProxy: false)),
            report: { _, _, _ in })
        defer { holder.stop() }
        let feed = ScriptedFeed(script: [
            CallUpdate(
                feed: "desk", ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound, state: .established,
                attributes: ["PCI_STAGE": "CARD"])
        ])
        var configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here))
        configuration.metrics = .loopback(port: holder.port)
        let logs = try await withDaemon(configuration, url: false) { daemon, _ in
            try await eventually("the window to open", timeout: .seconds(30)) { daemon.snapshot.statistics.openWindows == 1 ? true : nil }
            #expect(daemon.metricsPort == nil)
        }
        #expect(
            logs.contains {
                $0.contains("metrics listener: cannot listen on http://127.0.0.1:\(holder.port): port \(holder.port) is in use")
                    && $0.contains("calls are protected as usual")
            })
    }

    /// The listener is the start's: a reload that turns it off says so, and the listener serves on.
    @Test func aReloadThatChangesMetricsTakesEffectAtTheNextStart() async throws {
        let feed = ScriptedFeed(script: [])
        var configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here))
        configuration.metrics = .loopback(port: try freePort())
        var withoutMetrics = configuration
        withoutMetrics.metrics = nil
        let next = withoutMetrics
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        let daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler }, reloader: { next })
        let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
        let running = Task { try await daemon.run(signals: signals) }
        defer { continuation.yield(.terminate) }
        let port = try await eventually("the metrics listener", timeout: .seconds(30)) { daemon.metricsPort }
        continuation.yield(.reload)
        #expect(
            await waitUntil(timeout: .seconds(30)) {
                handler.store.lines().contains {
                    $0.contains("configuration reloaded") && $0.contains("the metrics listener change takes effect at the next start")
                }
            })
        #expect(try await PrometheusScrape.fetch("http://127.0.0.1:\(port)/metrics").status == 200)
        continuation.yield(.terminate)
        #expect(try await running.value == 0)
    }

    @Test func noListenerUnlessTheConfigurationEnablesIt() async throws {
        let loader = ConfigurationLoader(registry: ProviderRegistry(feeds: [SimulatorSettings.provider], targets: [LogTargetSettings.provider]))
        let demo = try loader.load(path: Self.root.appendingPathComponent("config/demo.yaml").path)
        #expect(demo.metrics == nil)
        let feed = ScriptedFeed(script: [])
        let configuration = scriptedConfiguration(feed: FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here))
        try await withDaemon(configuration, url: false) { daemon, _ in
            #expect(daemon.metricsPort == nil)
        }
    }
}

private let here = SourceLocation(file: "test.yaml", line: 1, column: 1)

private func temporaryStateDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("mw-metrics-\(UUID().uuidString)").path
}

private func scriptedConfiguration(
    feed: FeedConfiguration, latency: Duration = .zero, deadline: Duration = .milliseconds(500)
) -> DaemonConfiguration {
    var log = LogTargetSettings()
    log.seed = 1
    log.latency = latency
    let policy = PolicyDefinition(
        name: "card", feeds: [feed.name], start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
        actions: [ActionSpec(kind: .pauseRecording, target: "recorder", deadline: deadline)])
    return DaemonConfiguration(
        files: ["test.yaml"], feeds: [feed],
        targets: [TargetConfiguration(name: "recorder", type: "log", settings: log, location: here)],
        engine: EngineConfiguration(policies: [policy], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        logging: LoggingConfiguration(level: .debug, target: .stderr), state: StateConfiguration(directory: temporaryStateDirectory()))
}

/// Runs the daemon around `body`, which gets the scrape URL once the listener serves; then stops
/// it as systemd would and checks that it stopped cleanly.
@discardableResult
private func withDaemon(
    _ configuration: DaemonConfiguration, url wanted: Bool = true, _ body: (Daemon, String) async throws -> Void
) async throws -> [String] {
    let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
    let daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
    let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
    let running = Task { try await daemon.run(signals: signals) }
    do {
        try await eventually("the daemon to start", timeout: .seconds(30)) { daemon.snapshot.feedsUp.values.contains(true) ? true : nil }
        var url = ""
        if wanted {
            let port = try await eventually("the metrics listener", timeout: .seconds(30)) { daemon.metricsPort }
            url = "http://127.0.0.1:\(port)\(configuration.metrics?.path ?? "/metrics")"
        }
        try await body(daemon, url)
    } catch {
        continuation.yield(.terminate)
        _ = try? await running.value
        throw error
    }
    continuation.yield(.terminate)
    #expect(try await running.value == 0)
    continuation.finish()
    // The records on the way may hold the card number; only masked.
    let lines = handler.store.lines()
    for line in lines { #expect(!line.contains("4111111111111111"), "\(line)") }
    return lines
}

/// Up, one event, then down when told: what a feed reports when its platform goes away.
final class SwitchableFeed: CallFeed, FeedSettings, Equatable {
    let name = "desk"
    let down = Atomic<Bool>(false)
    var summary: String { "switchable" }

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    func run(delivering sink: any CallUpdateSink) async throws {
        sink.feedStateChanged(feed: name, up: true, detail: "connected")
        sink.deliver(
            CallUpdate(
                feed: name, ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound, state: .established,
                attributes: [:]))
        while !down.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(20)) }
        sink.feedStateChanged(feed: name, up: false, detail: "the platform closed the connection")
        while true { try await Task.sleep(for: .seconds(60)) }
    }

    static func == (lhs: SwitchableFeed, rhs: SwitchableFeed) -> Bool { lhs === rhs }
}

/// A platform that refuses every action with the card number in its error, as a badly written
/// API might echo a request back.
final class CardEchoTarget: ActionTarget, TargetSettings, Equatable {
    var summary: String { "card-echo" }
    var confirmsByEvent: Bool { false }
    var descriptor: TargetDescriptor { TargetDescriptor(name: "recorder", confirmsByEvent: false) }
    let attempts = Atomic<Int>(0)

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget { self }

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        attempts.add(1, ordering: .relaxed)
        return .failed(ActionFailure(.retryable, "declined: card 4111111111111111 is not allowed", code: "4111111111111111"))
    }

    static func == (lhs: CardEchoTarget, rhs: CardEchoTarget) -> Bool { lhs === rhs }
}
