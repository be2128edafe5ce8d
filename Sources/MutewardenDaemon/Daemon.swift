import Dispatch
import Logging
import MutewardenConfig
import MutewardenEngine
import MutewardenLogging
import MutewardenModel
import Synchronization

/// The running daemon: providers built from the configuration, the engine on its thread, feeds on
/// tasks, and an orderly stop.
public final class Daemon: Sendable {
    public struct Options: Sendable {
        /// How long a stop waits for actions already under way.
        public var shutdownGrace: Duration = .seconds(3)
        /// Delay before a feed whose `run` failed is started again, doubling up to the maximum.
        public var feedRestartDelay: Duration = .seconds(1)
        public var feedRestartDelayMaximum: Duration = .seconds(60)

        public init() {}
    }

    private let configuration: DaemonConfiguration
    private let logger: Logger
    private let audit: AuditLogger
    private let options: Options
    private let clock: any MonotonicClock
    private let loop: EngineLoop
    private let sink: EngineSink
    private let feeds: [any CallFeed]

    /// Builds every feed and target. Throws when a provider cannot be built.
    public init(
        configuration: DaemonConfiguration, logger: Logger, options: Options = Options(),
        clock: any MonotonicClock = SystemClock()
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.options = options
        self.clock = clock
        let audit = AuditLogger(logger: logger)
        self.audit = audit
        let context = ProviderContext { severity, message, fields in
            audit.logger.log(
                level: AuditLogger.level(for: severity), Logger.Message(stringLiteral: PANMasker.mask(message)),
                metadata: AuditLogger.metadata(for: AuditRecord(.feedUp, severity, message, fields))
                    .filter { $0.key != AuditLogger.kindKey })
        }
        var targets: [String: any ActionTarget] = [:]
        for target in configuration.targets {
            targets[target.name] = try target.settings.makeTarget(name: target.name, context: context)
        }
        feeds = try configuration.feeds.map { try $0.settings.makeFeed(name: $0.name, context: context) }
        loop = EngineLoop(
            targets: targets, feeds: configuration.feeds.map(\.name), clock: clock, audit: audit, logger: logger)
        sink = EngineSink(loop: loop)
    }

    /// What the engine looks like now, for status lines and tests.
    public var snapshot: EngineSnapshot { loop.snapshot }

    /// Runs until a terminate signal arrives or `duration` (if any) has passed. Returns the exit
    /// status: 0 after an orderly stop.
    public func run(signals: AsyncStream<DaemonSignal>, for duration: Duration? = nil) async throws -> Int32 {
        let redactor = AttributeRedactor(allowlist: configuration.logging.attributeAllowlist)
        try loop.start(
            configuration: configuration.engine,
            options: EngineOptions(renderAttributes: { redactor.render($0) }))
        let engine = configuration.engine
        audit.emit(
            AuditRecord(
                .daemonStarted, .notice,
                "mutewarden \(MutewardenVersion.current) started: \(configuration.feeds.count) feed(s), "
                    + "\(configuration.targets.count) target(s), \(engine.policies.count) polic"
                    + (engine.policies.count == 1 ? "y" : "ies") + " from \(configuration.files.joined(separator: ", "))",
                [.result: "started"]))

        let feedTasks = feeds.map { feed in
            Task { [sink, audit, options] in
                await Self.supervise(feed, sink: sink, audit: audit, options: options)
            }
        }

        await waitForStop(signals: signals, duration: duration)

        audit.emit(AuditRecord(.daemonStopping, .notice, "mutewarden stopping: no new events are taken", [.result: "stopping"]))
        sink.accepting.store(false, ordering: .relaxed)
        for task in feedTasks { task.cancel() }
        for task in feedTasks { await task.value }
        loop.post(.beginShutdown)
        await drainActions()
        loop.stop()

        let statistics = loop.snapshot.statistics
        let stillOpen = statistics.openWindows
        audit.emit(
            AuditRecord(
                .daemonStopping, stillOpen > 0 ? .warning : .notice,
                "mutewarden stopped: \(statistics.eventsProcessed) events, \(statistics.controlFailures) control "
                    + "failure(s); \(stillOpen) window(s) still open, their actions left in place (muted stays muted)",
                [.result: "stopped"]))
        return 0
    }

    private func waitForStop(signals: AsyncStream<DaemonSignal>, duration: Duration?) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals where signal == .terminate { return }
            }
            if let duration {
                group.addTask { try? await Task.sleep(for: duration) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Gives actions already sent a bounded time to answer.
    private func drainActions() async {
        let deadline = clock.now() + options.shutdownGrace
        while clock.now() < deadline {
            if !loop.hasAttemptsInFlight, loop.snapshot.statistics.jobsInProgress == 0 { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let jobs = loop.snapshot.statistics.jobsInProgress
        audit.emit(
            AuditRecord(
                .daemonStopping, .warning,
                "\(jobs) action(s) still unconfirmed after the \(options.shutdownGrace.compact) shutdown grace period",
                [.result: "unconfirmed"]))
    }

    /// Runs a feed, and runs it again after a failure with a growing delay: a feed reconnects by
    /// itself, so a throw means something its own loop could not handle.
    private static func supervise(_ feed: any CallFeed, sink: EngineSink, audit: AuditLogger, options: Options) async {
        var delay = options.feedRestartDelay
        while !Task.isCancelled {
            do {
                try await feed.run(delivering: sink)
                if Task.isCancelled { return }
                audit.emit(
                    AuditRecord(
                        .feedDown, .error, "feed \(feed.name) stopped by itself; restarting in \(delay.compact)",
                        [.feed: feed.name, .result: "stopped"]))
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                audit.emit(
                    AuditRecord(
                        .feedDown, .critical,
                        "feed \(feed.name) failed: \(error); restarting in \(delay.compact)",
                        [.feed: feed.name, .result: "failed", .error: "\(error)"]))
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, options.feedRestartDelayMaximum)
        }
    }
}
