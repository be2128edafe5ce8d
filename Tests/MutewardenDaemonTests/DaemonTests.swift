import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenSimulator
import MutewardenTesting
import Synchronization
import Testing

/// Delivers a script of updates, then stays quiet until cancelled.
struct ScriptedFeed: CallFeed, FeedSettings {
    var name = "desk"
    var script: [CallUpdate]
    var summary: String { "scripted" }

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    func run(delivering sink: any CallUpdateSink) async throws {
        sink.feedStateChanged(feed: name, up: true, detail: "scripted")
        for update in script {
            try await Task.sleep(for: .milliseconds(30))
            sink.deliver(update)
        }
        while true { try await Task.sleep(for: .seconds(60)) }
    }
}

/// Fails every run, counting them.
final class FailingFeed: CallFeed, FeedSettings {
    let name = "broken"
    let runs = Atomic<Int>(0)
    var summary: String { "failing" }

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    struct Broken: Error, CustomStringConvertible {
        var description: String { "the platform said no" }
    }

    func run(delivering sink: any CallUpdateSink) async throws {
        runs.add(1, ordering: .relaxed)
        throw Broken()
    }
}

private let pan = "4111 1111 1111 1111"

private func update(_ id: String, _ state: CallState = .established, _ attributes: [String: String]? = nil)
    -> CallUpdate
{
    CallUpdate(
        feed: "desk", ids: CallIdentifiers(primary: id), agentExtension: "3001", direction: .inbound, state: state,
        attributes: attributes)
}

private func configuration(feeds: [FeedConfiguration], allowlist: Set<String>) -> DaemonConfiguration {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    var log = LogTargetSettings()
    log.seed = 1
    let policy = PolicyDefinition(
        name: "card", feeds: feeds.map(\.name), start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
        actions: [ActionSpec(kind: .pauseRecording, target: "recorder", deadline: .seconds(2))])
    return DaemonConfiguration(
        files: ["test.yaml"], feeds: feeds,
        targets: [TargetConfiguration(name: "recorder", type: "log", settings: log, location: here)],
        engine: EngineConfiguration(
            policies: [policy], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]),
        logging: LoggingConfiguration(level: .debug, target: .stderr, attributeAllowlist: allowlist),
        state: StateConfiguration(directory: FileManager.default.temporaryDirectory.appendingPathComponent("mw-daemon-\(UUID().uuidString)").path))
}

/// Runs the daemon until `done` says so (checked every 20 ms, for 30 s at most), then stops it
/// with the terminate signal, as systemd would.
private func runDaemon(_ configuration: DaemonConfiguration, until done: @escaping @Sendable (EngineSnapshot) -> Bool)
    async throws -> (status: Int32, logs: InMemoryLogStore, snapshot: EngineSnapshot)
{
    let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
    let logger = Logger(label: "mutewarden") { _ in handler }
    let daemon = try Daemon(configuration: configuration, logger: logger)
    let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
    let running = Task { try await daemon.run(signals: signals) }
    #expect(
        await waitUntil(timeout: .seconds(30), every: .milliseconds(20)) { done(daemon.snapshot) },
        "the daemon did not get there within 30 s")
    continuation.yield(.terminate)
    let status = try await running.value
    continuation.finish()
    return (status, handler.store, daemon.snapshot)
}

@Test func theDaemonProtectsACallAndNeverLogsTheCardNumber() async throws {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    let feed = ScriptedFeed(script: [
        update("c1", .ringing, [:]),
        update("c1", .established, ["Queue": "billing"]),
        update("c1", .established, ["Queue": "billing", "PCI_STAGE": "CARD", "CardNumber": pan]),
        update("c1", .established, ["Queue": "billing", "PCI_STAGE": "DONE", "CardNumber": pan]),
    ])
    // CardNumber is allowlisted on purpose: masking must still hold.
    let (status, logs, snapshot) = try await runDaemon(
        configuration(
            feeds: [FeedConfiguration(name: "desk", type: "scripted", settings: feed, location: here)],
            allowlist: ["PCI_STAGE", "CardNumber"]),
        // After the fourth event the resume is under way; no job left means it was answered.
        until: { $0.statistics.eventsProcessed == 4 && $0.statistics.jobsInProgress == 0 })
    #expect(status == 0)
    let lines = logs.lines()
    func count(_ kind: String) -> Int { lines.filter { $0.contains("audit=\(kind) ") }.count }
    #expect(count("window.opened") == 1)
    #expect(count("window.closed") == 1)
    #expect(count("action.confirmed") == 2)
    #expect(count("feed.up") == 1)
    #expect(snapshot.statistics.trackedCalls == 1)
    #expect(snapshot.statistics.eventsProcessed == 4)
    // The attribute shows, masked; the bare digits never do, in any form.
    #expect(lines.contains { $0.contains("CardNumber=4111 11** **** 1111") })
    for line in lines {
        #expect(!PANMasker.containsPAN(line), "\(line)")
        #expect(!line.contains("4111111111111111"))
        #expect(!line.contains(pan))
    }
    // Values of keys not allowlisted never show.
    #expect(!lines.contains { $0.contains("billing") })
}

@Test func aFeedThatFailsIsRestartedWithAnAlarm() async throws {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    let feed = FailingFeed()
    let (status, logs, _) = try await runDaemon(
        configuration(
            feeds: [FeedConfiguration(name: "broken", type: "failing", settings: feed, location: here)],
            allowlist: []),
        until: { _ in feed.runs.load(ordering: .relaxed) >= 2 })
    #expect(status == 0)
    #expect(feed.runs.load(ordering: .relaxed) >= 2)
    let alarms = logs.entries.filter { $0.metadata["audit"] == "feed.down" && $0.level == .critical }
    #expect(alarms.count >= 2)
    #expect(alarms.first?.message.contains("the platform said no") == true)
}

@Test func theDemoConfigurationRunsInProcess() async throws {
    let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    var configuration = try ConfigurationLoader(
        registry: ProviderRegistry(feeds: [SimulatorSettings.provider], targets: [LogTargetSettings.provider])
    ).load(
        path: "/\(root)/config/demo.yaml")
    configuration.state.directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-demo-\(UUID().uuidString)").path
    let (status, logs, snapshot) = try await runDaemon(configuration, until: { $0.statistics.eventsProcessed > 0 })
    #expect(status == 0)
    #expect(snapshot.statistics.eventsProcessed > 0)
    #expect(logs.entries.contains { $0.metadata["audit"] == "feed.up" })
}

/// Connects, then hands the engine the platform's list of current calls, as a provider does
/// after every (re)connection.
struct ResyncingFeed: CallFeed, FeedSettings {
    var name = "desk"
    var summary: String { "resyncing" }
    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    func run(delivering sink: any CallUpdateSink) async throws {
        sink.feedStateChanged(feed: name, up: true, detail: "connected")
        sink.deliver(update("gone", .established, [:]))
        try await Task.sleep(for: .milliseconds(50))
        sink.resync(feed: name, current: [update("live", .established, ["PCI_STAGE": "CARD"])])
        while true { try await Task.sleep(for: .seconds(60)) }
    }
}

@Test func aFeedsResyncReachesTheEngine() async throws {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    let (status, logs, snapshot) = try await runDaemon(
        configuration(
            feeds: [FeedConfiguration(name: "desk", type: "resyncing", settings: ResyncingFeed(), location: here)],
            allowlist: []),
        until: { $0.statistics.openWindows == 1 && $0.statistics.trackedCalls == 1 })
    #expect(status == 0)
    #expect(snapshot.statistics.trackedCalls == 1)
    #expect(logs.lines().contains { $0.contains("feed desk resynchronized: 1 current call(s), 1 ended while it was down") })
}

/// Notes the thread it runs on before and after each await, and delivers one capture.
final class ThreadNotingFeed: CallFeed, FeedSettings {
    let name = "desk"
    var summary: String { "thread-noting" }
    let threads = Locked<[String]>([])
    let sinkExecutor = Locked<Bool?>(nil)

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    func run(delivering sink: any CallUpdateSink) async throws {
        threads.withLock { $0.append(currentThreadName()) }
        sinkExecutor.withLock { $0 = sink.taskExecutor != nil }
        sink.feedStateChanged(feed: name, up: true, detail: "connected")
        try await Task.sleep(for: .milliseconds(10))
        threads.withLock { $0.append(currentThreadName()) }
        sink.deliver(update("c1", .established, ["PCI_STAGE": "CARD"]))
        while true { try await Task.sleep(for: .seconds(60)) }
    }
}

/// Notes the thread each attempt runs on, before and after an await.
final class ThreadNotingTarget: ActionTarget, TargetSettings {
    var summary: String { "thread-noting" }
    var confirmsByEvent: Bool { false }
    var descriptor: TargetDescriptor { TargetDescriptor(name: "recorder", confirmsByEvent: false) }
    let threads = Locked<[String]>([])

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget { self }

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        threads.withLock { $0.append(currentThreadName()) }
        try? await Task.sleep(for: .milliseconds(1))
        threads.withLock { $0.append(currentThreadName()) }
        return .accepted
    }
}

/// Feeds and attempts run their code on the engine thread (EngineExecutor): an event then
/// crosses from the transport's thread to the engine and back, and no other thread is woken.
@Test func feedsAndActionAttemptsRunOnTheEngineThread() async throws {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    let feed = ThreadNotingFeed()
    let target = ThreadNotingTarget()
    var daemonConfiguration = configuration(
        feeds: [FeedConfiguration(name: "desk", type: "thread-noting", settings: feed, location: here)], allowlist: [])
    daemonConfiguration.targets = [TargetConfiguration(name: "recorder", type: "thread-noting", settings: target, location: here)]
    let (status, _, _) = try await runDaemon(
        daemonConfiguration, until: { _ in target.threads.withLock { $0.count } >= 2 })
    #expect(status == 0)
    #expect(feed.sinkExecutor.withLock { $0 } == true)
    #expect(feed.threads.withLock { $0 } == ["mw-engine", "mw-engine"])
    #expect(target.threads.withLock { $0 } == ["mw-engine", "mw-engine"])
}

extension FailingFeed: Equatable {
    static func == (lhs: FailingFeed, rhs: FailingFeed) -> Bool { lhs === rhs }
}

extension ThreadNotingFeed: Equatable {
    static func == (lhs: ThreadNotingFeed, rhs: ThreadNotingFeed) -> Bool { lhs === rhs }
}

extension ThreadNotingTarget: Equatable {
    static func == (lhs: ThreadNotingTarget, rhs: ThreadNotingTarget) -> Bool { lhs === rhs }
}
