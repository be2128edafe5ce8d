import Foundation
import MutewardenEngine
import MutewardenLogging
import MutewardenModel

/// What the engine loop remembers for `mutewarden status` beyond the engine's own state. Written
/// by the engine thread (a lock taken once per input, uncontended), read by the status request.
struct LoopActivity: Sendable {
    struct Feed: Sendable {
        var up = false
        var since: MonotonicInstant
        var detail = "not started yet"
    }

    struct Failure: Sendable {
        var at: MonotonicInstant
        var record: AuditRecord
    }

    var feeds: [String: Feed] = [:]
    var lastEvent: [String: MonotonicInstant] = [:]
    /// The newest control failures, oldest first; at most ``recentFailuresKept``.
    var recentFailures: [Failure] = []
    var failuresSinceStart = 0
    /// The events count once a second, oldest first; a minute's worth.
    var samples: [(at: MonotonicInstant, events: UInt64)] = []

    static let recentFailuresKept = 10
    static let samplesKept = 61

    init(feeds: [String], now: MonotonicInstant) {
        for feed in feeds { self.feeds[feed] = Feed(since: now) }
    }

    mutating func feedChanged(_ feed: String, up: Bool, detail: String, at now: MonotonicInstant) {
        var entry = feeds[feed] ?? Feed(since: now)
        if entry.up != up { entry.since = now }
        entry.up = up
        entry.detail = detail
        feeds[feed] = entry
    }

    mutating func controlFailed(_ record: AuditRecord, at now: MonotonicInstant) {
        failuresSinceStart += 1
        recentFailures.append(Failure(at: now, record: record))
        if recentFailures.count > Self.recentFailuresKept { recentFailures.removeFirst() }
    }

    mutating func sample(events: UInt64, at now: MonotonicInstant) {
        samples.append((now, events))
        if samples.count > Self.samplesKept { samples.removeFirst() }
    }

    /// Events per second over about the last `span`, from the samples; nil before two samples.
    func eventRate(over span: Duration, now: MonotonicInstant) -> Double? {
        guard let last = samples.last else { return nil }
        guard let first = samples.first(where: { now.since($0.at) <= span + .milliseconds(500) }), first.at < last.at else {
            return nil
        }
        return Double(last.events &- first.events) / last.at.since(first.at).seconds
    }
}

/// The answer to `status`: the JSON schema documented in docs/operations.md ("Looking at a running
/// daemon"). Keys are snake_case on the wire. Fields are added, never renamed or removed, within
/// one `schema` number.
public struct DaemonStatus: Codable, Sendable, Hashable {
    public static let schemaVersion = 1

    public struct Configuration: Codable, Sendable, Hashable {
        public var files: [String]
        /// 1 at start, one more per applied reload.
        public var generation: Int
        public var loadedAt: String
        /// The configuration's digest, as the `config.loaded` record carries it (`sha256:…`).
        public var digest: String?
    }

    public struct Engine: Codable, Sendable, Hashable {
        /// False when the engine did not answer in time: the lists below are then empty and the
        /// counters are the last the engine published.
        public var answered: Bool
        /// Call updates handed to the engine and not yet taken.
        public var queueDepth: Int
        public var eventsProcessed: UInt64
        /// Over about the last 10 s, and the last minute; absent for the first seconds. (No digits
        /// in key names: snake_case conversion does not round-trip them.)
        public var eventsPerSecondRecent: Double?
        public var eventsPerSecondMinute: Double?
        public var callsTracked: Int
        public var callsCapacity: Int?
        public var callsRefused: UInt64
        public var staleEventsDropped: UInt64
        public var attemptsInFlight: Int
    }

    public struct Feed: Codable, Sendable, Hashable {
        public var name: String
        /// `up` or `down`.
        public var state: String
        public var since: String
        public var sinceSeconds: Double
        /// The last state change's reason, PAN-masked.
        public var detail: String
        public var lastEventAt: String?
        public var lastEventSecondsAgo: Double?
    }

    public struct Action: Codable, Sendable, Hashable {
        public var operation: String
        public var address: String
        public var targets: [String]
        /// `confirmed`, `pending`, `failed` (its control failed, not confirmed since), `simulated` (dry-run).
        public var state: String
        /// From the first apply to its confirmation.
        public var timeToProtectionMs: Double?
        public var recovered: Bool
    }

    public struct Window: Codable, Sendable, Hashable {
        public var policy: String
        public var feed: String
        public var call: String
        public var agentExtension: String?
        public var window: String
        public var mode: String
        public var openedAt: String
        public var ageSeconds: Double
        public var capInSeconds: Double
        public var restored: Bool
        /// Every action confirmed.
        public var confirmed: Bool
        /// As the audit records print them: allowlisted values only, PAN-masked.
        public var attributes: String?
        public var callsCovered: Int
        public var actions: [Action]
    }

    public struct Windows: Codable, Sendable, Hashable {
        public var open: Int
        /// The oldest open windows, at most ``DaemonStatus/listLimit``.
        public var listed: [Window]
    }

    public struct Job: Codable, Sendable, Hashable {
        public var policy: String
        public var feed: String
        public var call: String
        public var operation: String
        public var address: String
        public var target: String
        /// `queued`, `in-flight`, `backoff`, `awaiting-confirmation`.
        public var phase: String
        public var attempts: Int
        public var ageSeconds: Double?
        public var deadlineInSeconds: Double?
        public var enforcing: Bool
        public var lastErrorCode: String?
        /// PAN-masked.
        public var lastError: String?
    }

    public struct Actions: Codable, Sendable, Hashable {
        public var inProgress: Int
        public var byPhase: [String: Int]
        /// The oldest, at most ``DaemonStatus/listLimit``.
        public var listed: [Job]
    }

    public struct Failure: Codable, Sendable, Hashable {
        public var at: String
        public var secondsAgo: Double
        public var policy: String?
        public var feed: String?
        public var call: String?
        public var window: String?
        public var action: String?
        public var target: String?
        public var errorCode: String?
        /// The record's message, masked as the audit record is.
        public var message: String
    }

    public struct ControlFailures: Codable, Sendable, Hashable {
        public var lastHour: Int
        public var sinceStart: Int
        /// The newest, at most ten, newest last.
        public var recent: [Failure]
    }

    public var schema = DaemonStatus.schemaVersion
    public var version: String
    public var pid: Int32
    /// `running`, or `stopping` once a stop has begun.
    public var state: String
    public var startedAt: String
    public var uptimeSeconds: Double
    public var generatedAt: String
    public var configuration: Configuration
    public var engine: Engine
    public var feeds: [Feed]
    public var windows: Windows
    public var actions: Actions
    public var controlFailures: ControlFailures

    /// Windows and actions listed, each.
    public static let listLimit = 50

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}

/// The socket's answer: `{"ok":true,"status":{…}}`, or `{"ok":false,"code":…,"error":…}`.
public struct ControlAnswer: Codable, Sendable {
    public var ok: Bool
    public var status: DaemonStatus?
    public var code: String?
    public var error: String?

    public init(status: DaemonStatus) {
        ok = true
        self.status = status
    }
}

/// Turns monotonic instants into the wall-clock times and ages a status shows.
struct StatusClock {
    let now: MonotonicInstant
    let wallNow: Int64

    func wall(_ instant: MonotonicInstant) -> String {
        let nanoseconds = wallNow &- (now.nanoseconds &- instant.nanoseconds)
        return Self.iso8601(nanoseconds)
    }

    func age(_ instant: MonotonicInstant) -> Double { Self.rounded(now.since(instant).seconds) }
    func until(_ instant: MonotonicInstant) -> Double { Self.rounded(instant.since(now).seconds) }

    static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    static func iso8601(_ nanoseconds: Int64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let milliseconds = Int((nanoseconds % 1_000_000_000) / 1_000_000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), max(0, milliseconds))
    }
}

extension DaemonStatus {
    /// Builds the answer from what the loop and (if it answered) the engine know. Every text that
    /// came from a platform or a call goes through the same masking as the audit records.
    static func make(
        engine snapshot: EngineStatusSnapshot?, loop: EngineSnapshot, activity: LoopActivity, queueDepth: Int,
        attemptsInFlight: Int, failuresLastHour: Int, configuration: Configuration, stopping: Bool,
        started: MonotonicInstant, clock: StatusClock
    ) -> DaemonStatus {
        let statistics = snapshot?.statistics ?? loop.statistics
        // Names come from the configuration, not from a call; the journal masks them all the same
        // (a name is not an identifier field), and so does this.
        let masked: (String) -> String = PANMasker.maskForLog
        let feeds = activity.feeds.keys.sorted().map { name in
            let feed = activity.feeds[name]!
            return Feed(
                name: masked(name), state: feed.up ? "up" : "down", since: clock.wall(feed.since), sinceSeconds: clock.age(feed.since),
                detail: PANMasker.maskForLog(feed.detail), lastEventAt: activity.lastEvent[name].map(clock.wall),
                lastEventSecondsAgo: activity.lastEvent[name].map(clock.age))
        }
        let windows = (snapshot?.windows ?? []).map { window in
            Window(
                policy: masked(window.policy), feed: masked(window.feed), call: LogRecordSanitizer.loggable(window.call, forKey: "call"),
                agentExtension: window.agentExtension.map { LogRecordSanitizer.loggable($0, forKey: "extension") },
                window: String(window.sequence), mode: window.mode, openedAt: clock.wall(window.openedAt),
                ageSeconds: clock.age(window.openedAt), capInSeconds: clock.until(window.capAt), restored: window.restored,
                confirmed: !window.actions.isEmpty && window.actions.allSatisfy { $0.state == .confirmed },
                attributes: window.attributes, callsCovered: window.callsCovered,
                actions: window.actions.map { action in
                    Action(
                        operation: action.operation, address: Self.maskedAddress(action.address), targets: action.targets.map(masked),
                        state: action.state.rawValue,
                        timeToProtectionMs: action.confirmedAt.flatMap { confirmed in
                            action.applyStartedAt.map { StatusClock.rounded(confirmed.since($0).milliseconds) }
                        }, recovered: action.recovered)
                })
        }
        let jobs = (snapshot?.jobs ?? []).map { job in
            Job(
                policy: masked(job.policy), feed: masked(job.feed), call: LogRecordSanitizer.loggable(job.call, forKey: "call"),
                operation: job.operation, address: Self.maskedAddress(job.address), target: masked(job.target), phase: job.phase.rawValue,
                attempts: job.attempts, ageSeconds: job.activatedAt.map(clock.age), deadlineInSeconds: job.deadline.map(clock.until),
                enforcing: job.enforcing, lastErrorCode: job.lastErrorCode.map(PANMasker.maskForLog),
                lastError: job.lastError.map(PANMasker.maskForLog))
        }
        let failures = activity.recentFailures.map { failure in
            let record = failure.record
            let metadata = AuditLogger.metadata(for: record)
            func field(_ key: AuditField) -> String? {
                guard case .string(let value)? = metadata[key.rawValue], !value.isEmpty else { return nil }
                return value
            }
            return Failure(
                at: clock.wall(failure.at), secondsAgo: clock.age(failure.at), policy: field(.policy), feed: field(.feed),
                call: field(.call), window: field(.window), action: field(.action), target: field(.target),
                errorCode: field(.errorCode), message: LogRecordSanitizer.maskMessage(record.message, keeping: metadata))
        }
        return DaemonStatus(
            version: MutewardenVersion.current, pid: getpid(), state: stopping ? "stopping" : "running",
            startedAt: clock.wall(started), uptimeSeconds: clock.age(started), generatedAt: clock.wall(clock.now),
            configuration: Configuration(
                files: configuration.files.map(masked), generation: configuration.generation, loadedAt: configuration.loadedAt,
                digest: configuration.digest),
            engine: Engine(
                answered: snapshot != nil, queueDepth: queueDepth, eventsProcessed: statistics.eventsProcessed,
                eventsPerSecondRecent: activity.eventRate(over: .seconds(10), now: clock.now).map(StatusClock.rounded),
                eventsPerSecondMinute: activity.eventRate(over: .seconds(60), now: clock.now).map(StatusClock.rounded),
                callsTracked: statistics.trackedCalls, callsCapacity: snapshot?.maxCalls, callsRefused: statistics.callsRefused,
                staleEventsDropped: statistics.staleEventsDropped, attemptsInFlight: attemptsInFlight),
            feeds: feeds,
            windows: Windows(open: snapshot?.windowsTotal ?? statistics.openWindows, listed: windows),
            actions: Actions(
                inProgress: snapshot?.jobsTotal ?? statistics.jobsInProgress, byPhase: snapshot?.jobsByPhase ?? [:], listed: jobs),
            controlFailures: ControlFailures(lastHour: failuresLastHour, sinceStart: activity.failuresSinceStart, recent: failures))
    }

    /// "call ID" keeps the id whole as the `call=` field does; anything else is masked as text.
    static func maskedAddress(_ address: String) -> String {
        if address.hasPrefix("call ") {
            return "call " + LogRecordSanitizer.loggable(String(address.dropFirst(5)), forKey: "call")
        }
        return PANMasker.maskForLog(address)
    }
}
