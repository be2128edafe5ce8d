import MutewardenAzure
import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// Microsoft Graph's calls API as an action target: the bot's own `mute`/`unmute` (or a
/// participant's `mute`, which has no undo) for `mute`, and `updateRecordingStatus` for
/// `pause-recording`. Each request carries the action's idempotency key as `clientContext`.
///
/// The answer is a `commsOperation`. `completed` is accepted; `failed` is a failure with its
/// `resultInfo`; `notStarted`/`running` is accepted, and the feed follows the operation through
/// its notifications (``GraphOperationMessage``). What confirms: the feed's roster (`isMuted` of
/// the agent) for a mute, the completed operation for the recording status, which Graph reports
/// by no other means.
public final class GraphTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let settings: GraphTargetSettings
    let http: HTTPClient
    let budget: HTTPBudget
    let tokens: EntraTokenSource
    let router: GraphOperationRouter

    init(name: String, settings: GraphTargetSettings, http: HTTPClient, tokenHTTP: HTTPClient? = nil, router: GraphOperationRouter) {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: settings.confirmsByEvent)
        self.settings = settings
        self.http = http
        self.router = router
        budget = HTTPBudget(name: "graph target \(name)", maxConnections: settings.maxConnections)
        tokens = EntraTokenSource(
            credentials: settings.credentials, http: tokenHTTP ?? http, budget: HTTPBudget(name: "graph target \(name) token", maxConnections: 1))
    }

    func bound(_ request: ActionRequest) -> Duration {
        guard let left = request.timeLeft else { return settings.timeout }
        return max(.milliseconds(50), min(settings.timeout, left - .milliseconds(50)))
    }

    /// The operation for `request`, or why it cannot be sent.
    func operation(for request: ActionRequest) -> Result<GraphCallsAPI.Operation, ActionFailure> {
        let call: String
        switch request.address {
        case .call(let id): call = id
        case .agentExtension:
            // check-config refuses this (GraphTargetSettings.refusal); kept for an engine fed by
            // other means.
            return .failure(ActionFailure(.permanent, "Graph acts on one call at a time, not on an extension", code: "unsupported"))
        }
        switch (request.kind, settings.leg) {
        case (.mute, .bot):
            return .success(request.verb == .apply ? .muteBot(call: call) : .unmuteBot(call: call))
        case (.mute, .participant):
            guard request.verb == .apply else {
                return .failure(
                    ActionFailure(.permanent, "Graph has no way to unmute another participant on call \(call)", code: "unsupported"))
            }
            guard let participant = request.agentExtension else {
                return .failure(
                    ActionFailure(.retryable, "Graph mute on call \(call): the feed has not named the agent's participant yet", code: "no-agent"))
            }
            return .success(.muteParticipant(call: call, participant: participant))
        case (.pauseRecording, _):
            return .success(.updateRecordingStatus(call: call, recording: request.verb == .undo))
        }
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        let operation: GraphCallsAPI.Operation
        switch self.operation(for: request) {
        case .success(let value): operation = value
        case .failure(let failure): return .failed(failure)
        }
        let clientContext = GraphCallsAPI.clientContext(request.idempotencyKey)
        var httpRequest = GraphCallsAPI.request(operation, graphURL: settings.graphURL, clientContext: clientContext)
        httpRequest.timeout = bound(request)
        httpRequest.budget = budget
        let token: AccessToken
        do {
            token = try await tokens.token()
        } catch {
            return .failed(ActionFailure(error.isConfigurationProblem ? .permanent : .retryable, "\(operation): no token: \(error)", code: "token"))
        }
        httpRequest.headers.append(HTTPHeader("Authorization", "Bearer " + token.value.reveal(), secret: true))
        let response: HTTPResponse
        do {
            response = try await http.send(httpRequest)
        } catch {
            return .failed(error.actionFailure("\(operation)"))
        }
        var renewed = false
        if response.status == 401 {
            await tokens.invalidate(token)
            renewed = true
        }
        switch GraphCallsAPI.classify(httpStatus: response.status, body: response.body, operation: operation, credentialRenewed: renewed) {
        case .completed:
            if let effect = operation.effect {
                router.send(.completed(call: operation.call, effect: effect), to: request.feed)
            }
            return .accepted
        case .running(let answer):
            router.send(
                .running(
                    clientContext: answer.clientContext ?? clientContext, operationID: answer.id, call: operation.call,
                    operation: "\(operation)", effect: operation.effect), to: request.feed)
            return .accepted
        case .failed(let failure):
            return .failed(failure)
        }
    }
}
