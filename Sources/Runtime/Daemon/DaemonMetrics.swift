import MutewardenModel
import Prometheus
import Synchronization

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

    /// Engine-thread state behind a lock that only a scrape (for `feedUp`) and a reload contend for.
    private struct State {
        var names: Set<String> = []
        var events: [String: Counter] = [:]
        var windowsOpened: [LabelPair: Counter] = [:]
        var actions: [ActionLabels: Counter] = [:]
        var controlFailures: [LabelPair: Counter] = [:]
        var timeToProtection: [LabelPair: DurationHistogram] = [:]
        var feedUp: [String: Gauge] = [:]
        /// Windows open now, by their sequence number: when each opened, and its policy. Entries
        /// leave at the window's close; the cap keeps a lost close from growing it without end.
        var openWindows: [String: (openedAt: MonotonicInstant, policy: String)] = [:]
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

    private let state: Mutex<State>

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
        state = Mutex(State(names: Set(names)))
    }

    private static func descriptor(_ name: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "mutewarden", metricName: name, unitName: unit, helpText: help)
    }

    /// Names of the configuration in force, after a reload: labels of earlier ones stay as they were.
    func allow(names: some Sequence<String>) {
        state.withLock { $0.names.formUnion(names) }
    }

    // MARK: Engine thread

    /// One batch's events: one counter update per run of events from one feed.
    func ingested(_ updates: some Collection<CallUpdate>) {
        guard var feed = updates.first?.feed else { return }
        var run: Int64 = 0
        state.withLock { state in
            for update in updates {
                if update.feed != feed {
                    events(&state, feed).increment(by: run)
                    feed = update.feed
                    run = 0
                }
                run += 1
            }
            events(&state, feed).increment(by: run)
        }
    }

    private func events(_ state: inout State, _ feed: String) -> Counter {
        if let counter = state.events[feed] { return counter }
        let label = state.names.contains(feed) ? feed : Self.other
        let counter = registry.makeCounter(
            descriptor: Self.descriptor("events", unit: "total", "Call events the engine processed, by feed."),
            labels: [("feed", label)])
        // Keyed by the raw name only when it is allowed: other names share one entry, so the table
        // is as bounded as the labels.
        state.events[label == Self.other ? Self.other : feed] = counter
        return counter
    }

    /// One audit record the engine emitted at `now`.
    func observe(_ record: AuditRecord, at now: MonotonicInstant) {
        let fields = record.fields
        switch record.kind {
        case .windowOpened:
            guard fields.result == "opened" else { return }
            state.withLock { state in
                let policy = label(state, fields.policy)
                counter(&state.windowsOpened, LabelPair(first: policy, second: label(state, fields.feed))) {
                    registry.makeCounter(
                        descriptor: Self.descriptor("windows_opened", unit: "total", "Protection windows opened, by policy and feed."),
                        labels: [("policy", $0.first), ("feed", $0.second)])
                }.increment()
                if let window = fields.window, state.openWindows.count < Self.openWindowsTracked {
                    state.openWindows[window] = (now, policy)
                }
            }
        case .windowClosed:
            guard let window = fields.window else { return }
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
            state.withLock { state in
                counter(&state.controlFailures, LabelPair(first: label(state, fields.policy), second: label(state, fields.target))) {
                    registry.makeCounter(
                        descriptor: Self.descriptor(
                            "control_failures", unit: "total",
                            "PCI control failures: a protecting action not confirmed by its deadline (CRIT action.failed)."),
                        labels: [("policy", $0.first), ("target", $0.second)])
                }.increment()
            }
        default:
            return
        }
    }

    private func action(_ fields: AuditFields, result: String) {
        state.withLock { state in
            let operation = fields.action.flatMap { Self.operations.contains($0) ? $0 : nil } ?? Self.other
            counter(&state.actions, ActionLabels(target: label(state, fields.target), action: operation, result: result)) {
                registry.makeCounter(
                    descriptor: Self.descriptor("actions", unit: "total", "Action attempts and outcomes, by target, operation and result."),
                    labels: [("target", $0.target), ("action", $0.action), ("result", $0.result)])
            }.increment()
        }
    }

    /// A protecting action confirmed while its window is open: the time since the window opened.
    private func protected(_ fields: AuditFields, at now: MonotonicInstant) {
        guard let window = fields.window, let operation = fields.action, Self.applyOperations.contains(operation) else { return }
        state.withLock { state in
            guard let opened = state.openWindows[window] else { return }
            let elapsed = now.since(opened.openedAt)
            counter(&state.timeToProtection, LabelPair(first: opened.policy, second: label(state, fields.target))) {
                registry.makeDurationHistogram(
                    descriptor: Self.descriptor(
                        "time_to_protection", unit: "seconds",
                        "From a window's opening to the confirmation of each of its protecting actions, by policy and target."),
                    labels: [("policy", $0.first), ("target", $0.second)], buckets: Self.timeToProtectionBuckets)
            }.record(elapsed)
        }
    }

    private func label(_ state: State, _ name: String?) -> String {
        guard let name, state.names.contains(name) else { return Self.other }
        return name
    }

    private func counter<Key: Hashable, Metric>(_ table: inout [Key: Metric], _ key: Key, make: (Key) -> Metric) -> Metric {
        if let metric = table[key] { return metric }
        let metric = make(key)
        table[key] = metric
        return metric
    }

    // MARK: A scrape

    /// The gauges brought up to date, then the whole registry in the text format (version 0.0.4).
    func exposition(snapshot: EngineSnapshot, queueDepth depth: Int, actionsInFlight inFlight: Int) -> [UInt8] {
        windowsOpen.set(Int64(snapshot.statistics.openWindows))
        queueDepth.set(Int64(max(0, depth)))
        actionsInFlight.set(Int64(max(0, inFlight)))
        state.withLock { state in
            for (feed, up) in snapshot.feedsUp {
                let gauge =
                    state.feedUp[feed]
                    ?? registry.makeGauge(
                        descriptor: Self.descriptor("feed_up", "1 while the feed is connected and delivering events, 0 while it is down."),
                        labels: [("feed", label(state, feed))])
                state.feedUp[feed] = gauge
                gauge.set(Int64(up ? 1 : 0))
            }
        }
        return registry.emitToBuffer()
    }

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
