import MutewardenLogging
import MutewardenModel

/// Builds a ``Report`` from audit records given in time order. Pure: no I/O, no clock; the
/// readers feed it, and the tests feed it records they make.
///
/// Windows are followed from `window.opened` to `window.closed` (or the shutdown that left them
/// in place) by their fields `feed`, `policy`, `call` and `window`. Only windows still open are
/// kept: an ended window is folded into counters, and kept only when it goes on a list (a
/// control failure, an exception), so that a month of records costs the memory of its open
/// windows, not of all of them.
public struct ReportAggregator: Sendable {
    private var report: Report
    private var open: [WindowKey: WindowState] = [:]
    /// Open windows by feed, policy and window number: an action addressed to another call than
    /// the window's subject (an extension window covering a second call) names that call.
    private var openByNumber: [NumberKey: [WindowKey]] = [:]
    private var groups: [GroupKey: Report.WindowGroup] = [:]
    private var groupOrder: [GroupKey] = []
    private var latencies: [String: [Double]] = [:]
    private var openOutages: [String: Report.FeedOutage] = [:]
    /// The last outage of each feed that ended, until the resync that follows it.
    private var awaitingResync: [String: Int] = [:]
    private var feedsSeen: Set<String> = []
    private var daemonStartSeen = false
    private var lastTime: Int64

    public static let histogramBounds: [Double] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

    public init(period: ReportPeriod, source: Report.Source) {
        report = Report(period: period, source: source)
        lastTime = period.since
    }

    /// Counters the reader keeps (malformed lines, records outside the period, other records).
    public var source: Report.Source {
        get { report.source }
        set { report.source = newValue }
    }

    // MARK: Keys and state

    struct WindowKey: Hashable, Sendable {
        var feed: String
        var policy: String
        var call: String
        var window: String
    }

    struct NumberKey: Hashable, Sendable {
        var feed: String
        var policy: String
        var window: String
    }

    struct GroupKey: Hashable, Sendable {
        var policy: String
        var feed: String
        var mode: String
    }

    struct Engagement: Sendable {
        var action: String
        var call: String
        var target: String?
        var confirmedAt: Int64?
        var failed = false
        var failedAt: Int64?
        var failedTarget: String?
        var error: String?
        var errorCode: String?
        var fallbacks: [String] = []
        var recovered = false
        var unprotectedMs: Double?
        var abandoned: String?
    }

    struct WindowState: Sendable {
        var key: WindowKey
        var mode: String
        var openedAt: Int64?
        var engagements: [Engagement] = []
        var leftInPlaceAt: Int64?

        mutating func engagement(action: String, call: String) -> Int {
            if let index = engagements.firstIndex(where: { $0.action == action && $0.call == call }) { return index }
            engagements.append(Engagement(action: action, call: call))
            return engagements.count - 1
        }
    }

    /// The operations that protect a call; their undos (unmute, resume-recording) do not.
    static func isApply(_ action: String?) -> Bool { action == "mute" || action == "pause-recording" }

    // MARK: Ingesting

    /// Takes one record of the period. Records must come in time order, as the journal and its
    /// exports give them.
    public mutating func add(_ record: ReportRecord) {
        report.source.records += 1
        lastTime = max(lastTime, record.time)
        let fields = record.fields
        if let feed = fields.feed { feedsSeen.insert(feed) }
        switch record.kind {
        case .windowOpened:
            guard let key = windowKey(fields) else { return }
            if fields.result == "extended" {
                self[group: key, mode: fields.mode].extended += 1
                return
            }
            if let previous = open[key] { finalize(previous, ending: "superseded", at: record.time) }
            register(WindowState(key: key, mode: fields.mode ?? "enforce", openedAt: record.time))
            self[group: key, mode: fields.mode].opened += 1
        case .actionAttempt:
            guard Self.isApply(fields.action), let target = fields.target,
                let key = findWindow(fields, creating: true), let action = fields.action
            else { return }
            modify(key) { window in
                let index = window.engagement(action: action, call: fields.call ?? key.call)
                if window.engagements[index].target == nil {
                    window.engagements[index].target = target
                } else if window.engagements[index].failed, target != window.engagements[index].failedTarget,
                    !window.engagements[index].fallbacks.contains(target)
                {
                    window.engagements[index].fallbacks.append(target)
                }
            }
        case .actionConfirmed:
            guard Self.isApply(fields.action), let key = findWindow(fields, creating: true), let action = fields.action
            else { return }
            var latency: (String, Double)?
            modify(key) { window in
                let index = window.engagement(action: action, call: fields.call ?? key.call)
                guard window.engagements[index].confirmedAt == nil else { return }
                window.engagements[index].confirmedAt = record.time
                let target = fields.target ?? window.engagements[index].target ?? "?"
                if window.engagements[index].target == nil { window.engagements[index].target = target }
                let sinceOpen = window.openedAt.map { Double(record.time - $0) / 1000 }
                if window.engagements[index].failed {
                    window.engagements[index].unprotectedMs = sinceOpen
                } else if let sinceOpen {
                    latency = (target, max(0, sinceOpen))
                }
            }
            if let (target, value) = latency { latencies[target, default: []].append(value) }
        case .actionRecovered:
            guard let key = findWindow(fields, creating: true), let action = fields.action else { return }
            modify(key) { window in
                let index = window.engagement(action: action, call: fields.call ?? key.call)
                window.engagements[index].recovered = true
                window.engagements[index].failed = true
                if window.engagements[index].confirmedAt == nil { window.engagements[index].confirmedAt = record.time }
                window.engagements[index].unprotectedMs =
                    fields.latencyMs.flatMap(Double.init) ?? window.openedAt.map { Double(record.time - $0) / 1000 }
            }
        case .actionFailed:
            if Self.isApply(fields.action), record.priority <= AuditSeverity.critical.rawValue,
                let key = findWindow(fields, creating: true), let action = fields.action
            {
                modify(key) { window in
                    let index = window.engagement(action: action, call: fields.call ?? key.call)
                    guard !window.engagements[index].failed else { return }
                    window.engagements[index].failed = true
                    window.engagements[index].failedAt = record.time
                    window.engagements[index].failedTarget = fields.target
                    if window.engagements[index].target == nil { window.engagements[index].target = fields.target }
                    window.engagements[index].error = fields.error ?? fields.reason
                    window.engagements[index].errorCode = fields.errorCode
                }
            } else {
                alarm(record, "undo-failed", detail: fields.error)
            }
        case .actionAbandoned:
            guard Self.isApply(fields.action), let key = findWindow(fields, creating: false), let action = fields.action
            else { return }
            modify(key) { window in
                let index = window.engagement(action: action, call: fields.call ?? key.call)
                if window.engagements[index].target == nil { window.engagements[index].target = fields.target }
                window.engagements[index].abandoned = fields.reason ?? "abandoned"
            }
        case .windowClosed:
            guard let key = findWindow(fields, creating: true), let window = open[key] else { return }
            finalize(window, ending: fields.result ?? "closed", at: record.time)
        case .windowDrift:
            report.drifts.append(
                Report.Drift(
                    time: record.time, policy: text(fields.policy), feed: text(fields.feed), call: id(fields.call, .call),
                    target: text(fields.target), reason: text(fields.reason),
                    critical: record.priority <= AuditSeverity.critical.rawValue))
        case .windowOrphaned: alarm(record, "window.orphaned", detail: fields.reason)
        case .trackerFull: alarm(record, "tracker.full", detail: fields.reason)
        case .callExpired: alarm(record, "call.expired", detail: nil)
        case .stateRestored:
            if record.priority <= AuditSeverity.warning.rawValue { alarm(record, "state.restored", detail: fields.result) }
        case .dryRun, .actionRetry:
            return
        case .feedDown:
            feedDown(record)
        case .feedUp:
            feedUp(record)
        case .configurationLoaded:
            report.configurations.append(
                Report.ConfigurationEvent(
                    time: record.time, result: fields.result ?? "loaded", digest: fields.digest.map { id($0, .digest) }, error: nil))
        case .configurationRejected:
            report.configurations.append(
                Report.ConfigurationEvent(
                    time: record.time, result: "rejected", digest: nil, error: fields.error.map(text)))
        case .daemonStarted:
            if fields.result == "started" { daemonStartSeen = true }
            report.daemon.append(Report.DaemonEvent(time: record.time, event: fields.result ?? "started"))
        case .daemonStopping:
            if fields.result == "left-in-place" {
                guard let key = windowKey(fields) else { return }
                if open[key] == nil {
                    register(WindowState(key: key, mode: fields.mode ?? "enforce", openedAt: nil))
                }
                open[key]?.leftInPlaceAt = record.time
                return
            }
            report.daemon.append(Report.DaemonEvent(time: record.time, event: fields.result ?? "stopping"))
            if fields.result == "stopped" {
                for feed in openOutages.keys.sorted() {
                    var outage = openOutages.removeValue(forKey: feed)!
                    outage.upAt = record.time
                    outage.endedBy = "daemon-stopped"
                    report.outages.append(outage)
                }
            }
        }
    }

    // MARK: Windows

    private func windowKey(_ fields: AuditFields) -> WindowKey? {
        guard let feed = fields.feed, let policy = fields.policy, let call = fields.call, let window = fields.window else { return nil }
        return WindowKey(feed: feed, policy: policy, call: call, window: window)
    }

    /// The open window a record is about; with `creating`, one that opened before the period
    /// (or whose opening record is missing) is made, so that what followed is still reported.
    private mutating func findWindow(_ fields: AuditFields, creating: Bool) -> WindowKey? {
        guard let key = windowKey(fields) else { return nil }
        if open[key] != nil { return key }
        if let candidates = openByNumber[NumberKey(feed: key.feed, policy: key.policy, window: key.window)],
            let first = candidates.first
        {
            return first
        }
        guard creating else { return nil }
        register(WindowState(key: key, mode: fields.mode ?? "enforce", openedAt: nil))
        return key
    }

    private mutating func register(_ window: WindowState) {
        open[window.key] = window
        openByNumber[NumberKey(feed: window.key.feed, policy: window.key.policy, window: window.key.window), default: []]
            .append(window.key)
    }

    private mutating func modify(_ key: WindowKey, _ body: (inout WindowState) -> Void) {
        guard var window = open[key] else { return }
        body(&window)
        open[key] = window
    }

    private subscript(group key: WindowKey, mode mode: String?) -> Report.WindowGroup {
        get { groups[GroupKey(policy: key.policy, feed: key.feed, mode: mode ?? "enforce")] ?? emptyGroup(key, mode) }
        set {
            let groupKey = GroupKey(policy: key.policy, feed: key.feed, mode: mode ?? "enforce")
            if groups[groupKey] == nil { groupOrder.append(groupKey) }
            groups[groupKey] = newValue
        }
    }

    private func emptyGroup(_ key: WindowKey, _ mode: String?) -> Report.WindowGroup {
        Report.WindowGroup(policy: text(key.policy), feed: text(key.feed), mode: mode ?? "enforce")
    }

    /// Folds an ended window into the counters and the lists.
    private mutating func finalize(_ window: WindowState, ending: String, at time: Int64) {
        open[window.key] = nil
        let numberKey = NumberKey(feed: window.key.feed, policy: window.key.policy, window: window.key.window)
        openByNumber[numberKey]?.removeAll { $0 == window.key }
        if openByNumber[numberKey]?.isEmpty == true { openByNumber[numberKey] = nil }

        let atPeriodEnd = ending == "open-at-period-end"
        var entry = self[group: window.key, mode: window.mode]
        entry.ended[ending, default: 0] += 1
        if window.openedAt == nil {
            entry.openedBeforePeriod += 1
            report.boundary.windowsOpenedBeforePeriod += 1
        }
        if atPeriodEnd { report.boundary.windowsOpenAtPeriodEnd += 1 }

        if window.mode == "dry-run" {
            self[group: window.key, mode: window.mode] = entry
            if window.openedAt != nil { report.verdict.dryRun += 1 }
            return
        }
        var alarmed = false
        var pending = false
        var exceptions: [String] = []
        for engagement in window.engagements {
            if engagement.confirmedAt != nil, !engagement.failed { continue }
            let outcome: String
            var unprotected = engagement.unprotectedMs
            if engagement.failed {
                alarmed = true
                if engagement.confirmedAt != nil {
                    outcome = engagement.recovered ? "recovered" : "fallback-confirmed"
                } else if atPeriodEnd {
                    outcome = "open-at-period-end"
                } else {
                    outcome = "unprotected-at-close"
                    unprotected = window.openedAt.map { Double(time - $0) / 1000 }
                }
            } else if atPeriodEnd {
                pending = true
                continue
            } else {
                outcome = "unconfirmed-at-close"
                unprotected = window.openedAt.map { Double(time - $0) / 1000 }
                exceptions.append(
                    "\(text(window.key.policy)) on call \(id(window.key.call, .call)) (feed \(text(window.key.feed)), window "
                        + "\(id(window.key.window, .window))): \(engagement.action) never confirmed and no control failure raised"
                        + (engagement.abandoned.map { " (\(text($0)))" } ?? ""))
            }
            report.unconfirmed.append(
                Report.UnconfirmedWindow(
                    openedAt: window.openedAt, failedAt: engagement.failedAt, policy: text(window.key.policy),
                    feed: text(window.key.feed), call: id(engagement.call, .call), window: id(window.key.window, .window),
                    action: text(engagement.action), target: text(engagement.failedTarget ?? engagement.target ?? "?"),
                    error: (engagement.error ?? engagement.abandoned).map(text), errorCode: engagement.errorCode.map(text),
                    fallbacks: engagement.fallbacks.map(text), outcome: outcome, unprotectedMs: unprotected, alarmed: engagement.failed))
        }
        if window.engagements.isEmpty, !atPeriodEnd {
            exceptions.append(
                "\(text(window.key.policy)) on call \(id(window.key.call, .call)) (feed \(text(window.key.feed)), window "
                    + "\(id(window.key.window, .window))): no action was recorded for it")
        }
        let isProtected = exceptions.isEmpty && !alarmed && !pending && !window.engagements.isEmpty
        if isProtected { entry.protected += 1 }
        self[group: window.key, mode: window.mode] = entry
        // The verdict is about the period's captures; a window opened before it was judged there.
        guard window.openedAt != nil else { return }
        report.verdict.captures += 1
        if isProtected {
            report.verdict.protected += 1
        } else if alarmed {
            report.verdict.alarmed += 1
        } else if !exceptions.isEmpty {
            report.verdict.exceptions += exceptions
        } else if pending {
            report.verdict.pendingAtPeriodEnd += 1
        }
    }

    // MARK: Feeds

    private mutating func feedDown(_ record: ReportRecord) {
        guard let feed = record.fields.feed else { return }
        let result = record.fields.result ?? "down"
        // `stopped`: an orderly stop (shutdown, a reload restarting the feed), not an outage.
        guard result == "down" || result == "failed" else { return }
        if openOutages[feed] != nil {
            if openOutages[feed]?.callsActive == nil { openOutages[feed]?.callsActive = record.fields.calls.flatMap { Int($0) } }
            return
        }
        awaitingResync[feed] = nil
        openOutages[feed] = Report.FeedOutage(
            feed: text(feed), downAt: record.time, upAt: nil, result: result, reason: record.fields.reason.map(text),
            callsActive: record.fields.calls.flatMap { Int($0) })
    }

    private mutating func feedUp(_ record: ReportRecord) {
        guard let feed = record.fields.feed else { return }
        if record.fields.result == "resynced" {
            if var outage = openOutages.removeValue(forKey: feed) {
                outage.upAt = record.time
                outage.resyncAt = record.time
                outage.resyncCalls = record.fields.calls.flatMap { Int($0) }
                report.outages.append(outage)
            } else if let index = awaitingResync.removeValue(forKey: feed) {
                report.outages[index].resyncAt = record.time
                report.outages[index].resyncCalls = record.fields.calls.flatMap { Int($0) }
            }
            return
        }
        if var outage = openOutages.removeValue(forKey: feed) {
            outage.upAt = record.time
            report.outages.append(outage)
            awaitingResync[feed] = report.outages.count - 1
        } else if !daemonStartSeen, !report.outages.contains(where: { $0.feed == feed }), firstRecordOfFeed(feed) {
            // Up with no down before it and no start of the daemon in the period: the outage
            // began before the period.
            report.boundary.outagesOpenAtStart += 1
            report.outages.append(Report.FeedOutage(feed: text(feed), downAt: nil, upAt: record.time, result: "down"))
            awaitingResync[feed] = report.outages.count - 1
        }
    }

    private var feedUpSeen: Set<String> = []

    private mutating func firstRecordOfFeed(_ feed: String) -> Bool {
        feedUpSeen.insert(feed).inserted
    }

    // MARK: Other

    private mutating func alarm(_ record: ReportRecord, _ kind: String, detail: String?) {
        report.alarms.append(
            Report.OtherAlarm(
                time: record.time, kind: kind, feed: record.fields.feed.map(text), call: record.fields.call.map { id($0, .call) },
                detail: detail.map(text)))
    }

    /// Free text from a record, PAN-masked again.
    private func text(_ value: String) -> String { PANMasker.maskForLog(value) }
    private func text(_ value: String?) -> String { value.map(text) ?? "" }
    /// An identifier field's value: kept whole when it is one identifier, as the daemon logs it.
    private func id(_ value: String?, _ field: AuditField) -> String {
        guard let value else { return "" }
        return LogRecordSanitizer.loggable(value, forKey: field.rawValue)
    }

    // MARK: Finishing

    /// The report: windows still open end as `open-at-period-end` (or `left-in-place` when a
    /// shutdown left them), outages still open stay open.
    public consuming func finish() -> Report {
        for key in open.keys.sorted(by: { ($0.feed, $0.policy, $0.call, $0.window) < ($1.feed, $1.policy, $1.call, $1.window) }) {
            guard let window = open[key] else { continue }
            if let at = window.leftInPlaceAt {
                finalize(window, ending: "left-in-place", at: at)
            } else {
                finalize(window, ending: "open-at-period-end", at: report.period.until)
            }
        }
        for feed in openOutages.keys.sorted() {
            report.outages.append(openOutages[feed]!)
            report.boundary.outagesOpenAtEnd += 1
        }
        report.outages.sort { ($0.downAt ?? .min, $0.feed) < ($1.downAt ?? .min, $1.feed) }
        report.windows = groupOrder.map { groups[$0]! }
            .sorted { ($0.policy, $0.feed, $0.mode) < ($1.policy, $1.feed, $1.mode) }
        report.targets = latencies.keys.sorted().map { target in
            var values = latencies[target]!
            values.sort()
            return Report.TargetLatency(
                target: text(target), confirmed: values.count, p50: Self.percentile(values, 0.50),
                p90: Self.percentile(values, 0.90), p99: Self.percentile(values, 0.99), max: values.last ?? 0)
        }
        var counts = [Int](repeating: 0, count: Self.histogramBounds.count + 1)
        for values in latencies.values {
            for value in values {
                let index = Self.histogramBounds.firstIndex { value <= $0 } ?? Self.histogramBounds.count
                counts[index] += 1
            }
        }
        report.histogram = counts.enumerated().map { index, count in
            Report.HistogramBucket(upTo: index < Self.histogramBounds.count ? Self.histogramBounds[index] : nil, count: count)
        }
        report.unconfirmed.sort { ($0.openedAt ?? $0.failedAt ?? .min) < ($1.openedAt ?? $1.failedAt ?? .min) }
        report.verdict.ok = report.verdict.exceptions.isEmpty
        return report
    }

    /// Nearest rank: the smallest value with at least `fraction` of the values at or below it.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
