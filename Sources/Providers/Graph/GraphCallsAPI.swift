import MutewardenAzure
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// The Graph cloud-communications operations the `graph` target uses, and what their answers
/// mean for an action. Pure: requests are built without their token; ``GraphTarget`` adds it.
public enum GraphCallsAPI {
    /// One operation, before its URL is known.
    public enum Operation: Sendable, Hashable, CustomStringConvertible {
        /// `POST /communications/calls/{id}/mute`: the bot mutes itself.
        case muteBot(call: String)
        /// `POST /communications/calls/{id}/unmute`: the bot unmutes itself.
        case unmuteBot(call: String)
        /// `POST /communications/calls/{id}/participants/{participantId}/mute`. There is no
        /// participant unmute.
        case muteParticipant(call: String, participant: String)
        /// `POST /communications/calls/{id}/updateRecordingStatus` with `notRecording` (paused) or
        /// `recording`.
        case updateRecordingStatus(call: String, recording: Bool)

        public var call: String {
            switch self {
            case .muteBot(let call), .unmuteBot(let call), .muteParticipant(let call, _), .updateRecordingStatus(let call, _): call
            }
        }

        public var description: String {
            switch self {
            case .muteBot(let call): "Graph mute (the bot) on call \(call)"
            case .unmuteBot(let call): "Graph unmute (the bot) on call \(call)"
            case .muteParticipant(let call, let participant): "Graph mute of participant \(participant) on call \(call)"
            case .updateRecordingStatus(let call, let recording):
                "Graph updateRecordingStatus \(recording ? "recording" : "notRecording") on call \(call)"
            }
        }

        /// What its completion changes, as the feed reports it.
        public var effect: GraphOperationEffect? {
            if case .updateRecordingStatus(_, let recording) = self { return .recording(recording ? .recording : .paused) }
            return nil
        }
    }

    /// `clientContext` is at most 256 characters (MSG api/call-mute.md); the engine's keys are
    /// UUIDs, so the cut is for keys made otherwise.
    public static func clientContext(_ idempotencyKey: String) -> String {
        var result = ""
        for scalar in idempotencyKey.unicodeScalars where result.utf8.count + String(scalar).utf8.count <= 256 {
            result.unicodeScalars.append(scalar)
        }
        return result
    }

    /// The request for `operation` against `graphURL` (`https://graph.microsoft.com/v1.0`, no
    /// trailing slash).
    public static func request(_ operation: Operation, graphURL: String, clientContext: String) -> HTTPRequest {
        let calls = graphURL + "/communications/calls/"
        var members: [(String, JSONValue)] = [("clientContext", .string(clientContext))]
        let url: String
        switch operation {
        case .muteBot(let call):
            url = calls + PercentEncoding.unreserved(call) + "/mute"
        case .unmuteBot(let call):
            url = calls + PercentEncoding.unreserved(call) + "/unmute"
        case .muteParticipant(let call, let participant):
            url = calls + PercentEncoding.unreserved(call) + "/participants/" + PercentEncoding.unreserved(participant) + "/mute"
        case .updateRecordingStatus(let call, let recording):
            url = calls + PercentEncoding.unreserved(call) + "/updateRecordingStatus"
            members.append(("status", .string(recording ? "recording" : "notRecording")))
        }
        return HTTPRequest(.post, url, headers: [HTTPHeader("Content-Type", "application/json")], text: JSONValue.object(members).serialized)
    }

    /// What an answer means.
    public enum Answer: Sendable, Hashable {
        /// The operation completed: no notification follows.
        case completed(GraphNotifications.Operation?)
        /// `notStarted` or `running`: its outcome comes as a notification.
        case running(GraphNotifications.Operation)
        case failed(ActionFailure)
    }

    /// Reads an answer.
    ///
    /// - 2xx with a `commsOperation` (bare, or wrapped in `value` as older samples show): its
    ///   `status` decides; `failed` is a permanent failure with its `resultInfo`. A 2xx without
    ///   one (a 202 or 204 with no body) is taken as completed.
    /// - 404: the call is gone (which the engine believes only when the feed agrees).
    /// - 401: `retryable` once the token was dropped (`credentialRenewed`), `permanent` otherwise.
    /// - 403 and other 4xx: `permanent`; 408, 429 and 5xx: `retryable`.
    ///
    /// Graph's error body (`{"error":{"code","message"}}`) goes into the failure's message and code.
    public static func classify(httpStatus: Int, body: [UInt8], operation: Operation, credentialRenewed: Bool = false) -> Answer {
        if (200..<300).contains(httpStatus) {
            guard !body.isEmpty, let document = try? JSONValue.parse(body, maximumDepth: 16), case .object = document else {
                return .completed(nil)
            }
            let entity: JSONValue
            if let wrapped = document["value"], case .object = wrapped { entity = wrapped } else { entity = document }
            guard entity["status"] != nil else { return .completed(nil) }
            let fullType = entity["@odata.type"]?.string ?? "#microsoft.graph.commsOperation"
            let type = fullType.hasPrefix("#microsoft.graph.") ? String(fullType.dropFirst("#microsoft.graph.".count)) : fullType
            let parsed: GraphNotifications.Operation
            do {
                parsed = try GraphNotifications.operation(entity, type: type, id: nil, call: operation.call)
            } catch {
                return .failed(ActionFailure(.retryable, "\(operation): the answer's operation cannot be read: \(error.reason)", code: "answer"))
            }
            switch parsed.status {
            case .completed: return .completed(parsed)
            case .notStarted, .running: return .running(parsed)
            case .failed:
                let info = parsed.resultInfo
                return .failed(
                    ActionFailure(
                        .permanent, "\(operation): the operation failed: \(info.map { "\($0)" } ?? "no result info")",
                        code: "operation failed" + (info?.code.map { " \($0)" } ?? "") + (info?.subcode.map { "/\($0)" } ?? "")))
            }
        }
        let error = CommunicationError.parse(body)
        let detail = error.map { ": \($0)" } ?? ""
        let code = error.map { "http \(httpStatus) \($0.fullCode)" } ?? "http \(httpStatus)"
        let message = "\(operation): Graph answered HTTP \(httpStatus)\(detail)"
        switch httpStatus {
        case 404:
            return .failed(ActionFailure(.callGone, message, code: code))
        case 401:
            return .failed(
                ActionFailure(
                    credentialRenewed ? .retryable : .permanent, message + (credentialRenewed ? " (the token is renewed)" : ""), code: code))
        default:
            return .failed(ActionFailure(HTTPResponse.disposition(forStatus: httpStatus) ?? .retryable, message, code: code))
        }
    }
}
