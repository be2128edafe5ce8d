import MutewardenAzure
import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// How the target authenticates its requests.
public enum ACSCredential: Sendable, Hashable, CustomStringConvertible {
    /// HMAC-SHA256 with the connection string's access key.
    case accessKey(ACSConnectionString)
    /// An Entra ID token from OAuth2 client credentials, for the resource at `endpoint`.
    case entra(EntraClientCredentials)

    public var description: String {
        switch self {
        case .accessKey: "the connection string's access key (HMAC-SHA256)"
        case .entra(let credentials): "Entra ID app \(credentials.clientID) in tenant \(credentials.tenant)"
        }
    }
}

/// Call Automation as an action target: `participants:mute`/`:unmute` for `mute`, and the
/// recording's `:pause`/`:resume` for `pause-recording`. The platform's events
/// (`ParticipantsUpdated`, `RecordingStateChanged`) confirm, so the target confirms by event.
///
/// Every request carries `Repeatability-Request-ID` from the action's idempotency key and the
/// `Repeatability-First-Sent` of its first attempt: retries, and the same action sent by a second
/// replica, are performed once by the platform.
public final class ACSTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let settings: ACSTargetSettings
    let http: HTTPClient
    let budget: HTTPBudget
    let signer: ACSRequestSigner?
    let tokens: EntraTokenSource?
    let ledger = RepeatabilityLedger()

    init(name: String, settings: ACSTargetSettings, http: HTTPClient, tokenHTTP: HTTPClient?) throws {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: settings.confirmsByEvent)
        self.settings = settings
        self.http = http
        budget = HTTPBudget(name: "acs target \(name)", maxConnections: settings.maxConnections)
        switch settings.credential {
        case .accessKey(let connection):
            signer = try ACSRequestSigner(connectionString: connection)
            tokens = nil
        case .entra(let credentials):
            signer = nil
            tokens = EntraTokenSource(
                credentials: credentials, http: tokenHTTP ?? http, budget: HTTPBudget(name: "acs target \(name) token", maxConnections: 1))
        }
    }

    func bound(_ request: ActionRequest) -> Duration {
        guard let left = request.timeLeft else { return settings.timeout }
        return max(.milliseconds(50), min(settings.timeout, left - .milliseconds(50)))
    }

    /// The operation for `request`, or why it cannot be sent yet.
    static func operation(for request: ActionRequest, settings: ACSTargetSettings) -> Result<ACSCallAutomationAPI.Operation, ActionFailure> {
        let call: String
        switch request.address {
        case .call(let id): call = id
        case .agentExtension:
            // check-config refuses this (ACSTargetSettings.refusal); kept for an engine fed by
            // other means.
            return .failure(ActionFailure(.permanent, "ACS Call Automation acts on one call connection, not on an extension", code: "unsupported"))
        }
        switch request.kind {
        case .mute:
            guard let participant = request.agentExtension else {
                // The roster (ParticipantsUpdated) names the agent; until it has arrived there is
                // no one to mute. Retrying lets it arrive within the deadline.
                return .failure(
                    ActionFailure(.retryable, "ACS mute on call \(call): the feed has not named the agent yet", code: "no-agent"))
            }
            if request.verb == .undo && settings.unmuteAPIVersion == nil {
                return .failure(
                    ActionFailure(
                        .permanent, "ACS unmute on call \(call): no api-version with participants:unmute is configured", code: "unsupported"))
            }
            return .success(
                request.verb == .apply
                    ? .mute(callConnectionID: call, participant: participant) : .unmute(callConnectionID: call, participant: participant))
        case .pauseRecording:
            let configured = settings.recordingIDAttribute.flatMap { request.attributes[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            guard let recording = request.call.secondary[settings.recordingIDKey] ?? configured else {
                return .failure(
                    ActionFailure(
                        .retryable, "ACS recording of call \(call): no recording id known yet (RecordingStateChanged not seen)",
                        code: "no-recording"))
            }
            return .success(request.verb == .apply ? .pauseRecording(recordingID: recording) : .resumeRecording(recordingID: recording))
        }
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        let operation: ACSCallAutomationAPI.Operation
        switch Self.operation(for: request, settings: settings) {
        case .success(let value): operation = value
        case .failure(let failure): return .failed(failure)
        }
        var httpRequest = ACSCallAutomationAPI.request(
            operation, endpoint: settings.endpoint, apiVersion: settings.apiVersion, unmuteAPIVersion: settings.unmuteAPIVersion,
            operationContext: request.idempotencyKey)
        httpRequest.headers += ledger.repeatability(for: request.idempotencyKey).headers
        httpRequest.timeout = bound(request)
        httpRequest.budget = budget
        var usedToken: AccessToken?
        do {
            if let signer {
                httpRequest = try signer.sign(httpRequest)
            } else if let tokens {
                let token = try await tokens.token()
                usedToken = token
                httpRequest.headers.append(HTTPHeader("Authorization", "Bearer " + token.value.reveal(), secret: true))
            }
        } catch let error as EntraTokenError {
            return .failed(
                ActionFailure(error.isConfigurationProblem ? .permanent : .retryable, "\(operation): no token: \(error)", code: "token"))
        } catch {
            return .failed(ActionFailure(.permanent, "\(operation): the request cannot be signed: \(error)", code: "signature"))
        }
        do {
            let response = try await http.send(httpRequest)
            var renewed = false
            if response.status == 401, let usedToken, let tokens {
                await tokens.invalidate(usedToken)
                renewed = true
            }
            return ACSCallAutomationAPI.classify(
                httpStatus: response.status, body: response.body, operation: operation, credentialRenewed: renewed)
        } catch {
            return .failed(error.actionFailure("\(operation)"))
        }
    }
}
