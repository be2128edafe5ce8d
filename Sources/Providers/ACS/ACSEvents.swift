import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// Reads what Call Automation posts to a callback URI: a JSON array of CloudEvents, each with
/// `type: "Microsoft.Communication.<Name>"` and its payload in `data`. Pure: no I/O, no state;
/// what the feed remembers between callbacks is in ``ACSFeedCore``.
///
/// Every value is checked before it is used. An event that cannot be read is reported with its
/// reason (never its content: a DTMF tone is a digit the caller keyed, possibly of a card number)
/// and left out; the rest of the batch still counts.
public enum ACSEvents {
    public static let typePrefix = "Microsoft.Communication."

    /// Why a batch, or one event of it, could not be used. The reason names identifiers and
    /// protocol words at most.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        /// The call connection it is about, when the event names one.
        public var call: String?

        public init(reason: String, call: String? = nil) {
            self.reason = reason
            self.call = call
        }

        public var description: String { reason }
    }

    /// One participant of `ParticipantsUpdated`, by its raw id (`8:acs:…`, `4:+1…`, `8:orgid:…`).
    public struct Participant: Sendable, Hashable {
        public var rawId: String
        /// `communicationUser`, `phoneNumber`, `microsoftTeamsUser`, `microsoftTeamsApp`, `unknown`.
        public var kind: String
        public var isMuted: Bool?
        public var isOnHold: Bool?

        public init(rawId: String, kind: String, isMuted: Bool? = nil, isOnHold: Bool? = nil) {
            self.rawId = rawId
            self.kind = kind
            self.isMuted = isMuted
            self.isOnHold = isOnHold
        }
    }

    /// The recording's state as `RecordingStateChanged` reports it.
    public enum RecordingState: String, Sendable, Hashable {
        case active, inactive
    }

    public enum Payload: Sendable, Hashable {
        case callConnected
        case callDisconnected
        /// `sequenceNumber` orders these per call; nil when the event has none.
        case participantsUpdated(sequence: Int?, participants: [Participant])
        /// A continuous-recognition tone. The tone itself is only checked to be one of the
        /// documented names and then dropped: the feed needs to know that digits are being
        /// keyed, never which ones.
        case toneReceived
        case recordingStateChanged(recordingID: String, state: RecordingState?)
        /// A documented event the feed reads nothing from (`PlayCompleted`, `RecognizeCompleted`…),
        /// or one it does not know: counted and skipped.
        case other(type: String)
    }

    public struct Event: Sendable, Hashable {
        /// The type without `Microsoft.Communication.`.
        public var type: String
        public var callConnectionID: String
        public var serverCallID: String?
        public var correlationID: String?
        public var payload: Payload
    }

    public struct Batch: Sendable, Hashable {
        public var events: [Event]
        public var skipped: [Malformed]
    }

    /// The documented tone names (`Tone` in the Call Automation specification).
    public static let tones: Set<String> = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "a", "b", "c", "d", "pound", "asterisk",
    ]

    /// The events whose payload the feed reads nothing from but knows to be the platform's own.
    public static let knownOtherTypes: Set<String> = [
        "AddParticipantSucceeded", "AddParticipantFailed", "RemoveParticipantSucceeded", "RemoveParticipantFailed",
        "CallTransferAccepted", "CallTransferFailed", "PlayCompleted", "PlayFailed", "PlayCanceled", "RecognizeCompleted",
        "RecognizeFailed", "RecognizeCanceled", "ContinuousDtmfRecognitionToneFailed", "ContinuousDtmfRecognitionStopped",
        "SendDtmfTonesCompleted", "SendDtmfTonesFailed", "CancelAddParticipantSucceeded", "CancelAddParticipantFailed",
        "MuteParticipantSucceeded", "MuteParticipantFailed", "HoldFailed", "CreateCallFailed", "AnswerFailed",
        "ConnectFailed", "MediaStreamingStarted", "MediaStreamingStopped", "MediaStreamingFailed", "TranscriptionStarted",
        "TranscriptionStopped", "TranscriptionUpdated", "TranscriptionFailed",
    ]

    /// A callback's body: an array of CloudEvents (a lone event object is taken as a batch of one).
    /// Throws when the body as a whole cannot be read; otherwise every readable event is returned
    /// and every other one is in `skipped`.
    public static func parse(_ body: [UInt8], maximumEvents: Int = 1000) throws(Malformed) -> Batch {
        let document: JSONValue
        do {
            document = try JSONValue.parse(body, maximumDepth: 16)
        } catch {
            throw Malformed(reason: "the callback's body is not JSON (\(error.message) at byte \(error.offset))")
        }
        let items: [JSONValue]
        switch document {
        case .array(let array): items = array
        case .object: items = [document]
        default: throw Malformed(reason: "the callback's body is neither an array of events nor an event")
        }
        guard items.count <= maximumEvents else {
            throw Malformed(reason: "the callback carries \(items.count) events, more than \(maximumEvents)")
        }
        var batch = Batch(events: [], skipped: [])
        batch.events.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do throws(Malformed) {
                batch.events.append(try event(item))
            } catch {
                batch.skipped.append(Malformed(reason: "event \(index): \(error.reason)", call: error.call))
            }
        }
        return batch
    }

    /// One CloudEvent.
    static func event(_ item: JSONValue) throws(Malformed) -> Event {
        guard case .object = item else { throw Malformed(reason: "not an object") }
        guard let fullType = item["type"]?.string else { throw Malformed(reason: "no 'type'") }
        guard fullType.hasPrefix(typePrefix) else {
            throw Malformed(reason: "type '\(PlatformText.shown(fullType, limit: 64))' is not a Call Automation event")
        }
        let type = String(fullType.dropFirst(typePrefix.count))
        guard let data = item["data"], case .object = data else {
            throw Malformed(reason: "\(PlatformText.shown(type, limit: 64)) has no 'data' object")
        }
        guard let callConnectionID = identifier(data["callConnectionId"]) else {
            throw Malformed(reason: "\(PlatformText.shown(type, limit: 64)) has no usable 'callConnectionId'")
        }
        let payload: Payload
        switch type {
        case "CallConnected":
            payload = .callConnected
        case "CallDisconnected":
            payload = .callDisconnected
        case "ParticipantsUpdated":
            payload = try participantsUpdated(data, call: callConnectionID)
        case "ContinuousDtmfRecognitionToneReceived":
            // Two shapes: the stable specification's top-level `tone`, and the older preview's
            // `toneInfo.tone` that public samples still read.
            let tone = data["tone"]?.string ?? data["toneInfo"]?["tone"]?.string
            guard let tone, tones.contains(tone.lowercased()) else {
                throw Malformed(reason: "ContinuousDtmfRecognitionToneReceived without a documented tone", call: callConnectionID)
            }
            payload = .toneReceived
        case "RecordingStateChanged":
            guard let recordingID = identifier(data["recordingId"]) else {
                throw Malformed(reason: "RecordingStateChanged without a usable 'recordingId'", call: callConnectionID)
            }
            payload = .recordingStateChanged(
                recordingID: recordingID, state: data["state"]?.string.flatMap { RecordingState(rawValue: $0.lowercased()) })
        default:
            payload = .other(type: PlatformText.shown(type, limit: 64))
        }
        return Event(
            type: type, callConnectionID: callConnectionID, serverCallID: identifier(data["serverCallId"]),
            correlationID: identifier(data["correlationId"]), payload: payload)
    }

    static func participantsUpdated(_ data: JSONValue, call: String) throws(Malformed) -> Payload {
        guard let list = data["participants"]?.array else {
            throw Malformed(reason: "ParticipantsUpdated without a 'participants' array", call: call)
        }
        var sequence: Int?
        if let value = data["sequenceNumber"] {
            guard let number = value.int, number >= 0 else {
                throw Malformed(reason: "ParticipantsUpdated with a 'sequenceNumber' that is not a whole number", call: call)
            }
            sequence = number
        }
        var participants: [Participant] = []
        for entry in list.prefix(256) {
            // A participant is `{identifier, isMuted, isOnHold}`; an identifier is
            // CommunicationIdentifierModel (`rawId`, `kind`, and one of its typed members).
            let identifierModel = entry["identifier"] ?? entry
            guard let rawID = identifier(identifierModel["rawId"]) ?? typedID(identifierModel) else { continue }
            let kind = identifierModel["kind"]?.string ?? inferredKind(identifierModel)
            participants.append(
                Participant(
                    rawId: rawID, kind: PlatformText.shown(kind, limit: 64), isMuted: entry["isMuted"]?.bool, isOnHold: entry["isOnHold"]?.bool))
        }
        return .participantsUpdated(sequence: sequence, participants: participants)
    }

    /// The id from a typed member when `rawId` is absent: older payloads carry only those.
    static func typedID(_ model: JSONValue) -> String? {
        identifier(model["communicationUser"]?["id"]) ?? identifier(model["phoneNumber"]?["value"]).map { "4:" + $0 }
            ?? identifier(model["microsoftTeamsUser"]?["userId"]).map { "8:orgid:" + $0 }
    }

    static func inferredKind(_ model: JSONValue) -> String {
        for kind in ["communicationUser", "phoneNumber", "microsoftTeamsUser", "microsoftTeamsApp"] where model[kind] != nil {
            return kind
        }
        return "unknown"
    }

    /// An id as the platform writes it: a non-empty string of at most 256 printable characters.
    static func identifier(_ value: JSONValue?) -> String? {
        guard let text = value?.string, !text.isEmpty, text.utf8.count <= 256 else { return nil }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else { return nil }
        return text
    }
}
