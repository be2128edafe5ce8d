import MutewardenModel

/// What the engine asks the daemon to do. The engine itself performs no I/O.
public enum EngineEffect: Sendable {
    /// Perform one attempt of an action and report back with ``Engine/attemptFinished(_:result:at:)``.
    case send(ActionRequest, AttemptTicket)
    case audit(AuditRecord)
}

/// Names one attempt of one action job, so that a late answer to an old attempt is recognised.
public struct AttemptTicket: Sendable, Hashable {
    public var job: UInt64
    public var attempt: Int
}

/// Counters an operator reads in the status line.
public struct EngineStatistics: Sendable, Hashable {
    public var trackedCalls = 0
    public var openWindows = 0
    public var jobsInProgress = 0
    /// PCI control failures (an apply not confirmed by its deadline) since start.
    public var controlFailures = 0
    public var eventsProcessed: UInt64 = 0
    /// Duplicated or reordered events recognised by sequence, or late events for released calls.
    public var staleEventsDropped: UInt64 = 0
    /// New calls refused because the tracker was full.
    public var callsRefused: UInt64 = 0
    public var callsExpired: UInt64 = 0

    public init() {}
}

/// Tunables that are not policy: set by the daemon, and by tests to make runs reproducible.
public struct EngineOptions: Sendable {
    /// Seed for the retry jitter.
    public var randomSeed: UInt64
    /// Renders a call's attributes for an audit record. The daemon passes an allowlisting redactor;
    /// the default shows keys only, never values.
    public var renderAttributes: @Sendable ([String: String]) -> String
    /// How many released calls are remembered, so that a late event cannot resurrect one.
    public var releasedMemory: Int
    public var releasedMemoryDuration: Duration
    /// How often idle calls are looked for.
    public var idleSweepInterval: Duration
    /// At most one "tracker full" record per this interval; the count of refused calls is kept.
    public var trackerFullReportInterval: Duration

    public init(
        randomSeed: UInt64 = UInt64.random(in: 0...UInt64.max),
        renderAttributes: @escaping @Sendable ([String: String]) -> String = { attributes in
            var rendered = ""
            for key in attributes.keys.sorted() {
                if !rendered.isEmpty { rendered += "," }
                rendered += key
                rendered += "=<redacted>"
            }
            return rendered
        },
        releasedMemory: Int = 10_000,
        releasedMemoryDuration: Duration = .seconds(600),
        idleSweepInterval: Duration = .seconds(30),
        trackerFullReportInterval: Duration = .seconds(10)
    ) {
        self.randomSeed = randomSeed
        self.renderAttributes = renderAttributes
        self.releasedMemory = releasedMemory
        self.releasedMemoryDuration = releasedMemoryDuration
        self.idleSweepInterval = idleSweepInterval
        self.trackerFullReportInterval = trackerFullReportInterval
    }
}

/// The decision core: tracks every active call, opens and closes policy windows, and drives each
/// action to confirmation, a retry, a fallback, or an alarm.
///
/// Single-threaded by design: one owner calls it (the daemon's engine thread, or a test), passing
/// the current monotonic instant to every entry point. Effects accumulate until ``takeEffects()``.
public final class Engine {
    struct CallKey: Hashable {
        var feed: String
        var id: String

        // Call ids are unique enough on their own; hashing the feed name too would double the
        // cost of the hottest lookup for nothing. Equality still compares both.
        func hash(into hasher: inout Hasher) { hasher.combine(id) }
    }

    struct ExtensionKey: Hashable {
        var feed: String
        var agentExtension: String
    }

    /// A class, so that evaluating a policy on every event does not copy its definition.
    final class CompiledPolicy {
        let definition: PolicyDefinition
        let start: CompiledCondition
        let stop: CompiledCondition?
        /// The actions as the state file has them: one array that every window of the policy
        /// shares, rather than one copy per window's entry.
        let actionStates: [ActionSpecState]

        init(definition: PolicyDefinition, start: CompiledCondition, stop: CompiledCondition?) {
            self.definition = definition
            self.start = start
            self.stop = stop
            actionStates = ActionSpecState.states(of: definition)
        }
    }

    /// Per call and per policy watching its feed.
    struct PolicySlot {
        /// A window may open only after the start condition has been seen false (or never seen):
        /// one capture never opens two windows, even after a cap expiry or a duplicated event.
        var armed = true
        /// The open window this call holds (its own, or the extension window it triggered).
        var window: Window?
        var windowsOpened: UInt64 = 0
    }

    final class TrackedCall {
        let key: CallKey
        var ids: CallIdentifiers
        var agentExtension: String?
        var direction: CallDirection
        var state: CallState
        var attributes: [String: String] = [:]
        var mute: ReportedMute?
        var recording: ReportedRecording?
        var lastSequence: UInt64?
        var lastEventAt: MonotonicInstant
        /// The policies watching this call's feed, resolved once when the call is first seen.
        let routing: [Int]
        var slots: [PolicySlot]
        /// Jobs waiting for this call's reported state to confirm them.
        var awaitingConfirmation: [UInt64] = []

        init(key: CallKey, update: CallUpdate, routing: [Int], now: MonotonicInstant) {
            self.key = key
            self.routing = routing
            ids = update.ids
            agentExtension = update.agentExtension
            direction = update.direction
            state = update.state
            lastEventAt = now
            slots = Array(repeating: PolicySlot(), count: routing.count)
        }
    }

    enum TimerPayload {
        /// By id, not by reference: a closed window must not live on in the heap until its cap.
        case cap(UInt64)
        case deadline(UInt64)
        case retry(UInt64, attempt: Int)
    }

    // Configuration.
    var policies: [CompiledPolicy] = []
    var policiesByFeed: [String: [Int]] = [:]
    var targets: [String: TargetDescriptor] = [:]
    var limits: TrackerLimits
    let options: EngineOptions
    /// Calls are indexed by extension only when a policy works by extension (extension scope, or
    /// actions addressed by extension): otherwise the index is upkeep on every call for nothing.
    var needsExtensionIndex = false

    // Call tracking.
    var calls: [CallKey: TrackedCall] = [:]
    var callsByExtension: [ExtensionKey: [CallKey]] = [:]
    var released: [CallKey: MonotonicInstant] = [:]
    var releasedOrder: [(key: CallKey, at: MonotonicInstant)] = []
    var releasedOrderHead = 0

    // Windows and jobs.
    var extensionWindows: [ExtensionWindowKey: Window] = [:]
    var extensionWindowsOpened: [ExtensionWindowKey: UInt64] = [:]
    /// Every open window, by id: what the state file holds.
    var openWindows: [UInt64: Window] = [:]
    /// Restored call-scope windows whose call has not been seen since the restart.
    var restoredWindows: [RestoredKey: Window] = [:]
    /// Bumped by every change the state file must reflect.
    public internal(set) var stateVersion: UInt64 = 0
    /// The state file's entry for each open window, rebuilt at the next snapshot only for the
    /// windows in `windowsToPersist`: see ``stateImage(now:wallNow:)``.
    var persistedWindows: [UInt64: PersistedWindow] = [:]
    /// Windows opened and closed since the daemon last took them (``takeJournal(now:wallNow:)``);
    /// only while ``journaling`` is on, so that an engine nobody journals keeps nothing.
    var journalEvents: [JournalEvent] = []
    /// Set by a daemon that keeps a window journal.
    public var journaling = false
    var windowsToPersist: [Window] = []
    /// How much of `windowsToPersist` is done: it is emptied only once all of it is.
    var windowsToPersistHead = 0
    /// Open windows by the call that opened them: a window's entry names that call's current ids.
    var windowsBySubject: [CallKey: [Window]] = [:]
    var nextWindowID: UInt64 = 1
    var jobs: [UInt64: ActionJob] = [:]
    var lanes: [LaneKey: [UInt64]] = [:]
    var nextJobID: UInt64 = 1

    var timers = TimerQueue<TimerPayload>()
    var random: SplitMix64
    var effects: [EngineEffect] = []
    var stats = EngineStatistics()
    var nextIdleSweep: MonotonicInstant?
    var lastTrackerFullReport: MonotonicInstant?
    /// Set by ``beginShutdown(at:)``: caps and the idle sweep stop, so that what is in place stays.
    var shuttingDown = false
    /// Set while a resync applies the platform's listing: contradictions are handled once, after
    /// it, by ``resync(feed:current:at:)``.
    var resyncing = false

    /// Compiles the configuration. Throws only for a regex that does not compile, which the
    /// configuration loader has already refused with its location.
    public init(configuration: EngineConfiguration, options: EngineOptions = EngineOptions()) throws {
        self.options = options
        limits = configuration.limits
        random = SplitMix64(seed: options.randomSeed)
        for target in configuration.targets { targets[target.name] = target }
        for (index, definition) in configuration.policies.enumerated() {
            policies.append(
                CompiledPolicy(
                    definition: definition,
                    start: try CompiledCondition(definition.start),
                    stop: try definition.stop.map(CompiledCondition.init)))
            for feed in definition.feeds { policiesByFeed[feed, default: []].append(index) }
            if definition.scope == .agentExtension || definition.actions.contains(where: { $0.addressing == .agentExtension }) {
                needsExtensionIndex = true
            }
        }
    }

    // MARK: - Entry points

    /// Everything the daemon must carry out, in order. Clears the list.
    public func takeEffects() -> [EngineEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    /// True when effects are waiting; cheaper than taking them.
    public var hasEffects: Bool { !effects.isEmpty }

    public var statistics: EngineStatistics {
        var current = stats
        current.trackedCalls = calls.count
        current.openWindows = openWindows.count
        current.jobsInProgress = jobs.count
        return current
    }

    /// The calls tracked on `feed`: what a feed that goes down may leave unseen.
    public func trackedCalls(onFeed feed: String) -> Int {
        calls.keys.reduce(0) { $0 + ($1.feed == feed ? 1 : 0) }
    }

    /// The earliest instant at which ``advance(to:)`` has work: a deadline, a retry, a cap, a sweep.
    public var nextWakeup: MonotonicInstant? {
        switch (timers.nextDue, nextIdleSweep) {
        case (nil, nil): nil
        case (let a?, nil): a
        case (nil, let b?): b
        case (let a?, let b?): min(a, b)
        }
    }

    /// The daemon is stopping and its feeds have stopped. Actions under way may finish, but no
    /// window closes any more (open windows stay in place: muted stays muted), and actions that
    /// can only be confirmed by an event stop waiting for one.
    public func beginShutdown(at now: MonotonicInstant) {
        shuttingDown = true
        nextIdleSweep = nil
        for job in jobs.values.sorted(by: { $0.id < $1.id }) {
            if job.enforcing, job.phase != .inFlight {
                finish(
                    job, now: now,
                    outcome: .abandoned("the daemon stopped while the action was still unconfirmed after its control failure"))
            } else if job.phase == .awaitingConfirmation {
                finish(job, now: now, outcome: .abandoned("accepted, but the daemon stopped before an event confirmed it"))
            }
        }
    }

    /// Takes one normalized call event.
    public func ingest(_ update: CallUpdate, at now: MonotonicInstant) {
        stats.eventsProcessed &+= 1
        if nextIdleSweep == nil, !shuttingDown { nextIdleSweep = now + options.idleSweepInterval }
        let key = CallKey(feed: update.feed, id: update.ids.primary)

        guard let call = calls[key] else {
            admitNewCall(key: key, update: update, now: now)
            return
        }
        if let sequence = update.sequence {
            if let last = call.lastSequence, sequence <= last {
                stats.staleEventsDropped &+= 1
                return
            }
            call.lastSequence = sequence
        }
        call.lastEventAt = now
        apply(update, to: call, now: now)
    }

    /// Fires every timer due at `now`: retries, deadlines, window caps, the idle sweep.
    public func advance(to now: MonotonicInstant) {
        while let payload = timers.popDue(at: now) {
            switch payload {
            case .cap(let id): if let window = openWindows[id] { capExpired(window, now: now) }
            case .deadline(let job): deadlinePassed(job, now: now)
            case .retry(let job, let attempt): retryDue(job, attempt: attempt, now: now)
            }
        }
        if let sweep = nextIdleSweep, sweep <= now {
            sweepIdleCalls(now: now)
            nextIdleSweep = now + options.idleSweepInterval
        }
    }

    // MARK: - Call tracking

    private func admitNewCall(key: CallKey, update: CallUpdate, now: MonotonicInstant) {
        if let releasedAt = released[key] {
            if now.since(releasedAt) < options.releasedMemoryDuration {
                stats.staleEventsDropped &+= 1
                return
            }
            released[key] = nil
        }
        if isStaleForRestoredWindow(update, key: key) {
            stats.staleEventsDropped &+= 1
            return
        }
        // A call first seen as released needs nothing from us.
        if update.state == .released { return }
        guard calls.count < limits.maxCalls else {
            refuseCall(update, now: now)
            return
        }
        let call = TrackedCall(key: key, update: update, routing: policiesByFeed[update.feed] ?? [], now: now)
        call.lastSequence = update.sequence
        calls[key] = call
        touchWindows(openedBy: key)
        if let ext = update.agentExtension { indexExtension(call, ext) }
        reattachRestoredWindows(to: call)
        apply(update, to: call, now: now, isNew: true)
    }

    private func refuseCall(_ update: CallUpdate, now: MonotonicInstant) {
        stats.callsRefused &+= 1
        if let last = lastTrackerFullReport, now.since(last) < options.trackerFullReportInterval { return }
        lastTrackerFullReport = now
        audit(
            .trackerFull, .error,
            "call tracker full at \(limits.maxCalls) calls: new calls are not tracked and get no protection",
            [
                .feed: update.feed, .call: update.ids.primary, .result: "refused",
                .reason: "\(stats.callsRefused) calls refused since start",
            ])
    }

    private func apply(_ update: CallUpdate, to call: TrackedCall, now: MonotonicInstant, isNew: Bool = false) {
        if !isNew {
            if call.ids != update.ids {
                call.ids = update.ids
                touchWindows(openedBy: call.key)
            }
            call.direction = update.direction
            // nil means the event does not say: the call keeps the extension it had.
            if let ext = update.agentExtension, ext != call.agentExtension {
                if let old = call.agentExtension { unindexExtension(call.key, old) }
                call.agentExtension = ext
                indexExtension(call, ext)
            }
        }
        call.state = update.state
        if let attributes = update.attributes { call.attributes = attributes }
        var reportedChanged = false
        if let mute = update.mute, mute != call.mute {
            call.mute = mute
            reportedChanged = true
        }
        if let recording = update.recording, recording != call.recording {
            call.recording = recording
            reportedChanged = true
        }

        if update.state == .released {
            release(call, now: now)
            return
        }
        if reportedChanged || (isNew && (update.mute != nil || update.recording != nil)),
            !call.awaitingConfirmation.isEmpty
        {
            checkConfirmations(for: call, now: now)
        }
        if reportedChanged, !isNew, !resyncing, !openWindows.isEmpty { checkDrift(for: call, now: now) }
        let routing = call.routing
        for slot in routing.indices { evaluate(policy: routing[slot], slot: slot, call: call, now: now) }
    }

    private func indexExtension(_ call: TrackedCall, _ ext: String) {
        guard needsExtensionIndex else { return }
        let key = ExtensionKey(feed: call.key.feed, agentExtension: ext)
        callsByExtension[key, default: []].append(call.key)
        extendExtensionWindows(to: call, on: key)
    }

    private func unindexExtension(_ callKey: CallKey, _ ext: String) {
        guard needsExtensionIndex else { return }
        let key = ExtensionKey(feed: callKey.feed, agentExtension: ext)
        guard var list = callsByExtension[key] else { return }
        list.removeAll { $0 == callKey }
        callsByExtension[key] = list.isEmpty ? nil : list
    }

    func activeCalls(on key: ExtensionKey) -> [CallKey] { callsByExtension[key] ?? [] }

    private func release(_ call: TrackedCall, now: MonotonicInstant) {
        forget(call, now: now, reason: .callEnded)
        rememberReleased(call.key, now: now)
    }

    /// Drops a call: its windows close without undo for the call itself (nothing to unmute on a
    /// call that is gone), and its pending actions stop.
    func forget(_ call: TrackedCall, now: MonotonicInstant, reason: CloseReason) {
        calls[call.key] = nil
        touchWindows(openedBy: call.key)
        if let ext = call.agentExtension { unindexExtension(call.key, ext) }
        for index in call.slots.indices {
            guard let window = call.slots[index].window else { continue }
            call.slots[index].window = nil
            callLeft(window, call: call.key, now: now, reason: reason)
        }
        if !extensionWindows.isEmpty {
            for window in extensionWindowsCovering(call) {
                callLeft(window, call: call.key, now: now, reason: reason)
            }
        }
        abandonJobs(
            forCall: call.key, now: now,
            reason: reason == .callExpired ? "the call expired after no event for the idle limit" : "the call ended")
    }

    func rememberReleased(_ key: CallKey, now: MonotonicInstant) {
        released[key] = now
        releasedOrder.append((key, now))
        while released.count > options.releasedMemory, releasedOrderHead < releasedOrder.count {
            forgetReleased(releasedOrder[releasedOrderHead])
            releasedOrderHead += 1
        }
        compactReleasedOrder()
    }

    /// Only the entry's own release is forgotten: the same call id may have been released again.
    private func forgetReleased(_ entry: (key: CallKey, at: MonotonicInstant)) {
        if released[entry.key] == entry.at { released[entry.key] = nil }
    }

    private func compactReleasedOrder() {
        if releasedOrderHead > 1024, releasedOrderHead * 2 > releasedOrder.count {
            releasedOrder.removeFirst(releasedOrderHead)
            releasedOrderHead = 0
        }
    }

    private func sweepIdleCalls(now: MonotonicInstant) {
        let idle = calls.values.filter { now.since($0.lastEventAt) >= limits.idleLimit }
        for call in idle.sorted(by: { $0.key.id < $1.key.id }) {
            stats.callsExpired &+= 1
            audit(
                .callExpired, .warning,
                "call \(call.key.id) had no event for \(limits.idleLimit.compact); no longer tracked",
                [
                    .feed: call.key.feed, .call: call.key.id, .extension: call.agentExtension ?? "",
                    .result: "expired",
                ])
            forget(call, now: now, reason: .callExpired)
        }
        while releasedOrderHead < releasedOrder.count {
            let entry = releasedOrder[releasedOrderHead]
            if now.since(entry.at) < options.releasedMemoryDuration { break }
            forgetReleased(entry)
            releasedOrderHead += 1
        }
        compactReleasedOrder()
    }

    func audit(_ kind: AuditKind, _ severity: AuditSeverity, _ message: String, _ fields: AuditFields) {
        effects.append(.audit(AuditRecord(kind, severity, message, fields)))
    }
}
