/// Every action the run expects, when the event that called for it was written, and what arrived.
/// Owned by the lws service thread: it stamps writes and takes the requests, so no lock is needed.
///
/// An action is *expected* once the event that opens (or closes) a capture window has been handed
/// to `lws_write`. It is *received* when the first request for that call and operation arrives;
/// any further request for the same pair is a *duplicate*, whatever its idempotency key: the
/// platform would carry out a second `MuteCall` all the same, and the daemon's own retries only
/// follow a failure, which this generator never returns. *Missed* is expected and never received by
/// the end of the grace period. A request nobody expected is counted apart.
struct Ledger {
    struct Key: Hashable {
        var callID: String
        var operation: Operation
    }

    /// What called for an action. A new call that an open extension window must cover is timed
    /// apart: it is the case a platform's own "mute the extension" misses, and the issue asks for
    /// its figure by itself.
    enum Kind {
        case windowEdge, newCall
    }

    struct Entry {
        var writtenAt: Int64
        var generatedAt: Int64
        var arrivals = 0
        var measured: Bool
        var kind = Kind.windowEdge
    }

    private(set) var entries: [Key: Entry] = [:]
    private(set) var unexpected = 0
    /// Latencies of first arrivals of actions whose event was written inside the measurement.
    private(set) var latencies: [Int64] = []
    private(set) var latenciesFromGeneration: [Int64] = []
    /// First arrivals of the actions a new call in an open window called for (`Kind.newCall`).
    private(set) var newCallLatencies: [Int64] = []
    /// Stamps taken while this is true count towards the percentiles.
    var measuring = false

    init() {
        entries.reserveCapacity(1 << 16)
        latencies.reserveCapacity(1 << 16)
        latenciesFromGeneration.reserveCapacity(1 << 16)
    }

    /// The event for `edge` was handed to lws_write at `writtenAt`. A second write of the same
    /// event (a second subscriber) keeps the first stamp.
    mutating func stamp(_ edge: WindowEdge, writtenAt: Int64, generatedAt: Int64) {
        for operation in edge.opening ? Operation.onOpen : Operation.onClose {
            let key = Key(callID: edge.callID, operation: operation)
            if entries[key] == nil {
                entries[key] = Entry(writtenAt: writtenAt, generatedAt: generatedAt, measured: measuring)
            }
        }
    }

    /// One action that a written event calls for, when an edge's fixed pair does not describe it
    /// (Voicenter: a window covers every call of the extension). A second write keeps the first stamp.
    mutating func expect(_ key: Key, kind: Kind, writtenAt: Int64, generatedAt: Int64) {
        if entries[key] == nil {
            entries[key] = Entry(writtenAt: writtenAt, generatedAt: generatedAt, measured: measuring, kind: kind)
        }
    }

    mutating func arrived(callID: String, operation: Operation, at now: Int64) {
        let key = Key(callID: callID, operation: operation)
        guard var entry = entries[key] else {
            unexpected += 1
            return
        }
        entry.arrivals += 1
        if entry.arrivals == 1, entry.measured {
            switch entry.kind {
            case .windowEdge:
                latencies.append(now - entry.writtenAt)
                latenciesFromGeneration.append(now - entry.generatedAt)
            case .newCall:
                newCallLatencies.append(now - entry.writtenAt)
            }
        }
        entries[key] = entry
    }

    struct Counts: Sendable, Codable {
        var expected = 0
        var received = 0
        var missed = 0
        var duplicated = 0
        var unexpected = 0
    }

    var counts: Counts {
        var counts = Counts(unexpected: unexpected)
        for entry in entries.values {
            counts.expected += 1
            if entry.arrivals == 0 { counts.missed += 1 } else { counts.received += 1 }
            counts.duplicated += max(0, entry.arrivals - 1)
        }
        return counts
    }
}

/// Percentiles of a set of latencies, in milliseconds.
struct LatencySummary: Sendable, Codable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double

    init(nanoseconds values: [Int64]) {
        let sorted = values.sorted()
        count = sorted.count
        func at(_ quantile: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            // Nearest rank: the smallest value with at least `quantile` of the set at or below it.
            let rank = Int((quantile * Double(sorted.count)).rounded(.up))
            return Double(sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]) / 1e6
        }
        p50 = at(0.5)
        p90 = at(0.9)
        p99 = at(0.99)
        p999 = at(0.999)
        max = sorted.last.map { Double($0) / 1e6 } ?? 0
    }
}
