#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// The engine never reads a clock itself: every entry point takes the current instant, so tests
/// drive it with made-up times and the daemon with ``SystemClock``.
public struct MonotonicInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        Self(nanoseconds: lhs.nanoseconds &+ rhs.nanosecondsClamped)
    }

    public static func - (lhs: Self, rhs: Duration) -> Self {
        Self(nanoseconds: lhs.nanoseconds &- rhs.nanosecondsClamped)
    }

    /// The time from `earlier` to `self`.
    public func since(_ earlier: Self) -> Duration { .nanoseconds(nanoseconds &- earlier.nanoseconds) }

    public var description: String { "t+\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64 so that arithmetic on instants cannot trap.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        if seconds >= Int64.max / 1_000_000_000 { return .max }
        if seconds <= Int64.min / 1_000_000_000 { return .min }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// Milliseconds as a floating-point number, for log fields.
    public var milliseconds: Double { Double(nanosecondsClamped) / 1e6 }

    /// Seconds as a floating-point number.
    public var seconds: Double { Double(nanosecondsClamped) / 1e9 }
}

/// Source of time for the daemon. The engine itself takes instants as arguments.
public protocol MonotonicClock: Sendable {
    func now() -> MonotonicInstant
}

/// CLOCK_MONOTONIC: immune to wall-clock steps, so caps and deadlines are never cut short by NTP.
public struct SystemClock: MonotonicClock {
    public init() {}

    public func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}

extension Duration {
    /// Short and readable: `250ms`, `2s`, `10m`, `4h` as configuration files write them, and `1.5s`
    /// for a measured time that is not a whole number of seconds.
    public var compact: String {
        let nanoseconds = nanosecondsClamped
        for (unit, size) in [("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000)]
        where nanoseconds >= size && nanoseconds % size == 0 {
            return "\(nanoseconds / size)\(unit)"
        }
        if nanoseconds >= 1_000_000_000 {
            let tenths = (nanoseconds + 50_000_000) / 100_000_000
            return "\(tenths / 10).\(tenths % 10)s"
        }
        if nanoseconds >= 1_000_000 { return "\((nanoseconds + 500_000) / 1_000_000)ms" }
        return "\(nanoseconds / 1000)µs"
    }
}

/// Wall-clock nanoseconds since the Unix epoch (CLOCK_REALTIME): for what must mean the same
/// after a restart, such as a window's open time in the state file.
public func wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
