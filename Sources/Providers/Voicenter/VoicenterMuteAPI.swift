import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// Voicenter's `MuteUnmuteCalls`, which stops and restarts the *recording* of one call (`ivrid`)
/// or of every active call of an extension (`extension`, the SIP ID): its requests, and what its
/// answers mean for the action. Pure.
public enum VoicenterMuteAPI {
    /// The parameters: the address, then `state` "1" to mute the recording, "0" to undo.
    public static func parameters(_ address: ActionAddress, _ verb: ActionVerb) -> [(String, String)] {
        let state = verb == .apply ? "1" : "0"
        switch address {
        case .call(let id): return [("ivrid", id), ("state", state)]
        case .agentExtension(let sipID): return [("extension", sipID), ("state", state)]
        }
    }

    /// The request: a JSON body by POST, or the same parameters in the query of a GET.
    public static func request(url: String, method: VoicenterMuteMethod, parameters: [(String, String)]) -> HTTPRequest {
        switch method {
        case .postJSON:
            let body = JSONValue.object(parameters.map { ($0.0, .string($0.1)) }).serialized
            return HTTPRequest(.post, url, headers: [HTTPHeader("Content-Type", "application/json")], text: body)
        case .get:
            let query = parameters.map { "\(PercentEncoding.unreserved($0.0))=\(PercentEncoding.unreserved($0.1))" }.joined(separator: "&")
            return HTTPRequest(.get, url + "?" + query)
        }
    }

    /// The documented message for an ivrid the platform does not know (any more).
    static let notFound = "uniqueivrid not found"
    static let invalidParameters = "parameters are not valid"

    /// Reads an answer: `{"ErrorCode": 200 | "200", "Message": "Success", "ActionID": "…"}`.
    ///
    /// - ErrorCode 200 is accepted (the feed's `recording.IsMuted` confirms it).
    /// - "UniqueIvrID not found" says the call is gone: `call-gone`, which the engine believes
    ///   only when the feed agrees.
    /// - "Parameters are not valid" will not change on a retry: `permanent`.
    /// - Any other ErrorCode, or an answer without one, is `retryable`.
    /// - An HTTP error status is read as HTTP errors are (5xx, 408, 429 retryable; others
    ///   permanent), unless its body says the call is gone.
    ///
    /// `operation` names the request in the failure's message ("MuteUnmuteCalls state 1 for call
    /// 123"); the platform's `Message` follows it, bounded and stripped of control characters.
    public static func classify(httpStatus: Int, body: [UInt8], operation: String) -> ActionAttemptResult {
        let answer = try? JSONValue.parse(body, maximumDepth: 8)
        let code = answer.flatMap { errorCode($0["ErrorCode"] ?? $0["errorCode"]) }
        let message = (answer?["Message"] ?? answer?["message"])?.scalarText.map { PlatformText.shown($0) }
        let detail = [code.map { "ErrorCode \($0.text)" }, message.map { "'\($0)'" }].compactMap { $0 }.joined(separator: ": ")
        let errorCodeField = code.map { "ErrorCode \($0.text)" }
        if let message, message.lowercased().contains(notFound) {
            return .failed(ActionFailure(.callGone, "\(operation): \(detail)", code: errorCodeField ?? "http \(httpStatus)"))
        }
        guard (200..<300).contains(httpStatus) else {
            let disposition = HTTPResponse.disposition(forStatus: httpStatus) ?? .retryable
            return .failed(
                ActionFailure(
                    disposition, "\(operation): the monitor server answered HTTP \(httpStatus)" + (detail.isEmpty ? "" : " (\(detail))"),
                    code: "http \(httpStatus)"))
        }
        guard let code else {
            return .failed(
                ActionFailure(
                    .retryable, "\(operation): answer not understood (no ErrorCode" + (answer == nil ? ", not JSON)" : ")"),
                    code: "no-error-code"))
        }
        if code.value == 200 { return .accepted }
        if let message, message.lowercased().hasPrefix(invalidParameters) {
            return .failed(ActionFailure(.permanent, "\(operation): \(detail)", code: errorCodeField))
        }
        return .failed(ActionFailure(.retryable, "\(operation): \(detail)", code: errorCodeField))
    }

    /// `ErrorCode` as the page types it (an integer) or as the API was seen to send it (a
    /// string): its value when it is a whole number, and its text, bounded, for the record.
    static func errorCode(_ value: JSONValue?) -> (value: Int?, text: String)? {
        switch value {
        case .number?:
            guard let int = value?.int else { return (nil, value?.scalarText.map { PlatformText.shown($0) } ?? "?") }
            return (int, String(int))
        case .string(let text)?:
            let trimmed = text.filter { $0 != " " }
            return (Int(trimmed), PlatformText.shown(text))
        default:
            return nil
        }
    }
}
