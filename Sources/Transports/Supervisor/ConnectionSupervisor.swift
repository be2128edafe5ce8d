import MutewardenModel

/// How quickly a lost connection is tried again: exponential backoff with full jitter, reset once
/// a connection has stayed up for a while (so one flap after a day does not start at the cap, and
/// a server that accepts then drops at once cannot make the client spin).
public struct ReconnectPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// A connection that was up at least this long starts the next backoff from the beginning.
    public var stableAfter: Duration

    public init(
        initialDelay: Duration = .milliseconds(500), maximumDelay: Duration = .seconds(30),
        stableAfter: Duration = .seconds(30)
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.stableAfter = stableAfter
    }

    /// The ceiling for the wait after `failures` consecutive failures (1 for the first).
    public func ceiling(afterFailures failures: Int) -> Duration {
        let initial = initialDelay.nanosecondsClamped
        let (grown, overflow) = initial.multipliedReportingOverflow(by: 1 << Int64(min(max(failures - 1, 0), 30)))
        return .nanoseconds(min(maximumDelay.nanosecondsClamped, overflow ? .max : grown))
    }
}

/// A connection's visible state, for the logs and the status line.
public struct ConnectionStatus: Sendable, Hashable, CustomStringConvertible {
    public enum Phase: String, Sendable, Hashable {
        case connecting, up, down, stopped
    }

    public var phase: Phase
    /// When this phase began.
    public var since: MonotonicInstant
    /// Why the last connection ended or failed, in an operator's words.
    public var lastError: String?
    public var consecutiveFailures: Int
    /// The wait before the next attempt, when `phase` is `down`.
    public var retryIn: Duration?

    public init(
        phase: Phase, since: MonotonicInstant, lastError: String? = nil, consecutiveFailures: Int = 0, retryIn: Duration? = nil
    ) {
        self.phase = phase
        self.since = since
        self.lastError = lastError
        self.consecutiveFailures = consecutiveFailures
        self.retryIn = retryIn
    }

    public var description: String {
        var text = phase.rawValue
        if let lastError, phase != .up { text += " (\(lastError))" }
        if let retryIn { text += ", retrying in \(retryIn.compact)" }
        return text
    }
}

/// Given to each connection attempt: the attempt calls ``markUp()`` once it is connected.
public final class ConnectionHandle: Sendable {
    private let upSince = Locked<MonotonicInstant?>(nil)
    private let clock: any MonotonicClock
    private let onUp: @Sendable () -> Void

    init(clock: any MonotonicClock, onUp: @escaping @Sendable () -> Void) {
        self.clock = clock
        self.onUp = onUp
    }

    /// The connection is established (and, for a feed, subscribed). Later calls are ignored.
    public func markUp() {
        let first = upSince.withLock { since in
            guard since == nil else { return false }
            since = clock.now()
            return true
        }
        if first { onUp() }
    }

    var wentUpAt: MonotonicInstant? { upSince.withLock { $0 } }
}

/// Runs connect → run → back off → reconnect until cancelled, reporting every change of state.
///
/// The attempt closure connects, calls `markUp()`, and returns or throws when the connection
/// ends; the supervisor never decides what a protocol error means, only when to try again.
public struct ConnectionSupervisor: Sendable {
    public let name: String
    public let policy: ReconnectPolicy
    private let clock: any MonotonicClock
    private let randomSeed: UInt64
    private let sleep: @Sendable (Duration) async throws -> Void
    private let onChange: @Sendable (ConnectionStatus) -> Void

    public init(
        name: String, policy: ReconnectPolicy = ReconnectPolicy(), clock: any MonotonicClock = SystemClock(),
        randomSeed: UInt64 = UInt64.random(in: 0...UInt64.max),
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        onChange: @escaping @Sendable (ConnectionStatus) -> Void
    ) {
        self.name = name
        self.policy = policy
        self.clock = clock
        self.randomSeed = randomSeed
        self.sleep = sleep
        self.onChange = onChange
    }

    public func run(_ attempt: @escaping @Sendable (ConnectionHandle) async throws -> Void) async {
        var failures = 0
        var lastError: String?
        var random = SplitMix64(seed: randomSeed)
        while !Task.isCancelled {
            onChange(ConnectionStatus(phase: .connecting, since: clock.now(), lastError: lastError, consecutiveFailures: failures))
            let handle = ConnectionHandle(clock: clock) { [clock, onChange] in
                onChange(ConnectionStatus(phase: .up, since: clock.now(), lastError: nil, consecutiveFailures: 0))
            }
            do {
                try await attempt(handle)
                lastError = "the connection was closed"
            } catch is CancellationError {
                break
            } catch {
                lastError = "\(error)"
            }
            if Task.isCancelled { break }
            if let upAt = handle.wentUpAt, clock.now().since(upAt) >= policy.stableAfter { failures = 0 }
            failures += 1
            let ceiling = policy.ceiling(afterFailures: failures).nanosecondsClamped
            let delay = Duration.nanoseconds(Int64.random(in: 0...max(ceiling, 0), using: &random))
            onChange(
                ConnectionStatus(
                    phase: .down, since: clock.now(), lastError: lastError, consecutiveFailures: failures, retryIn: delay))
            do { try await sleep(delay) } catch { break }
        }
        onChange(ConnectionStatus(phase: .stopped, since: clock.now(), lastError: lastError, consecutiveFailures: failures))
    }
}
