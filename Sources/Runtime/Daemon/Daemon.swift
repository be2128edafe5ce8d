import Dispatch
import Logging
import MutewardenConfig
import MutewardenEngine
import MutewardenHTTP
import MutewardenIngress
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit

/// The running daemon: providers built from the configuration, the engine on its thread, feeds on
/// tasks, reload on SIGHUP, state kept across restarts, and an orderly stop.
public final class Daemon: Sendable {
    public struct Options: Sendable {
        /// How long a stop waits for actions already under way.
        public var shutdownGrace: Duration = .seconds(3)
        /// Delay before a feed whose `run` failed is started again, doubling up to the maximum.
        public var feedRestartDelay: Duration = .seconds(1)
        public var feedRestartDelayMaximum: Duration = .seconds(60)
        /// The control socket's path, for `mutewarden status`; nil, none. The command line sets
        /// it from `control:` (docs/configuration.md); tests that run many daemons leave it off.
        public var controlSocket: String?

        public init() {}
    }

    /// Loads the configuration again, for a reload.
    public typealias Reloader = @Sendable () throws(ConfigurationError) -> DaemonConfiguration

    private let configuration: Locked<DaemonConfiguration>
    private let logger: Logger
    private let audit: AuditLogger
    private let options: Options
    private let clock: any MonotonicClock
    private let notifier: SystemdNotifier
    private let loop: EngineLoop
    private let sink: EngineSink
    private let context: ProviderContext
    /// The callback listener, started by the first feed that registers a route on it.
    private let ingress: IngressHost
    /// The feeds and targets of the configuration in force, each with the owner name under which
    /// it claimed shared resources. A reload makes a new generation (see ``reload(feedTasks:)``).
    private let providers: Locked<ProviderGeneration>
    private let reloader: Reloader?
    private let stateStore: StateStore?
    /// What the window journal held at start, replayed over the state file by ``loadState()``.
    private let journalAtStart: (records: [WindowJournalRecord], unreadable: Int)
    private let journal: WindowJournalWriter?
    /// The engine renders attributes through this, so a reload can change the allowlist at once:
    /// taking a key off the list must stop its values reaching the log without a restart.
    private let redactor: Locked<AttributeRedactor>
    /// `mutewarden status`: the control socket and its answers (see ``Options/controlSocket``).
    private let control: DaemonControl
    /// Counters fed by the engine loop, and the listener that serves them: both only when the
    /// configuration at start enables `metrics:` (docs/operations.md#metrics).
    private let metrics: DaemonMetrics?
    private let metricsListener = Locked<MetricsListener?>(nil)
    private let health: @Sendable () -> IngressHealth
    private let report: @Sendable (AuditSeverity, String, AuditFields) -> Void

    /// Builds every feed and target and prepares the state directory. Throws when a provider
    /// cannot be built.
    public init(
        configuration: DaemonConfiguration, logger: Logger, options: Options = Options(),
        clock: any MonotonicClock = SystemClock(), notifier: SystemdNotifier = SystemdNotifier(),
        reloader: Reloader? = nil
    ) throws {
        let lockedConfiguration = Locked(configuration)
        self.configuration = lockedConfiguration
        self.logger = logger
        self.options = options
        self.clock = clock
        self.notifier = notifier
        self.reloader = reloader
        let audit = AuditLogger(logger: logger)
        self.audit = audit
        let report: @Sendable (AuditSeverity, String, AuditFields) -> Void = { severity, message, fields in
            audit.logger.log(
                level: AuditLogger.level(for: severity), Logger.Message(stringLiteral: PANMasker.maskForLog(message)),
                metadata: AuditLogger.metadata(for: AuditRecord(.feedUp, severity, message, fields))
                    .filter { $0.key != AuditLogger.kindKey })
        }
        // `/healthz` reads the engine loop, which is made after the providers that start the ingress.
        let engineForHealth = Locked<EngineLoop?>(nil)
        let health: @Sendable () -> IngressHealth = {
            guard let loop = engineForHealth.withLock({ $0 }) else { return IngressHealth(checks: [(name: "engine", ok: false)]) }
            let feeds = loop.snapshot.feedsUp.sorted { $0.key < $1.key }.map { (name: "feed \($0.key)", ok: $0.value) }
            return IngressHealth(checks: [(name: "engine", ok: loop.isAlive)] + feeds)
        }
        self.health = health
        self.report = report
        let ingress = IngressHost(configuration: configuration.ingress, health: health, report: report)
        self.ingress = ingress
        context = ProviderContext(report: report, ingress: ingress)
        // One HTTP transport for every provider, run by the engine thread (see EngineLoop).
        let (transport, httpHost) = try HTTPTransport.hosted()
        context.shared.provide(.httpTransport, transport)
        redactor = Locked(AttributeRedactor(allowlist: configuration.logging.attributeAllowlist))
        let generation = try ProviderGeneration.build(configuration, reusing: nil, number: 1, context: context)
        let targets = generation.targets.mapValues(\.object)
        providers = Locked(generation)

        let store = StateStore(directory: configuration.state.directory)
        do {
            try store.prepare()
            stateStore = store
        } catch {
            stateStore = nil
            audit.emit(
                AuditRecord(
                    .stateRestored, .error,
                    "\(error.description): open windows will not survive a restart", [.result: "unavailable"]))
        }
        let journal: WindowJournalWriter?
        if let stateStore {
            let found = WindowJournalWriter.read(directory: stateStore.directory)
            journalAtStart = (found.records, found.unreadable)
            journal = WindowJournalWriter(
                directory: stateStore.directory, firstEpoch: found.nextEpoch, syncInterval: configuration.state.journalSyncInterval
            ) { message in
                audit.emit(
                    AuditRecord(
                        .stateRestored, .error,
                        "cannot write the window journal: \(message); a window opened in the second before a crash could be lost",
                        [.result: "journal-failed", .error: message]))
            }
        } else {
            journalAtStart = ([], 0)
            journal = nil
        }
        self.journal = journal
        let writer = stateStore.map { store in
            StateWriter(store: store, saved: { epoch in journal?.release(through: epoch) }) { message in
                audit.emit(
                    AuditRecord(
                        .stateRestored, .error, "cannot save the state: \(message); a restart would lose open windows",
                        [.result: "save-failed", .error: message]))
            }
        }
        let metrics = configuration.metrics.map { _ in DaemonMetrics(names: Self.metricNames(configuration)) }
        self.metrics = metrics
        loop = EngineLoop(
            targets: targets, feeds: configuration.feeds.map(\.name), http: httpHost, clock: clock, audit: audit,
            logger: logger, notifier: notifier, stateWriter: writer, journal: journal, metrics: metrics)
        sink = EngineSink(loop: loop)
        control = DaemonControl(
            loop: loop, clock: clock, files: { lockedConfiguration.withLock { $0.files } },
            digest: { lockedConfiguration.withLock { $0.digest } }, report: report)
        engineForHealth.withLock { $0 = loop }
    }

    /// What the engine looks like now, for status lines and tests.
    public var snapshot: EngineSnapshot { loop.snapshot }

    /// What `mutewarden status` shows, as the control socket answers it.
    public func status() async -> DaemonStatus {
        await withCheckedContinuation { continuation in control.status { continuation.resume(returning: $0) } }
    }

    /// The port the metrics listener serves, once it runs (the kernel's choice for port 0).
    public var metricsPort: Int? { metricsListener.withLock { $0?.port } }

    /// The names metrics may carry as label values: the configuration's feeds, targets and policies.
    private static func metricNames(_ configuration: DaemonConfiguration) -> [String] {
        configuration.feeds.map(\.name) + configuration.targets.map(\.name) + configuration.engine.policies.map(\.name)
    }

    /// Starts the metrics listener, if configured. A listener that cannot start is an error on the
    /// record, not a reason to stop protecting calls.
    private func startMetricsListener(_ configuration: MetricsConfiguration?) {
        guard let configuration, let metrics else { return }
        let loop = self.loop
        do {
            let listener = try MetricsListener(configuration: configuration, health: health, report: report) {
                metrics.exposition(snapshot: loop.snapshot, queueDepth: loop.queueDepth, actionsInFlight: loop.attemptsInFlightCount)
            }
            metricsListener.withLock { $0 = listener }
            report(.notice, "metrics listener serving \(listener.summary) (port \(listener.port))", [.result: "listening"])
        } catch {
            report(.error, "\(error); metrics are not served, calls are protected as usual", [.result: "failed", .error: "\(error)"])
        }
    }

    /// Runs until a terminate signal arrives or `duration` (if any) has passed, reloading on
    /// SIGHUP. Returns the exit status: 0 after an orderly stop.
    public func run(signals: AsyncStream<DaemonSignal>, for duration: Duration? = nil) async throws -> Int32 {
        let started = clock.now()
        control.started(at: started)
        let current = configuration.withLock { $0 }
        let restored = loadState()
        try loop.start(
            configuration: current.engine,
            options: EngineOptions(renderAttributes: { [self] attributes in redactor.withLock { $0 }.render(attributes) }),
            restoring: restored)
        audit.emit(
            AuditRecord(
                .daemonStarted, .notice,
                "mutewarden \(MutewardenVersion.current) started: \(current.feeds.count) feed(s), "
                    + "\(current.targets.count) target(s), \(current.engine.policies.count) polic"
                    + (current.engine.policies.count == 1 ? "y" : "ies") + " from \(current.files.joined(separator: ", "))",
                [.result: "started"]))
        // The configuration in force from now, with its digest: the report's evidence of which
        // configuration ran when (a reload writes the same record with `reloaded`).
        audit.emit(
            AuditRecord(
                .configurationLoaded, .notice, "configuration loaded from \(current.files.joined(separator: ", "))",
                [.result: "loaded", .digest: current.digest ?? ""]))

        startMetricsListener(current.metrics)
        var feedTasks: [String: Task<Void, Never>] = [:]
        for (name, feed) in providers.withLock({ $0.feeds }) { feedTasks[name] = startFeed(feed.object) }
        if let path = options.controlSocket { control.open(path: path) }
        notifier.notify("READY=1\nSTATUS=" + loop.statusLine(now: clock.now()))
        audit.emit(
            AuditRecord(
                .daemonStarted, .info, "ready after \(clock.now().since(started).compact)",
                [.result: "ready", .latencyMs: String(clock.now().since(started).milliseconds)]))

        await waitForStop(signals: signals, duration: duration) {
            await self.reload(feedTasks: &feedTasks)
        }

        notifier.notify("STOPPING=1")
        control.stopping()
        audit.emit(AuditRecord(.daemonStopping, .notice, "mutewarden stopping: no new events are taken", [.result: "stopping"]))
        sink.accepting.store(false, ordering: .relaxed)
        for task in feedTasks.values { task.cancel() }
        for task in feedTasks.values { await task.value }
        // No callback is taken once the feeds are gone: close the listener, its port with it.
        ingress.stop()
        loop.post(.beginShutdown)
        await drainActions()
        loop.stop()
        metricsListener.withLock { listener in
            defer { listener = nil }
            return listener
        }?.stop()

        // Each window left in place goes on the record: an auditor must be able to see which
        // agents stay muted and which recordings stay paused while the daemon is down.
        for window in loop.finalState?.windows ?? [] {
            let actions = window.engagements.flatMap { engagement in
                engagement.targets.map { "\(window.actions[engagement.action].kind.rawValue) \(engagement.address) via \($0.target)" }
            }
            var fields: AuditFields = [
                .policy: window.policy, .feed: window.feed, .call: window.call.primary, .window: String(window.sequence),
                .mode: window.mode, .result: "left-in-place",
            ]
            fields.extension = window.agentExtension
            audit.emit(
                AuditRecord(
                    .daemonStopping, .warning,
                    "window left in place at shutdown: \(window.policy) on call \(window.call.primary)"
                        + (window.agentExtension.map { " (extension \($0))" } ?? "") + ", holding "
                        + (actions.isEmpty ? "no action" : actions.joined(separator: ", ")),
                    fields))
        }
        let statistics = loop.snapshot.statistics
        let stillOpen = statistics.openWindows
        audit.emit(
            AuditRecord(
                .daemonStopping, stillOpen > 0 ? .warning : .notice,
                "mutewarden stopped: \(statistics.eventsProcessed) events, \(statistics.controlFailures) control "
                    + "failure(s); \(stillOpen) window(s) still open, their actions left in place (muted stays muted)"
                    + (stillOpen > 0 && stateStore != nil ? " and saved for the next start" : "")
                    + (journal.map {
                        "; window journal: \($0.recordsWritten.load(ordering: .relaxed)) record(s) in "
                            + "\($0.flushes.load(ordering: .relaxed)) flush(es), \($0.syncs.load(ordering: .relaxed)) sync(s)"
                    } ?? ""),
                [.result: "stopped"]))
        control.close()
        return 0
    }

    private func loadState() -> EngineState? {
        guard let stateStore else { return nil }
        let snapshot: EngineState?
        switch stateStore.load() {
        case .none:
            snapshot = nil
        case .loaded(let state):
            snapshot = state
        case .corrupt(let reason, let movedTo):
            audit.emit(
                AuditRecord(
                    .stateRestored, .error,
                    "the state file \(stateStore.path) is corrupt (\(reason)); moved to \(movedTo) and starting "
                        + "without it: windows open before the restart are not restored",
                    [.result: "corrupt", .reason: reason]))
            snapshot = nil
        }
        let (records, unreadable) = journalAtStart
        if unreadable > 0 {
            audit.emit(
                AuditRecord(
                    .stateRestored, .warning,
                    "\(unreadable) line(s) of the window journal could not be read (a write cut short by a crash) and were skipped",
                    [.result: "journal-unreadable"]))
        }
        guard !records.isEmpty else { return snapshot }
        let base = snapshot ?? EngineState()
        let merged = base.replaying(records)
        let added = merged.windows.count - base.windows.count
        audit.emit(
            AuditRecord(
                .stateRestored, .notice,
                "window journal: \(records.count) record(s) replayed over the state file"
                    + (added > 0 ? ", \(added) window(s) opened after its last snapshot" : ""),
                [.result: "journal-replayed"]))
        return merged
    }

    private func startFeed(_ feed: any CallFeed) -> Task<Void, Never> {
        Task(executorPreference: loop.executor) { [sink, audit, options] in
            await Self.supervise(feed, sink: sink, audit: audit, options: options)
        }
    }

    /// Waits for a terminate signal or the duration, running `onReload` for each SIGHUP.
    private func waitForStop(
        signals: AsyncStream<DaemonSignal>, duration: Duration?, onReload: @escaping () async -> Void
    ) async {
        // Signals and the timer meet in one stream, so that reloads run one at a time, in order.
        let (events, continuation) = AsyncStream<DaemonSignal>.makeStream()
        let forward = Task {
            for await signal in signals { continuation.yield(signal) }
        }
        let expire = duration.map { duration in
            Task {
                guard (try? await Task.sleep(for: duration)) != nil else { return }
                continuation.yield(.terminate)
            }
        }
        for await event in events {
            if event == .terminate { break }
            await onReload()
        }
        forward.cancel()
        expire?.cancel()
    }

    /// SIGHUP: load the configuration again; if it is valid, apply it without losing a window.
    private func reload(feedTasks: inout [String: Task<Void, Never>]) async {
        let started = clock.now()
        notifier.notify("RELOADING=1")
        defer { notifier.notify("READY=1") }
        guard let reloader else {
            audit.emit(AuditRecord(.configurationRejected, .warning, "reload requested, but this daemon cannot reload", [.result: "rejected"]))
            return
        }
        let next: DaemonConfiguration
        do {
            next = try reloader()
        } catch {
            for diagnostic in error.diagnostics {
                audit.emit(AuditRecord(.configurationRejected, .error, "\(diagnostic)", [.result: "rejected", .error: "\(diagnostic)"]))
            }
            audit.emit(
                AuditRecord(
                    .configurationRejected, .error,
                    "reload refused: \(error.diagnostics.count) error(s) in the new configuration; the running one stays in force",
                    [.result: "rejected"]))
            return
        }
        let previous = configuration.withLock { $0 }
        let current = providers.withLock { $0 }
        // A new generation: what did not change is carried over, objects, sessions and all; what
        // changed (secret values included, compared by value) is built anew with new sessions.
        let generation: ProviderGeneration
        do {
            ingress.prepare(next.ingress)
            generation = try ProviderGeneration.build(next, reusing: current, number: current.number + 1, context: context)
        } catch {
            ingress.prepare(previous.ingress)
            // Whatever the failed build made is nobody's: close it, keep the running generation.
            context.shared.retainClaims(of: current.owners)
            context.shared.closeUnclaimed()
            audit.emit(
                AuditRecord(
                    .configurationRejected, .error, "reload refused: \(error); the running configuration stays in force",
                    [.result: "rejected", .error: "\(error)"]))
            return
        }

        // The engine first: once it has the new policies, the new targets must exist.
        loop.replaceTargets(generation.targets.mapValues(\.object))
        let outcome: Result<ReloadOutcome, any Error> = await withCheckedContinuation { continuation in
            loop.post(.reconfigure(next.engine, reply: { continuation.resume(returning: $0) }))
        }
        guard case .success(let result) = outcome else {
            ingress.prepare(previous.ingress)
            loop.replaceTargets(current.targets.mapValues(\.object))
            context.shared.retainClaims(of: current.owners)
            context.shared.closeUnclaimed()
            audit.emit(
                AuditRecord(.configurationRejected, .error, "reload refused by the engine: \(outcome)", [.result: "rejected"]))
            return
        }
        redactor.withLock { $0 = AttributeRedactor(allowlist: next.logging.attributeAllowlist) }
        // Unchanged `ingress:` settings keep the listener, its port and its connections.
        if let change = ingress.apply() { context.report(.notice, change, [.result: "reloaded"]) }

        // Feeds: removed ones stop, new ones start, rebuilt ones restart; kept ones run on.
        var restarted: [String] = []
        for (name, task) in feedTasks where generation.feeds[name]?.owner != current.feeds[name]?.owner {
            task.cancel()
            await task.value
            feedTasks[name] = nil
            if generation.feeds[name] != nil { restarted.append(name) }
        }
        for (name, feed) in generation.feeds where feedTasks[name] == nil { feedTasks[name] = startFeed(feed.object) }
        providers.withLock { $0 = generation }
        configuration.withLock { $0 = next }
        control.reloaded(generation: generation.number)

        // Sessions of removed and rebuilt providers are closed once the attempts already sent
        // through them have answered (bounded by the shutdown grace), never under a running one.
        context.shared.retainClaims(of: generation.owners)
        let settle = clock.now() + options.shutdownGrace
        while loop.hasAttemptsInFlight, clock.now() < settle { try? await Task.sleep(for: .milliseconds(10)) }
        let closed = context.shared.closeUnclaimed()
        let rebuiltTargets = generation.targets.filter { current.targets[$0.key]?.owner != $0.value.owner && current.targets[$0.key] != nil }
            .keys.sorted()

        var notes: [String] = []
        if next.logging.level != previous.logging.level || next.logging.target != previous.logging.target {
            notes.append("logging level and target changes take effect at the next start")
        }
        if next.state.directory != previous.state.directory {
            notes.append("the state directory change takes effect at the next start")
        }
        if next.metrics != previous.metrics {
            notes.append("the metrics listener change takes effect at the next start")
        }
        metrics?.allow(names: Self.metricNames(next))
        if next.state.journalSyncInterval != previous.state.journalSyncInterval {
            notes.append("the journal sync interval change takes effect at the next start")
        }
        let elapsed = clock.now().since(started)
        audit.emit(
            AuditRecord(
                .configurationLoaded, .notice,
                "configuration reloaded in \(elapsed.compact): \(result.windowsKept) open window(s) kept, "
                    + "\(result.windowsClosed) closed with their policy"
                    + (restarted.isEmpty ? "" : "; feeds restarted: \(restarted.sorted().joined(separator: ", "))")
                    + (rebuiltTargets.isEmpty ? "" : "; targets rebuilt: \(rebuiltTargets.joined(separator: ", "))")
                    + (closed.isEmpty ? "" : "; closed: \(closed.joined(separator: ", "))")
                    + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")),
                [.result: "reloaded", .latencyMs: String(elapsed.milliseconds), .digest: next.digest ?? ""]))
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
