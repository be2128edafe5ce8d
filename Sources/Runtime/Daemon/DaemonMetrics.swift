import MutewardenModel
import Prometheus

/// The daemon's metrics, in swift-prometheus's registry, which also writes the text exposition
/// (docs/operations.md#metrics has every name).
///
/// Counters and the histogram are fed on the engine thread from what the engine already says (the
/// events it ingests and the audit records it emits), so the engine itself stays free of metrics.
/// Gauges are read at each scrape from the loop's snapshot and counters, so a scrape reports a
/// stuck engine's growing queue rather than the last value the engine published.
///
/// Label values are configuration names only (feeds, targets, policies; names the loader checked),
/// or one of a fixed set of words: anything else is counted under `other`. A platform's call id,
/// an extension or an attribute value can therefore never become a label, and the number of series
/// stays bounded by the configuration.
final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    private let windowsOpen: Gauge
    private let queueDepth: Gauge
    private let actionsInFlight: Gauge

    /// The metrics made so far, by their label values, and the windows open now. Taken by the
    /// engine thread for a lookup per batch or record, by a scrape for `feedUp`, by a reload.
    private struct State {
        var names: Set<String> = []
        var events: [String: Counter] = [:]
        var windowsOpened: [LabelPair: Counter] = [:]
        var actions: [ActionLabels: Counter] = [:]
        var controlFailures: [LabelPair: Counter] = [:]
        var timeToProtection: [LabelPair: DurationHistogram] = [:]
        var feedUp: [String: Gauge] = [:]
        /// Windows open now: when each opened, and its policy's label. Entries leave at the
        /// window's close; the cap keeps a lost close from growing it without end.
        var openWindows: [WindowKey: (openedAt: MonotonicInstant, policy: String)] = [:]

        func label(_ name: String?) -> String {
            guard let name, names.contains(name) else { return DaemonMetrics.other }
            return name
        }
    }

    /// What the records of one window share. The window field alone is a sequence number per
    /// policy and call (or extension), so two windows may share it; with the call and the extension,
    /// a confirmation is never matched to another window. An action sent to another call than the
    /// window's subject (an extension window's covered calls) names that call, and is not matched.
    private struct WindowKey: Hashable {
        var policy: String?
        var feed: String?
        var window: String
        var call: String?
        var agentExtension: String?

        init?(_ fields: AuditFields) {
            guard let window = fields.window else { return nil }
            (policy, feed, self.window, call, agentExtension) = (fields.policy, fields.feed, window, fields.call, fields.extension)
        }
    }

    private struct LabelPair: Hashable {
        var first: String
        var second: String
    }

    private struct ActionLabels: Hashable {
        var target: String
        var action: String
        var result: String
    }

    private let state: Locked<State>

    static let openWindowsTracked = 1_000_000
    static let other = "other"
    /// The operations an action record can name (`ActionKind.operation(_:)`).
    static let operations: Set<String> = Set(
        ActionKind.allCases.flatMap { [$0.operation(.apply), $0.operation(.undo)] })
    static let applyOperations: Set<String> = Set(ActionKind.allCases.map { $0.operation(.apply) })
    /// From a window's opening to each of its actions' confirmations. A deadline is seconds; the
    /// upper buckets hold the confirmations that came only after a control failure.
    static let timeToProtectionBuckets: [Duration] = [
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]

    init(names: some Sequence<String>) {
        windowsOpen = registry.makeGauge(
            descriptor: Self.descriptor("windows_open", "Protection windows open now (actions applied or being applied)."))
        queueDepth = registry.makeGauge(
            descriptor: Self.descriptor("engine_queue_depth", "Call events handed to the engine and not yet processed."))
        actionsInFlight = registry.makeGauge(
            descriptor: Self.descriptor("actions_in_flight", "Action attempts sent to targets and not yet answered."))
        state = Locked(State(names: Set(names)))
    }

    private static func descriptor(_ name: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "mutewarden", metricName: name, unitName: unit, helpText: help)
    }

    /// Names of the configuration in force, after a reload: labels of earlier ones stay as they were.
    func allow(names: some Sequence<String>) {
        state.withLock { $0.names.formUnion(names) }
    }

    /// The metric for the label values `key` resolves to, made on first use. Made outside the
    /// lock, so that it never nests with the registry's: the registry hands back the same object
    /// for the same name and labels, so a race between two makers is harmless.
    private func cached<Key: Hashable, Metric>(
        _ table: WritableKeyPath<State, [Key: Metric]>, key: (State) -> Key, make: (Key) -> Metric
    ) -> Metric {
        let (resolved, existing) = state.withLock { state in
            let resolved = key(state)
            return (resolved, state[keyPath: table][resolved])
        }
        if let existing { return existing }
        let metric = make(resolved)
        state.withLock { $0[keyPath: table][resolved] = metric }
        return metric
    }

    // MARK: Engine thread

    /// One batch's events: one counter update per run of events from one feed.
    func ingested(_ updates: some Collection<CallUpdate>) {
        guard var feed = updates.first?.feed else { return }
        var run: Int64 = 0
        for update in updates {
            if update.feed != feed {
                events(feed).increment(by: run)
                feed = update.feed
                run = 0
            }
            run += 1
        }
        events(feed).increment(by: run)
    }

    private func events(_ feed: String) -> Counter {
        cached(
            \.events, key: { $0.label(feed) },
            make: {
                registry.makeCounter(
                    descriptor: Self.descriptor("events", unit: "total", "Call events the engine processed, by feed."), labels: [("feed", $0)])
            })
    }

    /// One audit record the engine emitted at `now`.
    func observe(_ record: AuditRecord, at now: MonotonicInstant) {
        let fields = record.fields
        switch record.kind {
        case .windowOpened:
            guard fields.result == "opened" else { return }
            cached(
                \.windowsOpened, key: { LabelPair(first: $0.label(fields.policy), second: $0.label(fields.feed)) },
                make: {
                    registry.makeCounter(
                        descriptor: Self.descriptor("windows_opened", unit: "total", "Protection windows opened, by policy and feed."),
                        labels: [("policy", $0.first), ("feed", $0.second)])
                }
            ).increment()
            guard let window = WindowKey(fields) else { return }
            state.withLock { state in
                guard state.openWindows.count < Self.openWindowsTracked else { return }
                state.openWindows[window] = (now, state.label(fields.policy))
            }
        case .windowClosed:
            guard let window = WindowKey(fields) else { return }
            _ = state.withLock { $0.openWindows.removeValue(forKey: window) }
        case .actionAttempt: action(fields, result: fields.result == "sent" ? "sent" : "not-sent")
        case .actionRetry: action(fields, result: "retried")
        case .actionConfirmed:
            action(fields, result: "confirmed")
            protected(fields, at: now)
        case .actionRecovered:
            action(fields, result: "recovered")
            protected(fields, at: now)
        case .actionAbandoned: action(fields, result: "abandoned")
        case .dryRun: action(fields, result: "dry-run")
        case .actionFailed:
            action(fields, result: "failed")
            guard record.severity == .critical else { return }
            cached(
                \.controlFailures, key: { LabelPair(first: $0.label(fields.policy), second: $0.label(fields.target)) },
                make: {
                    registry.makeCounter(
                        descriptor: Self.descriptor(
                            "control_failures", unit: "total",
                            "PCI control failures: a protecting action not confirmed by its deadline (CRIT action.failed)."),
                        labels: [("policy", $0.first), ("target", $0.second)])
                }
            ).increment()
        default:
            return
        }
    }

    private func action(_ fields: AuditFields, result: String) {
        let operation = fields.action.flatMap { Self.operations.contains($0) ? $0 : nil } ?? Self.other
        cached(
            \.actions, key: { ActionLabels(target: $0.label(fields.target), action: operation, result: result) },
            make: {
                registry.makeCounter(
                    descriptor: Self.descriptor("actions", unit: "total", "Action attempts and outcomes, by target, operation and result."),
                    labels: [("target", $0.target), ("action", $0.action), ("result", $0.result)])
            }
        ).increment()
    }

    /// A protecting action confirmed while its window is open: the time since the window opened.
    private func protected(_ fields: AuditFields, at now: MonotonicInstant) {
        guard let window = WindowKey(fields), let operation = fields.action, Self.applyOperations.contains(operation),
            let (opened, target) = state.withLock({ state in state.openWindows[window].map { ($0, state.label(fields.target)) } })
        else { return }
        cached(
            \.timeToProtection, key: { _ in LabelPair(first: opened.policy, second: target) },
            make: {
                registry.makeDurationHistogram(
                    descriptor: Self.descriptor(
                        "time_to_protection", unit: "seconds",
                        "From a window's opening to the confirmation of each of its protecting actions, by policy and target."),
                    labels: [("policy", $0.first), ("target", $0.second)], buckets: Self.timeToProtectionBuckets)
            }
        ).record(now.since(opened.openedAt))
    }

    // MARK: A scrape

    /// The gauges brought up to date, then the whole registry in the text format (version 0.0.4).
    func exposition(snapshot: EngineSnapshot, queueDepth depth: Int, actionsInFlight inFlight: Int) -> [UInt8] {
        windowsOpen.set(Int64(snapshot.statistics.openWindows))
        queueDepth.set(Int64(max(0, depth)))
        actionsInFlight.set(Int64(max(0, inFlight)))
        for (feed, up) in snapshot.feedsUp {
            cached(
                \.feedUp, key: { $0.label(feed) },
                make: {
                    registry.makeGauge(
                        descriptor: Self.descriptor("feed_up", "1 while the feed is connected and delivering events, 0 while it is down."),
                        labels: [("feed", $0)])
                }
            ).set(Int64(up ? 1 : 0))
        }
        return registry.emitToBuffer()
    }

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
