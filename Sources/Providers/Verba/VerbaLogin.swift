import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// The target's RequestToken session: one token, used until `renewAfter`, renewed then in the
/// background while the old one still serves, and dropped when the API refuses it. At most one
/// RequestToken is in flight; every attempt that needs a token meanwhile waits for that one.
final class VerbaTokenSession: Sendable {
    struct Token: Sendable {
        var value: Secret
        var obtainedAt: ContinuousClock.Instant
    }

    private struct State {
        var current: Token?
        var inFlight: Task<Result<Token, VerbaLoginError>, Never>?
    }

    let baseURL: String
    let apiKey: Secret
    let username: String
    let password: Secret
    let lifetime: Duration
    let renewAfter: Duration
    let http: HTTPClient
    let budget: HTTPBudget
    let clock: @Sendable () -> ContinuousClock.Instant
    private let state = Locked(State())

    init(
        baseURL: String, apiKey: Secret, username: String, password: Secret, lifetime: Duration, renewAfter: Duration,
        http: HTTPClient, budget: HTTPBudget, clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.username = username
        self.password = password
        self.lifetime = lifetime
        self.renewAfter = renewAfter
        self.http = http
        self.budget = budget
        self.clock = clock
    }

    /// A token to send: the current one while it is fresh; while it is due for renewal but not
    /// yet expired, the current one, with a renewal started; otherwise a new one, awaited.
    func token(timeout: Duration) async -> Result<Secret, VerbaLoginError> {
        let now = clock()
        let (usable, wait) = state.withLock { state -> (Secret?, Task<Result<Token, VerbaLoginError>, Never>?) in
            if let current = state.current, now - current.obtainedAt < renewAfter { return (current.value, nil) }
            let task = state.inFlight ?? startLogin(timeout: timeout)
            state.inFlight = task
            if let current = state.current, now - current.obtainedAt < lifetime { return (current.value, nil) }
            return (nil, task)
        }
        if let usable { return .success(usable) }
        guard let wait else { return .failure(.malformed("no token and no login")) }
        return await wait.value.map(\.value)
    }

    /// The API refused `token`: forget it (unless a newer one replaced it meanwhile).
    func drop(_ token: Secret) {
        state.withLock { state in
            if state.current?.value == token { state.current = nil }
        }
    }

    /// Whether a token is held, for tests.
    var hasToken: Bool { state.withLock { $0.current != nil } }

    /// Runs under the lock: the task it starts takes the lock only once it has an answer.
    private func startLogin(timeout: Duration) -> Task<Result<Token, VerbaLoginError>, Never> {
        Task { [self] in
            let result = await login(timeout: timeout)
            state.withLock { state in
                if case .success(let token) = result { state.current = token }
                state.inFlight = nil
            }
            return result
        }
    }

    private func login(timeout: Duration) async -> Result<Token, VerbaLoginError> {
        var request = VerbaAPI.tokenRequest(baseURL: baseURL, apiKey: apiKey, username: username, password: password)
        request.timeout = timeout
        request.budget = budget
        let sentAt = clock()
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            return .failure(.transport("\(error)"))
        }
        // The token's hour counts from the request, not the answer: the server started it then.
        return VerbaAPI.token(httpStatus: response.status, body: response.body).map {
            Token(value: Secret(reference: "verba token", value: $0), obtainedAt: sentAt)
        }
    }
}
