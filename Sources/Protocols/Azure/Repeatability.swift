import Crypto
import MutewardenHTTP
import MutewardenModel

/// The repeatability headers of one action (OASIS "Repeatable Requests", which ACS implements):
/// the platform performs a request with a `Repeatability-Request-ID` it has already seen only once.
///
/// - The request id is derived from the action's idempotency key, so every retry of an action, and
///   the same action sent by a second replica (whose key is the same: see `ActionRequest`), carry
///   the same id. It is the first 16 bytes of SHA-256 of the key's UTF-8, with the version nibble
///   set to 4 and the variant to RFC 4122's: the platform documents the header as a UUID v4, and
///   the hash's bits are as unpredictable as v4's random ones (RFC 9562 would call a hash-derived
///   UUID v8, which a server checking for v4 might refuse).
/// - `Repeatability-First-Sent` is the date of the first attempt, kept for the retries, as the
///   protocol requires (the server may refuse a request whose first-sent date is older than it
///   keeps ids for). Keep the value from the first attempt: ``RepeatabilityLedger`` does.
public struct Repeatability: Sendable, Hashable, CustomStringConvertible {
    /// Lower-case hyphenated UUID.
    public var requestID: String
    /// IMF-fixdate of the first attempt.
    public var firstSent: String

    public init(idempotencyKey: String, firstSentAt wallClock: Int64) {
        requestID = Self.requestID(forIdempotencyKey: idempotencyKey)
        firstSent = HTTPDate.format(wallClockNanoseconds: wallClock)
    }

    public static func requestID(forIdempotencyKey key: String) -> String {
        var bytes = Array(SHA256.hash(data: Array(key.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }

    public var headers: [HTTPHeader] {
        [HTTPHeader("Repeatability-Request-ID", requestID), HTTPHeader("Repeatability-First-Sent", firstSent)]
    }

    public var description: String { "repeatability \(requestID) first sent \(firstSent)" }
}

/// Remembers each action's first attempt, so that its retries send the same
/// `Repeatability-First-Sent`. Bounded: entries older than `horizon` go, and beyond `capacity` the
/// oldest go first (an action retried after that long has long passed its deadline).
public final class RepeatabilityLedger: Sendable {
    private struct Entry: Sendable {
        var value: Repeatability
        var firstSent: MonotonicInstant
    }

    private struct State: Sendable {
        var entries: [String: Entry] = [:]
    }

    private let state = Locked(State())
    public let horizon: Duration
    public let capacity: Int

    public init(horizon: Duration = .seconds(3600), capacity: Int = 10_000) {
        self.horizon = horizon
        self.capacity = max(1, capacity)
    }

    /// The headers' values for `idempotencyKey`: made now (at `wallClock`) for its first attempt,
    /// the same ones afterwards.
    public func repeatability(
        for idempotencyKey: String, now: MonotonicInstant = SystemClock().now(), wallClock: Int64 = wallClockNanoseconds()
    ) -> Repeatability {
        state.withLock { state in
            if let entry = state.entries[idempotencyKey], now.since(entry.firstSent) < horizon { return entry.value }
            if state.entries.count >= capacity { Self.prune(&state, now: now, horizon: horizon, capacity: capacity) }
            let value = Repeatability(idempotencyKey: idempotencyKey, firstSentAt: wallClock)
            state.entries[idempotencyKey] = Entry(value: value, firstSent: now)
            return value
        }
    }

    /// Forgets an action once it has succeeded or given up.
    public func forget(_ idempotencyKey: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: idempotencyKey) }
    }

    public var count: Int { state.withLock { $0.entries.count } }

    /// Drops what is past the horizon; if that is not enough, the oldest quarter.
    private static func prune(_ state: inout State, now: MonotonicInstant, horizon: Duration, capacity: Int) {
        state.entries = state.entries.filter { now.since($0.value.firstSent) < horizon }
        guard state.entries.count >= capacity else { return }
        let oldest = state.entries.sorted { $0.value.firstSent < $1.value.firstSent }.prefix(max(1, capacity / 4))
        for (key, _) in oldest { state.entries.removeValue(forKey: key) }
    }
}
