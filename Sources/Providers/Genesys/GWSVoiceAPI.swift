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

    /// The path of the voice API for one call: the id as one path segment, every byte outside
    /// RFC 3986's unreserved set (letters, digits, `-._~`) percent-encoded, `/` included, so an id
    /// can never reach another resource. GWS ids are letters and digits, returned as they are:
    /// Foundation's `addingPercentEncoding` was a visible share of an event's path on the engine
    /// thread (docs/performance.md).
    public static func callPath(_ id: String) -> String {
        func unreserved(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                true
            default: false
            }
        }
        let prefix = "/api/v2/me/calls/"
        guard !id.utf8.allSatisfy(unreserved) else { return prefix + id }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes = Array(prefix.utf8)
        for byte in id.utf8 {
            if unreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
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
