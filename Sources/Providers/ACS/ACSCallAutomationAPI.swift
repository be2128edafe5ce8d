import MutewardenAzure
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// Call Automation's REST operations the `acs` target uses, and what their answers mean for an
/// action. Pure: requests are built unsigned; ``ACSTarget`` adds the authentication and
/// repeatability headers.
public enum ACSCallAutomationAPI {
    /// The stable api-version that has `participants:mute` and the recording's `:pause`/`:resume`.
    public static let stableAPIVersion = "2024-09-15"
    /// The preview api-versions known to have `participants:unmute`.
    public static let unmuteAPIVersions: Set<String> = ["2023-10-03-preview", "2024-09-01-preview"]

    /// One operation, before its URL is known.
    public enum Operation: Sendable, Hashable, CustomStringConvertible {
        case mute(callConnectionID: String, participant: String)
        case unmute(callConnectionID: String, participant: String)
        case pauseRecording(recordingID: String)
        case resumeRecording(recordingID: String)

        public var description: String {
            switch self {
            case .mute(let call, let participant): "ACS participants:mute of \(participant) on call \(call)"
            case .unmute(let call, let participant): "ACS participants:unmute of \(participant) on call \(call)"
            case .pauseRecording(let recording): "ACS recording \(recording) :pause"
            case .resumeRecording(let recording): "ACS recording \(recording) :resume"
            }
        }
    }

    /// The request for `operation` on the resource at `endpoint` (`https://<resource>.communication.azure.com`,
    /// no trailing slash). `operationContext` is echoed by the platform's events: the action's
    /// idempotency key, so that an operator can match them.
    public static func request(
        _ operation: Operation, endpoint: String, apiVersion: String, unmuteAPIVersion: String?, operationContext: String
    ) -> HTTPRequest {
        switch operation {
        case .mute(let call, let participant):
            return participantsRequest(
                endpoint + "/calling/callConnections/\(PercentEncoding.unreserved(call))/participants:mute?api-version=\(apiVersion)",
                participant: participant, operationContext: operationContext)
        case .unmute(let call, let participant):
            return participantsRequest(
                endpoint + "/calling/callConnections/\(PercentEncoding.unreserved(call))/participants:unmute?api-version="
                    + (unmuteAPIVersion ?? apiVersion),
                participant: participant, operationContext: operationContext)
        case .pauseRecording(let recording):
            return HTTPRequest(
                .post, endpoint + "/calling/recordings/\(PercentEncoding.unreserved(recording)):pause?api-version=\(apiVersion)",
                headers: [HTTPHeader("Content-Type", "application/json")], body: [])
        case .resumeRecording(let recording):
            return HTTPRequest(
                .post, endpoint + "/calling/recordings/\(PercentEncoding.unreserved(recording)):resume?api-version=\(apiVersion)",
                headers: [HTTPHeader("Content-Type", "application/json")], body: [])
        }
    }

    static func participantsRequest(_ url: String, participant: String, operationContext: String) -> HTTPRequest {
        let body = JSONValue.object([
            ("targetParticipants", .array([identifierModel(rawID: participant)])),
            ("operationContext", .string(operationContext)),
        ])
        return HTTPRequest(.post, url, headers: [HTTPHeader("Content-Type", "application/json")], text: body.serialized)
    }

    /// `CommunicationIdentifierModel` for a raw id: its kind from the raw id's prefix, as the
    /// SDKs infer it.
    public static func identifierModel(rawID: String) -> JSONValue {
        if rawID.hasPrefix("8:acs:") || rawID.hasPrefix("8:spool:") || rawID.hasPrefix("8:dod-acs:") || rawID.hasPrefix("8:gcch-acs:") {
            return .object([
                ("rawId", .string(rawID)), ("kind", .string("communicationUser")),
                ("communicationUser", .object([("id", .string(rawID))])),
            ])
        }
        if rawID.hasPrefix("4:") {
            return .object([
                ("rawId", .string(rawID)), ("kind", .string("phoneNumber")),
                ("phoneNumber", .object([("value", .string(String(rawID.dropFirst(2))))])),
            ])
        }
        return .object([("rawId", .string(rawID))])
    }

    /// Reads an answer.
    ///
    /// - 2xx: accepted (mute answers 200, pause and resume 202); the feed's `ParticipantsUpdated`
    ///   or `RecordingStateChanged` confirms it.
    /// - 404: the call connection or the recording is unknown, which is the platform saying the
    ///   call is gone: `call-gone`, which the engine believes only when the feed agrees.
    /// - 401: the credential was refused; `retryable` once the authorizer has dropped a cached
    ///   token (`credentialRenewed`), `permanent` otherwise: a signature the platform refuses
    ///   will not be accepted on the next try.
    /// - 403 and other 4xx: `permanent`; 408, 429 and 5xx: `retryable`.
    ///
    /// `CommunicationErrorResponse`'s codes and message, when the body is one, go into the
    /// failure's message and code.
    public static func classify(
        httpStatus: Int, body: [UInt8], operation: Operation, credentialRenewed: Bool = false
    ) -> ActionAttemptResult {
        if (200..<300).contains(httpStatus) { return .accepted }
        let error = CommunicationError.parse(body)
        let detail = error.map { ": \($0)" } ?? ""
        let code = error.map { "http \(httpStatus) \($0.fullCode)" } ?? "http \(httpStatus)"
        let message = "\(operation): the platform answered HTTP \(httpStatus)\(detail)"
        switch httpStatus {
        case 404:
            return .failed(ActionFailure(.callGone, message, code: code))
        case 401:
            return .failed(
                ActionFailure(
                    credentialRenewed ? .retryable : .permanent, message + (credentialRenewed ? " (the token is renewed)" : ""),
                    code: code))
        default:
            return .failed(ActionFailure(HTTPResponse.disposition(forStatus: httpStatus) ?? .retryable, message, code: code))
        }
    }
}
