import MutewardenJSON
import MutewardenModel

/// The GWS voice API operations mutewarden uses: `POST /api/v2/me/calls/{id}` with an
/// `operationName`, and what its answer means for the action.
public enum GWSVoiceAPI {
    /// `MuteCall`/`UnmuteCall` for `mute`, `PauseCallRecording`/`ResumeCallRecording` for
    /// `pause-recording` (features `api-voice` and `api-voice-recording`).
    public static func operationName(_ kind: ActionKind, _ verb: ActionVerb) -> String {
        switch (kind, verb) {
        case (.mute, .apply): "MuteCall"
        case (.mute, .undo): "UnmuteCall"
        case (.pauseRecording, .apply): "PauseCallRecording"
        case (.pauseRecording, .undo): "ResumeCallRecording"
        }
    }

    public static func requestBody(_ kind: ActionKind, _ verb: ActionVerb) -> String {
        JSONValue.object([("operationName", .string(operationName(kind, verb)))]).serialized
    }

    /// What an answer means. A 200 with `statusCode` 0 only means *accepted*: the CometD event
    /// (`mute: On`, `recordingState: Paused`) confirms it.
    public enum Answer: Sendable, Hashable {
        case accepted
        /// Not authenticated (statusCode 20, HTTP 401) or the CSRF token expired (HTTP 403):
        /// log in again or refresh the token, then retry at once.
        case reauthenticate(String)
        case failed(ActionFailure)
    }

    public static func classify(httpStatus: Int, body: JSONValue?) -> Answer {
        let statusCode = body?["statusCode"]?.int
        let statusMessage = body?["statusMessage"]?.string
        if httpStatus == 401 { return .reauthenticate("HTTP 401") }
        if httpStatus == 403 {
            // GWS answers a missing or stale CSRF token (or a lost JSESSIONID) with 403.
            return .reauthenticate("HTTP 403" + (statusMessage.map { ": \($0)" } ?? ""))
        }
        if (500...599).contains(httpStatus) {
            return .failed(ActionFailure(.retryable, "GWS answered HTTP \(httpStatus)", code: "http-\(httpStatus)"))
        }
        guard (200...299).contains(httpStatus) else {
            return .failed(ActionFailure(.permanent, "GWS answered HTTP \(httpStatus)", code: "http-\(httpStatus)"))
        }
        guard let statusCode else {
            return .failed(ActionFailure(.retryable, "GWS answered without a statusCode", code: "no-status"))
        }
        let detail = statusMessage.map { ": \($0)" } ?? ""
        switch statusCode {
        case 0: return .accepted
        case 20: return .reauthenticate("statusCode 20 (not authenticated)")
        case 2, 6:
            // The call has moved on (wrong state, or gone): retrying would only storm.
            return .failed(ActionFailure(.callGone, "GWS statusCode \(statusCode)\(detail)", code: String(statusCode)))
        case 4, 12:
            return .failed(ActionFailure(.retryable, "GWS statusCode \(statusCode)\(detail)", code: String(statusCode)))
        default:
            return .failed(ActionFailure(.permanent, "GWS statusCode \(statusCode)\(detail)", code: String(statusCode)))
        }
    }
}
