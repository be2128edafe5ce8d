import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// The GWS voice API as an action target: `POST /api/v2/me/calls/{id}`. A 200 only means
/// accepted; the feed's event confirms it, so this target declares confirmation by event.
public final class GWSTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let session: GWSSession
    let timeout: Duration
    /// The target's own share of the connections to GWS, apart from the feed's.
    let budget: HTTPBudget

    init(name: String, session: GWSSession, timeout: Duration, maxConnections: Int) {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: true)
        self.session = session
        self.timeout = timeout
        budget = HTTPBudget(name: "genesys target \(name)", maxConnections: maxConnections)
    }

    /// The request's timeout: the target's, or less when the action's deadline comes sooner. A
    /// request still waiting for a connection then fails (saying it was never sent) a moment
    /// before the deadline, so the engine's alarm names that cause.
    func bound(_ request: ActionRequest) -> Duration {
        guard let left = request.timeLeft else { return timeout }
        return max(.milliseconds(50), min(timeout, left - .milliseconds(50)))
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        guard case .call(let id) = request.address else {
            return .failed(
                ActionFailure(
                    .permanent, "GWS acts on calls by id: address this action `by: call`", code: "addressing"))
        }
        let path = GWSVoiceAPI.callPath(id)
        let body = GWSVoiceAPI.requestBody(request.kind, request.verb)
        for attempt in 1...2 {
            let response: HTTPResponse
            do {
                response = try await session.send(.post, path, json: body, timeout: bound(request), budget: budget)
            } catch let error as HTTPError {
                return .failed(error.actionFailure("GWS \(GWSVoiceAPI.operationName(request.kind, request.verb))"))
            } catch {
                return .failed(ActionFailure(.retryable, "\(error)"))
            }
            switch GWSVoiceAPI.classify(httpStatus: response.status, body: try? JSONValue.parse(response.body)) {
            case .accepted:
                return .accepted
            case .failed(let failure):
                return .failed(failure)
            case .reauthenticate(let why):
                // The session already retried HTTP 401/403 once; statusCode 20 lands here.
                if attempt == 1, (try? await session.login()) != nil { continue }
                return .failed(ActionFailure(.retryable, "GWS: not authenticated (\(why))", code: "20"))
            }
        }
        return .failed(ActionFailure(.retryable, "GWS: not authenticated after logging in again", code: "20"))
    }
}
