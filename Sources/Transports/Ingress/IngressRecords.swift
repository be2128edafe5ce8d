import MutewardenModel
import Synchronization

/// What became of a request (or a connection refused before it could make one): the ingress counts
/// each, for metrics and tests.
public enum IngressOutcome: String, Sendable, Hashable, CaseIterable {
    /// Authenticated, read, and answered by its handler.
    case handled
    /// Refused by its route's authenticator: 401, body not read.
    case unauthorized
    /// Declared or sent a body over the cap: 413.
    case tooLarge = "too-large"
    /// The body did not arrive within the body timeout: 408.
    case bodyTimeout = "body-timeout"
    /// The headers did not arrive within the header timeout: closed without an answer.
    case headerTimeout = "header-timeout"
    /// No route for the path: 404.
    case notFound = "not-found"
    /// A method the route does not take: 405.
    case methodNotAllowed = "method-not-allowed"
    /// A body without a Content-Length (chunked): 411.
    case lengthRequired = "length-required"
    /// Closed at accept: the connection cap was reached.
    case overCapacity = "over-capacity"
    /// The authenticator or the handler did not answer in time: 503.
    case unavailable
    /// `/healthz` answered.
    case health
}

/// Counters of the ingress, readable from any thread.
public final class IngressStatistics: Sendable {
    // One lock taken once per request by the ingress thread: nothing next to a request's cost.
    private let counts = Locked<[IngressOutcome: Int]>([:])
    /// Connections open now.
    public let openConnections = Atomic<Int>(0)

    init() {}

    func count(_ outcome: IngressOutcome) { counts.withLock { $0[outcome, default: 0] += 1 } }

    public subscript(_ outcome: IngressOutcome) -> Int { counts.withLock { $0[outcome] ?? 0 } }

    /// Every outcome with its count.
    public var snapshot: [IngressOutcome: Int] {
        let counts = counts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: IngressOutcome.allCases.map { ($0, counts[$0] ?? 0) })
    }
}

/// One audit record per refusal reason per interval, with the number refused meanwhile: a flood of
/// forged callbacks must not become a flood of log lines (nor stall the ingress thread, which
/// writes them), while the first of each kind is still on the record at once.
///
/// Used by the ingress thread only.
final class RefusalRecorder {
    private struct Entry {
        var last: MonotonicInstant
        var suppressed: Int
    }

    private let interval: Duration
    private let report: @Sendable (AuditSeverity, String, AuditFields) -> Void
    private var entries: [String: Entry] = [:]

    private let label: String

    init(interval: Duration, label: String = "callback ingress", report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void) {
        self.interval = interval
        self.label = label
        self.report = report
    }

    /// A refused request: recorded now, or counted into the next record of its reason. The record
    /// names the reason, the peer and the path; never a header value, a query value or the body.
    func refused(status: Int, reason: String, detail: String?, peer: String, path: String, owner: String?, now: MonotonicInstant) {
        let key = "\(status) \(reason)"
        if var entry = entries[key], now.since(entry.last) < interval {
            entry.suppressed += 1
            entries[key] = entry
            return
        }
        let suppressed = entries[key]?.suppressed ?? 0
        entries[key] = Entry(last: now, suppressed: 0)
        // Bounded: one entry per reason, and authenticators have a handful of reasons; forget the
        // oldest beyond a few hundred rather than grow with whatever reasons a bug might invent.
        if entries.count > 256, let oldest = entries.min(by: { $0.value.last < $1.value.last })?.key {
            entries[oldest] = nil
        }
        var message = "\(label) refused a request from \(peer) for \(Self.printable(path)) with HTTP \(status): \(reason)"
        if let detail { message += " (\(detail))" }
        if suppressed > 0 { message += "; \(suppressed) more refused for this reason since the last record" }
        var fields: AuditFields = [.result: "refused", .reason: reason, .peer: peer, .errorCode: String(status)]
        fields.feed = owner
        if suppressed > 0 { fields.attempt = String(suppressed + 1) }
        report(.warning, message, fields)
    }

    /// A path as a caller sent it may hold anything: printable ASCII only, and not too much of it.
    static func printable(_ path: String) -> String {
        let cleaned = String(path.unicodeScalars.prefix(128).map { (0x21...0x7e).contains($0.value) ? Character($0) : "?" })
        return path.unicodeScalars.count > 128 ? cleaned + "…" : cleaned
    }
}
