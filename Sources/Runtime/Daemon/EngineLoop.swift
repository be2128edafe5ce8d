import CMutewardenShims
import Dispatch
import Foundation
import Logging
import MutewardenEngine
import MutewardenHTTP
import MutewardenLogging
import MutewardenModel
import Synchronization

/// What other threads hand to the engine thread.
enum EngineInput: Sendable {
    case update(CallUpdate)
    /// The events of one long-poll answer or WebSocket frame, in order: one post, one wake-up.
    case updates([CallUpdate])
    case attemptFinished(AttemptTicket, ActionAttemptResult)
    /// `expected` marks a feed stopped by the daemon itself, at shutdown: not an alarm.
    case feedState(feed: String, up: Bool, detail: String, expected: Bool)
    /// The feeds have stopped: see ``Engine/beginShutdown(at:)``.
    case beginShutdown
    /// A feed's list of current calls after a reconnection: see ``Engine/resync(feed:current:at:)``.
    case resync(feed: String, current: [CallUpdate])
    /// A reload: the engine takes the new configuration and says what it did.
    case reconfigure(EngineConfiguration, reply: @Sendable (Result<ReloadOutcome, any Error>) -> Void)
    /// `mutewarden status`: see ``Engine/statusSnapshot(limit:)``.
    case status(limit: Int, reply: @Sendable (EngineStatusSnapshot) -> Void)
}

/// What feeds and action tasks post to the engine thread: a ``Mailbox``, plus the backpressure
/// that only the engine's inputs need.
final class EngineInbox: Sendable {
    /// Its wake-up ends the engine thread's wait (see ``HTTPTransportHost/wake()``). That takes
    /// the HTTP mailbox's lock, so it runs after this one is released rather than nested in it.
    private let queue: Mailbox<EngineInput>

    init(wake: @escaping @Sendable () -> Void = {}) { queue = Mailbox(waking: .afterUnlocking, wake: wake) }

    /// True when this post found the inbox empty: the post that wakes the consumer.
    @discardableResult
    func post(_ input: EngineInput) -> Bool {
        switch input {
        case .update: backlog.add(1, ordering: .relaxed)
        case .updates(let updates): backlog.add(updates.count, ordering: .relaxed)
        default: break
        }
        return queue.post(input) == .first
    }

    // MARK: Backpressure

    /// Call updates posted and not yet ingested. Past `backlogHigh` a feed that asks for
    /// capacity waits until the engine is back under `backlogLow`. The high mark is well under a
    /// second of the engine's work at saturation, and a few MiB (docs/performance.md).
    private let backlog = Atomic<Int>(0)
    static let backlogHigh = 10_000
    static let backlogLow = 2_000
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }
    private let waiters = Locked<(next: UInt64, list: [Waiter])>((0, []))

    var backlogCount: Int { backlog.load(ordering: .relaxed) }

    /// Engine thread, after ingesting `count` updates.
    func ingested(_ count: Int) {
        let left = backlog.subtract(count, ordering: .relaxed).newValue
        guard left <= Self.backlogLow else { return }
        let ready = waiters.withLock { waiters in
            defer { waiters.list.removeAll() }
            return waiters.list
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Returns at once while the backlog is under the high mark; otherwise once it is under the
    /// low mark, or the caller is cancelled.
    func awaitCapacity() async {
        guard backlog.load(ordering: .relaxed) > Self.backlogHigh else { return }
        let id = waiters.withLock { waiters in
            waiters.next += 1
            return waiters.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = waiters.withLock { waiters in
                    // Checked under the lock the engine takes after lowering the count: either it
                    // sees this waiter, or this sees the lowered count.
                    if Task.isCancelled || backlog.load(ordering: .relaxed) <= Self.backlogLow { return true }
                    waiters.list.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = waiters.withLock { waiters -> Waiter? in
                guard let index = waiters.list.firstIndex(where: { $0.id == id }) else { return nil }
                return waiters.list.remove(at: index)
            }
            waiter?.continuation.resume()
        }
    }

    /// Wakes the consumer without posting anything (to stop, or to re-check its deadline).
    func nudge() { queue.nudge() }

    var hasInputs: Bool { !queue.isEmpty }

    /// Engine thread: see ``Mailbox/take(into:)``.
    func take(into buffer: inout [EngineInput]) { queue.take(into: &buffer) }
}

/// A snapshot of the engine for other threads: the status line, shutdown decisions, tests.
public struct EngineSnapshot: Sendable, Hashable {
    public var statistics = EngineStatistics()
    public var feedsUp: [String: Bool] = [:]
}

/// Runs the engine on a thread of its own. The engine is not thread-safe, so nothing but this
/// thread ever touches it; other threads reach it only through the inbox.
///
/// The same thread runs the daemon's HTTP transport (``HTTPTransportHost``) and the jobs of feeds
/// and action attempts (``EngineExecutor``): a long-poll answer, its events, the engine's
/// decisions and the requests they cause never cross a thread (docs/architecture.md).
final class EngineLoop: Sendable {
    private let inbox: EngineInbox
    /// The daemon's HTTP transport, driven between batches; its wait is this thread's wait.
    private let http: HTTPTransportHost
    /// Feeds and action attempts run on the engine thread: see ``EngineExecutor``.
    let executor: EngineExecutor
    private let clock: any MonotonicClock
    private let audit: AuditLogger
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let snapshotStore = Locked(EngineSnapshot())
    /// Attempts handed to targets and not yet answered.
    private let attemptsInFlight = Atomic<Int>(0)
    private let notifier: SystemdNotifier
    private let stateWriter: StateWriter?
    /// Windows' openings and closings between snapshots (see ``WindowJournalWriter``).
    private let journal: WindowJournalWriter?
    /// Targets can be replaced by a reload; the engine thread reads them for every send.
    private let targetTable: Locked<[String: any ActionTarget]>
    /// PCI control failures (CRIT `action.failed`), for the status line's "last hour".
    private let controlFailureTimes = Locked<[MonotonicInstant]>([])
    /// What the engine held when the loop stopped, for the shutdown record of each open window.
    private let finalStateStore = Locked<EngineState?>(nil)
    /// The engine thread's pthread_t, once it runs: a feed running in one of its jobs must neither
    /// yield the core it is meant to use (`EngineSink.deliver`) nor miss its sends (``awaitSends()``).
    private let engineThread = Atomic<UInt>(0)
    /// Feed jobs waiting for what they posted to be ingested and sent: see ``awaitSends()``.
    private let sendWaiters = Locked<[CheckedContinuation<Void, Never>]>([])
    /// For `mutewarden status`: each feed's state since when and its last event, the last control
    /// failures, and the events count once a second (see ``LoopActivity``).
    let activity: Locked<LoopActivity>
    /// Fed from what the engine ingests and says; nil when the metrics listener is off.
    let metrics: DaemonMetrics?

    init(
        targets: [String: any ActionTarget], feeds: [String], http: HTTPTransportHost, clock: any MonotonicClock,
        audit: AuditLogger, logger: Logger, notifier: SystemdNotifier, stateWriter: StateWriter?,
        journal: WindowJournalWriter? = nil, metrics: DaemonMetrics? = nil
    ) {
        self.journal = journal
        self.metrics = metrics
        targetTable = Locked(targets)
        self.http = http
        inbox = EngineInbox(wake: { [http] in http.wake() })
        executor = EngineExecutor(wake: { [http] in http.wake() })
        // Jobs hold their executor unowned; see EngineExecutor.
        _ = Unmanaged.passRetained(executor)
        self.notifier = notifier
        self.stateWriter = stateWriter
        self.clock = clock
        self.audit = audit
        self.logger = logger
        snapshotStore.withLock { snapshot in
            for feed in feeds { snapshot.feedsUp[feed] = false }
        }
        activity = Locked(LoopActivity(feeds: feeds, now: clock.now()))
    }

    var snapshot: EngineSnapshot { snapshotStore.withLock { $0 } }
    /// Started and not told to stop: what `/healthz` reports as "engine".
    var isAlive: Bool { engineThread.load(ordering: .acquiring) != 0 && !stopRequested.load(ordering: .acquiring) }

    /// True on the engine thread: in a feed's or an attempt's job.
    var onEngineThread: Bool { engineThread.load(ordering: .acquiring) == UInt(pthread_self()) }

    @discardableResult
    func post(_ input: EngineInput) -> Bool { inbox.post(input) }

    /// Call updates posted and not yet ingested: the engine's queue, for metrics and `status`.
    var queueDepth: Int { inbox.backlogCount }

    /// See ``EngineInbox/awaitCapacity()``.
    func awaitCapacity() async { await inbox.awaitCapacity() }

    /// On the engine thread, in a feed's job: returns once what the feed has posted is ingested
    /// and its sends have left, so that the feed's next request (a long poll) queues behind them
    /// at the HTTP thread, not ahead. Elsewhere, or with nothing posted, returns at once.
    func awaitSends() async {
        guard onEngineThread, inbox.hasInputs else { return }
        await withCheckedContinuation { continuation in sendWaiters.withLock { $0.append(continuation) } }
    }

    /// Engine thread, once the batch's sends have started: lets the waiting feeds go on.
    private func resumeSendWaiters() {
        let waiters = sendWaiters.withLock { waiters in
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Starts the thread and returns once the engine is built on it, from Sendable configuration,
    /// so that the engine never crosses threads. Throws what building it threw.
    func start(configuration: EngineConfiguration, options: EngineOptions, restoring state: EngineState?) throws {
        let started = DispatchSemaphore(value: 0)
        let failure = Locked<(any Error)?>(nil)
        let thread = Thread { [self] in
            mw_set_thread_name("mw-engine")
            engineThread.store(UInt(pthread_self()), ordering: .releasing)
            let engine: Engine
            do {
                engine = try Engine(configuration: configuration, options: options)
            } catch {
                failure.withLock { $0 = error }
                started.signal()
                finished.signal()
                return
            }
            engine.journaling = journal != nil
            if let state {
                engine.restore(state, now: clock.now(), wallNow: wallClockNanoseconds())
            }
            // Claimed only once the engine exists: if building it fails, the transport stays
            // unclaimed and its clients still close (in place).
            http.claim()
            started.signal()
            run(engine)
        }
        thread.start()
        started.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The least time between two state snapshots. Building one walks every open window and
    /// writing it encodes them all, so one per batch was most of the daemon's CPU under load
    /// (docs/performance.md); the file now lags the engine by at most this, plus one
    /// write. A crash inside that gap loses the newest changes: a window opened in it reopens at
    /// the resync if the capture is still under way; an undo queued in it is not sent again, so
    /// a muted agent stays muted (the safe side) until an operator acts.
    static let stateInterval: Duration = .seconds(1)

    /// Asks the thread to finish its current batch and stop; returns when it has.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        inbox.nudge()
        finished.wait()
    }

    private func run(_ engine: Engine) {
        let watchdogInterval = notifier.watchdogPingInterval
        var nextPing = clock.now()
        var persistedVersion: UInt64 = .max
        var nextStateAt = clock.now()
        var lastStatus = ""
        var nextStatus = clock.now()
        // Records not yet written, in order: see `writeRecords`.
        var unwritten: [AuditRecord] = []
        // Swapped with the inbox's queue at each batch, so that neither side reallocates.
        var inputs: [EngineInput] = []
        while !stopRequested.load(ordering: .acquiring) {
            let now = clock.now()
            // Every input's sends leave before any record of the batch is written: a window that
            // opens behind other inputs must not wait for their records (sanitize, format and
            // write(2), tens of microseconds each).
            var records: [AuditRecord] = []
            // Answers in, and the requests queued since the last round out.
            http.step()
            // Feeds parse what their transports received and post it; finished attempts post their results.
            executor.runJobs()
            inbox.take(into: &inputs)
            for input in inputs { handle(input, engine: engine, now: now, records: &records) }
            inputs.removeAll(keepingCapacity: true)
            engine.advance(to: now)
            startSends(engine.takeEffects(), at: now, deferring: &records)
            // Feeds that waited for their events' sends now prepare their next long poll.
            resumeSendWaiters()
            executor.runJobs()
            http.step()
            // The batch's sends are out: now the windows they opened go to the journal.
            if let journal, engine.hasJournal {
                journal.append(engine.takeJournal(now: now, wallNow: wallClockNanoseconds()))
            }
            unwritten.append(contentsOf: records)
            writeRecords(&unwritten)
            publish(engine)
            if engine.stateVersion != persistedVersion, now >= nextStateAt, let stateWriter {
                persistedVersion = engine.stateVersion
                // The snapshot covers every journal record handed over so far.
                let epoch = journal?.rotate()
                stateWriter.submit(
                    engine.stateImage(now: now, wallNow: wallClockNanoseconds()), version: persistedVersion, journalEpoch: epoch)
                nextStateAt = now + EngineLoop.stateInterval
            }
            // The ping comes from this loop, so a stuck engine stops it and systemd restarts us.
            if let watchdogInterval, now >= nextPing {
                notifier.notify("WATCHDOG=1")
                nextPing = now + watchdogInterval
            }
            if now >= nextStatus {
                let events = engine.statistics.eventsProcessed
                activity.withLock { $0.sample(events: events, at: now) }
                let status = statusLine(now: now)
                if status != lastStatus {
                    notifier.notify("STATUS=" + status)
                    lastStatus = status
                }
                nextStatus = now + .seconds(1)
            }
            var wake = engine.nextWakeup
            if watchdogInterval != nil { wake = min(wake ?? nextPing, nextPing) }
            wake = min(wake ?? nextStatus, nextStatus)
            if stateWriter != nil, engine.stateVersion != persistedVersion { wake = min(wake ?? nextStateAt, nextStateAt) }
            // Posts and jobs from this thread woke nothing: look before waiting.
            if executor.hasJobs || inbox.hasInputs || http.hasCommands || !unwritten.isEmpty { continue }
            // Nothing to do: build some of the state entries that the next snapshot would
            // otherwise build all at once (32 at a time keep an arrival's wait short).
            if stateWriter != nil,
                engine.persistTouchedWindows(atMost: 32, now: clock.now(), wallNow: wallClockNanoseconds())
            {
                continue
            }
            http.wait(atMostMilliseconds: wake.map { Self.milliseconds(from: clock.now(), to: $0) })
        }
        for record in unwritten { write(record) }
        resumeSendWaiters()
        executor.stop()
        // Attempts still in flight fail with `closed`; their tasks finish on the leftover thread.
        http.end()
        // The last word on state: what the engine holds as it stops.
        if let journal, engine.hasJournal { journal.append(engine.takeJournal(now: clock.now(), wallNow: wallClockNanoseconds())) }
        let finalEpoch = journal?.rotate()
        let final = engine.stateImage(now: clock.now(), wallNow: wallClockNanoseconds())
        finalStateStore.withLock { $0 = final.state }
        if let stateWriter {
            stateWriter.submit(final, version: engine.stateVersion, journalEpoch: finalEpoch)
            stateWriter.finish()
        }
        journal?.finish()
        finished.signal()
    }

    /// Rounded up: a wait that ends a little early would only spin.
    static func milliseconds(from now: MonotonicInstant, to deadline: MonotonicInstant) -> Int64 {
        max(0, (deadline.nanoseconds - now.nanoseconds + 999_999) / 1_000_000)
    }

    /// One line for `systemctl status`: calls, windows, feeds, and recent control failures.
    func statusLine(now: MonotonicInstant) -> String {
        let snapshot = self.snapshot
        let failures = controlFailures(inLastHourAt: now)
        let feeds = snapshot.feedsUp.keys.sorted().map { "\($0) \(snapshot.feedsUp[$0] == true ? "up" : "DOWN")" }
        return "\(snapshot.statistics.trackedCalls) calls, \(snapshot.statistics.openWindows) windows open; feeds: "
            + (feeds.isEmpty ? "none" : feeds.joined(separator: ", "))
            + "; control failures in the last hour: \(failures)"
    }

    /// PCI control failures logged in the hour before `now`.
    func controlFailures(inLastHourAt now: MonotonicInstant) -> Int {
        controlFailureTimes.withLock { times in
            times.removeAll { now.since($0) > .seconds(3600) }
            return times.count
        }
    }

    /// Replaces targets after a reload. Targets removed from the configuration stay reachable:
    /// a window kept by the reload may still need one to undo what it applied.
    func replaceTargets(_ replacements: [String: any ActionTarget]) {
        targetTable.withLock { table in
            for (name, target) in replacements { table[name] = target }
        }
    }

    /// Ingests one input and starts its sends at once; its audit records join `records`, in order.
    private func handle(_ input: EngineInput, engine: Engine, now: MonotonicInstant, records: inout [AuditRecord]) {
        switch input {
        case .update(let update):
            engine.ingest(update, at: now)
            inbox.ingested(1)
            activity.withLock { $0.lastEvent[update.feed] = now }
            metrics?.ingested(CollectionOfOne(update))
        case .updates(let updates):
            // A window that opens early in a long-poll answer sends before the rest of the answer
            // is ingested; every send of the batch still leaves before any of its records.
            var feedSeen: String?
            for update in updates {
                engine.ingest(update, at: now)
                if engine.hasEffects { startSends(engine.takeEffects(), at: now, deferring: &records) }
                if update.feed != feedSeen {
                    feedSeen = update.feed
                    activity.withLock { $0.lastEvent[update.feed] = now }
                }
            }
            inbox.ingested(updates.count)
            metrics?.ingested(updates)
        case .attemptFinished(let ticket, let result):
            engine.attemptFinished(ticket, result: result, at: now)
        case .beginShutdown:
            engine.beginShutdown(at: now)
        case .resync(let feed, let current):
            let outcome = engine.resync(feed: feed, current: current, at: now)
            records.append(
                AuditRecord(
                    .feedUp, .notice,
                    "feed \(feed) resynchronized: \(current.count) current call(s), \(outcome.callsEnded) ended while "
                        + "it was down, \(outcome.actionsReapplied) action(s) applied again",
                    [.feed: feed, .result: "resynced", .calls: String(current.count)]))
        case .reconfigure(let configuration, let reply):
            reply(Result { try engine.reconfigure(configuration, at: now) })
        case .status(let limit, let reply):
            reply(engine.statusSnapshot(limit: limit))
        case .feedState(let feed, let up, let detail, let expected):
            snapshotStore.withLock { $0.feedsUp[feed] = up }
            activity.withLock { $0.feedChanged(feed, up: up, detail: detail, at: now) }
            if expected {
                records.append(AuditRecord(.feedDown, .notice, "feed \(feed) stopped: \(detail)", [.feed: feed, .result: "stopped"]))
            } else if up {
                records.append(AuditRecord(.feedUp, .notice, "feed \(feed) is up: \(detail)", [.feed: feed, .result: "up"]))
            } else {
                records.append(
                    AuditRecord(
                        .feedDown, .error,
                        "feed \(feed) is down: \(detail); calls on it get no protection until it is back",
                        [.feed: feed, .result: "down", .reason: detail, .calls: String(engine.trackedCalls(onFeed: feed))]))
            }
        }
        // Sends go out as soon as they exist, so that an action never waits behind a batch.
        if engine.hasEffects { startSends(engine.takeEffects(), at: now, deferring: &records) }
        if case .beginShutdown = input { publish(engine) }
    }

    /// Starts `effects`' sends now and appends their audit records to `records`, in order: writing
    /// a record is a sanitize-format-write(2) on this thread, and a request should not wait behind it.
    private func startSends(_ effects: [EngineEffect], at now: MonotonicInstant, deferring records: inout [AuditRecord]) {
        let firstRecord = records.count
        var sent = false
        for effect in effects {
            switch effect {
            case .send(let request, let ticket):
                send(request, ticket)
                sent = true
            case .audit(let record):
                records.append(record)
            }
        }
        if sent {
            // The attempts build their requests and queue them now; the step hands them to libcurl,
            // which writes them to their connections before any record is written.
            executor.runJobs()
            http.step()
        }
        // Metrics after the sends, like the records they are read from.
        if let metrics, records.count > firstRecord {
            for record in records[firstRecord...] { metrics.observe(record, at: now) }
        }
    }

    /// Writes `records` in order, but stops early once another thread has handed this one work
    /// (a WebSocket frame, an attempt's result): that work's sends go first, and the rest of the
    /// records after them, still in order. A frame that arrived while a window's records were
    /// being written waited for all of them (seen in a `perf sched` trace; docs/performance.md).
    /// At most `recordsHeldBack` records wait, so the log never falls far behind under load.
    private func writeRecords(_ records: inout [AuditRecord]) {
        var written = 0
        while written < records.count {
            write(records[written])
            written += 1
            if records.count - written <= Self.recordsHeldBack, executor.hasJobs || inbox.hasInputs { break }
        }
        records.removeFirst(written)
    }

    static let recordsHeldBack = 4_096

    private func write(_ record: AuditRecord) {
        if record.kind == .actionFailed, record.severity == .critical {
            let now = clock.now()
            controlFailureTimes.withLock { $0.append(now) }
            activity.withLock { $0.controlFailed(record, at: now) }
        }
        audit.emit(record)
    }

    private func send(_ request: ActionRequest, _ ticket: AttemptTicket) {
        guard let target = targetTable.withLock({ $0[request.target] }) else {
            // The configuration loader checks every reference, so this is a bug.
            inbox.post(
                .attemptFinished(ticket, .failed(ActionFailure(.permanent, "no target named \(request.target) is running"))))
            return
        }
        attemptsInFlight.add(1, ordering: .relaxed)
        Task.detached(executorPreference: executor) { [self] in
            let result = await target.perform(request)
            attemptsInFlight.subtract(1, ordering: .relaxed)
            inbox.post(.attemptFinished(ticket, result))
        }
    }

    private func publish(_ engine: Engine) {
        let statistics = engine.statistics
        snapshotStore.withLock { $0.statistics = statistics }
    }

    /// The engine's state as the loop stopped; nil before.
    var finalState: EngineState? { finalStateStore.withLock { $0 } }

    /// Attempts started and not yet answered (tests read it from the engine thread).
    var attemptsInFlightCount: Int { attemptsInFlight.load(ordering: .relaxed) }

    var hasAttemptsInFlight: Bool { attemptsInFlightCount > 0 }
}

/// How feeds reach the engine loop.
final class EngineSink: CallUpdateSink {
    let loop: EngineLoop
    /// Cleared at shutdown: events that arrive after it are dropped, not half-processed.
    let accepting = Atomic<Bool>(true)

    init(loop: EngineLoop) { self.loop = loop }

    func deliver(_ update: CallUpdate) {
        guard accepting.load(ordering: .relaxed) else { return }
        loop.post(.update(update))
    }

    func deliver(contentsOf updates: [CallUpdate]) {
        guard accepting.load(ordering: .relaxed), !updates.isEmpty else { return }
        let woke = loop.post(updates.count == 1 ? .update(updates[0]) : .updates(updates))
        // A feed on another thread, having woken the engine, lets it run before preparing its
        // next long poll: the engine's sends are what is waited for (it shortened the hop from
        // feed to send, traced in docs/performance.md). A feed on the engine thread itself (the
        // daemon's own) has nothing to wait for.
        if woke, !loop.onEngineThread { sched_yield() }
    }

    func awaitCapacity() async {
        await loop.awaitSends()
        await loop.awaitCapacity()
    }

    var taskExecutor: (any TaskExecutor)? { loop.executor }

    func resync(feed: String, current: [CallUpdate]) {
        guard accepting.load(ordering: .relaxed) else { return }
        loop.post(.resync(feed: feed, current: current))
    }

    func feedStateChanged(feed: String, up: Bool, detail: String) {
        let shuttingDown = !accepting.load(ordering: .relaxed)
        loop.post(.feedState(feed: feed, up: up, detail: detail, expected: shuttingDown && !up))
    }
}
