import MutewardenModel

/// A bearer token from a login, and when it stops working. Prints no token.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible {
    public var value: Secret
    /// Wall-clock nanoseconds since the epoch.
    public var expiresAt: Int64
    /// When the answer that carried it arrived (wall clock).
    public var obtainedAt: Int64

    public init(value: Secret, expiresAt: Int64, obtainedAt: Int64) {
        self.value = value
        self.expiresAt = expiresAt
        self.obtainedAt = obtainedAt
    }

    /// When to get the next one: ahead of the expiry by a tenth of the token's life, between
    /// 5 s and 5 minutes, so that a slow or failed refresh still has the rest of the old token's
    /// life to try again in.
    public var refreshAt: Int64 {
        let life = max(expiresAt - obtainedAt, 0)
        let lead = min(max(life / 10, 5_000_000_000), 300_000_000_000)
        return expiresAt - min(lead, life)
    }

    public func isUsable(at now: Int64) -> Bool { now < expiresAt }

    public var description: String {
        "bearer token \(value), expires in \(Duration.nanoseconds(max(expiresAt - obtainedAt, 0)).compact)"
    }
}

/// Keeps a bearer token fresh for everyone who needs it: one fetch at a time, a refresh ahead of
/// the expiry that callers do not wait for while the old token still works, and after a failed
/// fetch no new one for `retryAfterFailure` (callers get that failure meanwhile), so a refused
/// login does not turn every action into a request to the identity provider.
///
/// The fetch is the platform's login (OAuth2 client credentials, say); its failure type is the
/// platform's, so that callers see what went wrong in its words.
public actor AccessTokenCache<Failure: Error> {
    public typealias Fetch = @Sendable () async -> Result<AccessToken, Failure>

    private let fetch: Fetch
    private let wallClock: @Sendable () -> Int64
    private let retryAfterFailure: Duration
    private var cached: AccessToken?
    private var inFlight: Task<Result<AccessToken, Failure>, Never>?
    private var lastFailure: (error: Failure, at: Int64)?
    /// Fetches started, for tests and the status line.
    public private(set) var fetches = 0

    public init(
        retryAfterFailure: Duration = .seconds(10), wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds,
        fetch: @escaping Fetch
    ) {
        self.fetch = fetch
        self.wallClock = wallClock
        self.retryAfterFailure = retryAfterFailure
    }

    /// A token that works now: the cached one (starting a refresh in the background once it is
    /// due), or a fresh one, waiting for the fetch in flight if there is one.
    public func token() async -> Result<AccessToken, Failure> {
        let now = wallClock()
        if let cached, cached.isUsable(at: now) {
            if now >= cached.refreshAt, inFlight == nil, !inBackoff(at: now) { _ = start() }
            return .success(cached)
        }
        if let inFlight { return await inFlight.value }
        if let lastFailure, inBackoff(at: now) { return .failure(lastFailure.error) }
        return await start().value
    }

    /// Drops `token` (the server refused it before its expiry: revoked, or the clock is off), so
    /// that the next call fetches another; a newer token already cached is kept.
    public func invalidate(_ token: AccessToken) {
        if cached == token { cached = nil }
    }

    public var current: AccessToken? { cached }

    private func inBackoff(at now: Int64) -> Bool {
        guard let lastFailure else { return false }
        return now - lastFailure.at < retryAfterFailure.nanosecondsClamped
    }

    private func start() -> Task<Result<AccessToken, Failure>, Never> {
        fetches += 1
        let fetch = self.fetch
        // The cache is updated before anyone waiting sees the result, so that a caller's next
        // call finds the new token (or the failure's back-off) rather than the finished task.
        let task = Task {
            let result = await fetch()
            self.finished(result)
            return result
        }
        inFlight = task
        return task
    }

    private func finished(_ result: Result<AccessToken, Failure>) {
        inFlight = nil
        switch result {
        case .success(let token):
            cached = token
            lastFailure = nil
        case .failure(let error):
            lastFailure = (error, wallClock())
        }
    }
}
