import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// `MuteUnmuteCalls` as an action target: `pause-recording` by call (`ivrid`) or by extension
/// (the SIP ID). ErrorCode 200 only means the request was taken; the feed's `recording.IsMuted`
/// confirms it, so the target confirms by event unless configured otherwise.
public final class VoicenterTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let settings: VoicenterTargetSettings
    let http: HTTPClient
    /// The target's own share of the connections to the monitor server.
    let budget: HTTPBudget

    init(name: String, settings: VoicenterTargetSettings, http: HTTPClient) {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: settings.confirmsByEvent)
        self.settings = settings
        self.http = http
        budget = HTTPBudget(name: "voicenter target \(name)", maxConnections: settings.maxConnections)
    }

    /// The request's timeout: the target's, or less when the action's deadline comes sooner, so
    /// that a request still queued for a connection fails saying so before the engine's alarm.
    func bound(_ request: ActionRequest) -> Duration {
        guard let left = request.timeLeft else { return settings.timeout }
        return max(.milliseconds(50), min(settings.timeout, left - .milliseconds(50)))
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        guard request.kind == .pauseRecording else {
            // check-config refuses this (VoicenterTargetSettings.refusal); kept for an engine fed
            // by other means.
            return .failed(
                ActionFailure(
                    .permanent, "Voicenter's MuteUnmuteCalls stops the recording, not the agent's audio: it cannot \(request.kind.rawValue)",
                    code: "unsupported"))
        }
        let parameters = VoicenterMuteAPI.parameters(request.address, request.verb)
        let operation = "Voicenter MuteUnmuteCalls state \(request.verb == .apply ? "1" : "0") for \(request.address)"
        var httpRequest = VoicenterMuteAPI.request(url: settings.muteURL, method: settings.method, parameters: parameters)
        httpRequest.timeout = bound(request)
        httpRequest.budget = budget
        do {
            let response = try await http.send(httpRequest)
            return VoicenterMuteAPI.classify(httpStatus: response.status, body: response.body, operation: operation)
        } catch {
            return .failed(error.actionFailure(operation))
        }
    }
}
