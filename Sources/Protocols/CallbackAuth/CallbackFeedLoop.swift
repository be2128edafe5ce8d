import MutewardenIngress
import MutewardenModel

/// Why a callback feed cannot run.
public struct CallbackFeedError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// What a feed whose platform calls it back (ACS, Graph) does around its own logic: it registers
/// its path on the daemon's ingress, with its platform's authenticator asked before any body is
/// read; says the feed is up while the route is there; and runs its timers (quiet periods, idle
/// limits) until the task is cancelled.
public enum CallbackFeedLoop {
    /// How late a timer may be noticed: the loop looks this often rather than being woken by each
    /// callback, which would cost every callback a wake-up.
    public static let tickInterval: Duration = .milliseconds(250)

    /// Runs until cancelled. `handle` answers each authenticated request; `nextDeadline` says
    /// when `tick` next has work, which it gets at most ``tickInterval`` late.
    public static func run(
        feed: String, platform: String, path: String, ingress: (any IngressRouter)?, authenticator: any CallbackAuthenticating,
        sink: any CallUpdateSink, handle: @escaping @Sendable (IngressRequest) async -> IngressResponse,
        nextDeadline: () -> MonotonicInstant?, tick: (MonotonicInstant) -> Void
    ) async throws {
        guard let ingress else {
            let detail = "no ingress is configured: the \(platform) feed needs the daemon's 'ingress' section to receive callbacks"
            sink.feedStateChanged(feed: feed, up: false, detail: detail)
            throw CallbackFeedError(message: detail)
        }
        let registration = try ingress.register(
            IngressRoute(path: path, owner: "feed \(feed)", authenticator: CallbackIngressAuthenticator(authenticator), handler: handle))
        defer { registration.cancel() }
        sink.feedStateChanged(feed: feed, up: true, detail: "taking callbacks on \(path)")
        defer { sink.feedStateChanged(feed: feed, up: false, detail: "stopped") }
        let clock = SystemClock()
        while !Task.isCancelled {
            let wait = nextDeadline().map { max(.milliseconds(1), $0.since(clock.now())) } ?? tickInterval
            do { try await Task.sleep(for: min(wait, tickInterval)) } catch { break }
            tick(clock.now())
        }
    }

    /// One record of the types a feed skipped since the last, by count, for `tick` to write.
    public static func skippedSummary(_ counts: [String: Int]) -> String? {
        guard !counts.isEmpty else { return nil }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
