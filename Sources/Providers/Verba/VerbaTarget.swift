import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// Verba's `MuteRecording` as an action target: `pause-recording` by call (`callID`) or by
/// extension (`extension` with `status`). Verba sends no event, so the API's `code="0"` is the
/// confirmation.
public final class VerbaTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let settings: VerbaTargetSettings
    let http: HTTPClient
    /// The target's own share of the connections to the Media Repository.
    let budget: HTTPBudget
    /// nil with `login: none`.
    let session: VerbaTokenSession?

    init(name: String, settings: VerbaTargetSettings, http: HTTPClient, clock: @escaping @Sendable () -> ContinuousClock.Instant) {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: settings.confirmsByEvent)
        self.settings = settings
        self.http = http
        budget = HTTPBudget(name: "verba target \(name)", maxConnections: settings.maxConnections)
        if settings.login == .basic, let password = settings.password {
            session = VerbaTokenSession(
                baseURL: settings.baseURL, apiKey: settings.apiKey, username: settings.username, password: password,
                lifetime: settings.tokenLifetime, renewAfter: settings.tokenRenewAfter, http: http, budget: budget, clock: clock)
        } else {
            session = nil
        }
    }

    /// The request's timeout: the target's, or less when the action's deadline comes sooner, so
    /// that a request still queued for a connection fails saying so before the engine's alarm.
    func bound(_ request: ActionRequest) -> Duration {
        guard let left = request.timeLeft else { return settings.timeout }
        return max(.milliseconds(50), min(settings.timeout, left - .milliseconds(50)))
    }

    /// Where Verba finds the call: the id the feed gave under `call_id_key` (or its primary id),
    /// or the extension with the configured statuses.
    func locator(_ request: ActionRequest) -> Result<VerbaAPI.Locator, ActionFailure> {
        switch request.address {
        case .agentExtension(let number):
            return .success(.extension(number, status: settings.status))
        case .call(let id):
            guard let key = settings.callIDKey else { return .success(.callID(id)) }
            guard let verbaID = request.call.secondary[key], !verbaID.isEmpty else {
                return .failure(
                    ActionFailure(
                        .permanent,
                        "Verba MuteRecording for call \(id): its feed '\(request.feed)' gave no '\(key)' identifier "
                            + "(call_id_key), so Verba's call id is unknown; address this target by extension",
                        code: "no-call-id"))
            }
            return .success(.callID(verbaID))
        }
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        guard request.kind == .pauseRecording else {
            // check-config refuses this (VerbaTargetSettings.refusal); kept for an engine fed by
            // other means.
            return .failed(
                ActionFailure(
                    .permanent, "Verba's MuteRecording mutes the recording, not the agent's audio: it cannot \(request.kind.rawValue)",
                    code: "unsupported"))
        }
        let locator: VerbaAPI.Locator
        switch self.locator(request) {
        case .success(let found): locator = found
        case .failure(let failure): return .failed(failure)
        }
        let mute = request.verb == .apply ? settings.muteValue : settings.unmuteValue
        let operation = "Verba MuteRecording mute=\(mute) for \(locator)"
        let timeout = bound(request)
        var token: Secret?
        if let session {
            switch await session.token(timeout: timeout) {
            case .success(let value): token = value
            case .failure(let error):
                return .failed(ActionFailure(error.disposition, "\(operation): \(error)", code: error.code))
            }
        }
        let parameters = VerbaAPI.muteParameters(locator, mute: mute, apiKey: settings.apiKey, token: token)
        var httpRequest = VerbaAPI.request(baseURL: settings.baseURL, method: settings.method, parameters: parameters)
        httpRequest.timeout = timeout
        httpRequest.budget = budget
        let response: HTTPResponse
        do {
            response = try await http.send(httpRequest)
        } catch {
            return .failed(error.actionFailure(operation))
        }
        let outcome = VerbaAPI.classify(httpStatus: response.status, body: response.body, operation: operation)
        if case .unauthorized(let failure) = outcome {
            guard let session, let token else {
                // No token to renew: the API key requires authentication.
                return .failed(
                    ActionFailure(
                        .permanent, "\(operation): refused without a token; the API key requires authentication: set 'login: basic'",
                        code: failure.code))
            }
            session.drop(token)
        }
        return outcome.result
    }
}
