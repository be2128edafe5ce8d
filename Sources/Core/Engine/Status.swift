import MutewardenModel

/// What the engine holds now, for `mutewarden status`: the oldest open windows with the state of
/// each action, and the actions under way. Built on the engine thread on request; the lists are
/// bounded, the totals are not.
public struct EngineStatusSnapshot: Sendable, Hashable {
    public struct WindowStatus: Sendable, Hashable {
        public var policy: String
        public var feed: String
        /// The opening call's primary id, as audit records print it.
        public var call: String
        public var agentExtension: String?
        public var mode: String
        /// The sequence that identifies the window in audit records (`window=`).
        public var sequence: UInt64
        public var openedAt: MonotonicInstant
        /// When the cap closes it.
        public var capAt: MonotonicInstant
        /// Restored from the state file and not seen since the restart.
        public var restored: Bool
        /// The opening call's attributes as the daemon's redactor renders them (allowlisted values
        /// only, PAN-masked): the same text as the `attributes=` field of its records.
        public var attributes: String?
        public var actions: [ActionStatus]
        public var callsCovered: Int
    }

    public struct ActionStatus: Sendable, Hashable {
        public enum State: String, Sendable, Hashable {
            /// Confirmed by the target, or by an event where the target confirms by event.
            case confirmed
            /// Sent or queued, not confirmed yet.
            case pending
            /// Its control failed (deadline passed, fallbacks too) and it is not confirmed since.
            case failed
            /// A dry-run policy: recorded, never sent.
            case simulated
        }

        /// `mute`, `pause-recording`.
        public var operation: String
        /// `call ID` or `extension EXT`.
        public var address: String
        /// The targets tried, the action's own first, then each fallback used.
        public var targets: [String]
        public var state: State
        /// When the first apply left: the time to protection runs from here.
        public var applyStartedAt: MonotonicInstant?
        public var confirmedAt: MonotonicInstant?
        /// A control failure happened and a later apply was confirmed.
        public var recovered: Bool
    }

    public struct JobStatus: Sendable, Hashable {
        public enum Phase: String, Sendable, Hashable {
            case queued
            case inFlight = "in-flight"
            case backoff
            case awaitingConfirmation = "awaiting-confirmation"
        }

        public var policy: String
        public var feed: String
        /// The window's opening call, as audit records print it.
        public var call: String
        /// `mute`, `unmute`, `pause-recording`, `resume-recording`.
        public var operation: String
        public var address: String
        public var target: String
        public var phase: Phase
        public var attempts: Int
        public var activatedAt: MonotonicInstant?
        public var deadline: MonotonicInstant?
        /// Retried with no deadline after a control failure, while its window is open.
        public var enforcing: Bool
        /// The last failure's code and message, as the target reported them (the daemon masks
        /// the message before it leaves the process).
        public var lastErrorCode: String?
        public var lastError: String?
    }

    public var windows: [WindowStatus] = []
    public var windowsTotal = 0
    public var jobs: [JobStatus] = []
    public var jobsTotal = 0
    public var jobsByPhase: [String: Int] = [:]
    public var statistics = EngineStatistics()
    public var maxCalls = 0

    public init() {}
}

extension Engine {
    /// The `limit` oldest open windows and the `limit` oldest jobs, with totals. It walks every
    /// window and job once, keeping only `limit` of each: a status costs the engine one pass, not a sort.
    public func statusSnapshot(limit: Int) -> EngineStatusSnapshot {
        var snapshot = EngineStatusSnapshot()
        snapshot.statistics = statistics
        snapshot.maxCalls = limits.maxCalls
        snapshot.windowsTotal = openWindows.count
        snapshot.jobsTotal = jobs.count
        let oldestWindows = Self.oldest(openWindows.values, limit: limit) { ($0.openedAt, $0.id) }
        snapshot.windows = oldestWindows.map(windowStatus)
        for job in jobs.values {
            snapshot.jobsByPhase[Self.phase(job.phase).rawValue, default: 0] += 1
        }
        let oldestJobs = Self.oldest(jobs.values, limit: limit) { ($0.activatedAt ?? $0.window.openedAt, $0.id) }
        snapshot.jobs = oldestJobs.map { job in
            EngineStatusSnapshot.JobStatus(
                policy: job.request.policy, feed: job.window.subject.feed, call: job.window.subject.id,
                operation: job.request.kind.operation(job.request.verb), address: job.request.address.description,
                target: job.request.target, phase: Self.phase(job.phase), attempts: job.attempts, activatedAt: job.activatedAt,
                deadline: job.enforcing ? nil : job.deadline, enforcing: job.enforcing, lastErrorCode: job.lastError?.code,
                lastError: job.lastError?.message)
        }
        return snapshot
    }

    private func windowStatus(_ window: Window) -> EngineStatusSnapshot.WindowStatus {
        let actions = window.engagements.map { engagement in
            let state: EngineStatusSnapshot.ActionStatus.State
            if engagement.confirmedAt != nil {
                state = .confirmed
            } else if window.definition.mode == .dryRun {
                state = .simulated
            } else if engagement.controlFailed {
                state = .failed
            } else {
                state = .pending
            }
            return EngineStatusSnapshot.ActionStatus(
                operation: window.definition.actions[engagement.action].kind.operation(.apply),
                address: engagement.address.description, targets: engagement.targets.map(\.target), state: state,
                applyStartedAt: engagement.applyStartedAt, confirmedAt: engagement.confirmedAt,
                recovered: engagement.recovered)
        }
        return EngineStatusSnapshot.WindowStatus(
            policy: window.definition.name, feed: window.subject.feed, call: window.subject.id,
            agentExtension: window.agentExtension, mode: window.definition.mode.rawValue, sequence: window.sequence,
            openedAt: window.openedAt, capAt: window.capAt, restored: window.restored,
            attributes: calls[window.subject].map { options.renderAttributes($0.attributes) }, actions: actions,
            callsCovered: window.covered.count)
    }

    private static func phase(_ phase: ActionJob.Phase) -> EngineStatusSnapshot.JobStatus.Phase {
        switch phase {
        case .queued: .queued
        case .inFlight: .inFlight
        case .backoff: .backoff
        case .awaitingConfirmation: .awaitingConfirmation
        }
    }

    /// The `limit` smallest elements by `key`, in order, in one pass over `elements`.
    static func oldest<Element, Key: Comparable>(
        _ elements: some Sequence<Element>, limit: Int, by key: (Element) -> (Key, UInt64)
    ) -> [Element] {
        guard limit > 0 else { return [] }
        var kept: [(key: (Key, UInt64), element: Element)] = []
        kept.reserveCapacity(limit + 1)
        for element in elements {
            let k = key(element)
            if kept.count == limit, let last = kept.last, !(k < last.key) { continue }
            let index = kept.firstIndex { k < $0.key } ?? kept.count
            kept.insert((k, element), at: index)
            if kept.count > limit { kept.removeLast() }
        }
        return kept.map(\.element)
    }
}
