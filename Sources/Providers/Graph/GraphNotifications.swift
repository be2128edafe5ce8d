import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// Reads what Microsoft Graph posts to a calling bot's callback URI: `commsNotifications`, each
/// notification naming a resource of one call (`/communications/calls/{id}`, its `participants`
/// or one of its `operations`) and carrying that resource's data. Pure: no I/O, no state; what
/// the feed remembers between callbacks is in ``GraphFeedCore``.
///
/// Every value is checked before it is used. A notification that cannot be read is reported with
/// its reason (never its content: a tone is a digit the caller keyed, possibly of a card number,
/// and display names are personal data) and left out; the rest of the body still counts.
public enum GraphNotifications {
    /// Why a body, or one notification of it, could not be used. The reason names identifiers and
    /// protocol words at most.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        /// The call it is about, when the notification names one.
        public var call: String?

        public init(reason: String, call: String? = nil) {
            self.reason = reason
            self.call = call
        }

        public var description: String { reason }
    }

    public enum ChangeType: String, Sendable, Hashable {
        case created, updated, deleted
    }

    /// One participant of a roster notification.
    public struct Participant: Sendable, Hashable {
        /// The participant's id in the call: what `participants/{id}/mute` addresses.
        public var id: String
        /// `kind:id` of each identity of `info.identity` (`user:5810…`, `application:…`,
        /// `phone:+1…`), in a fixed order. Display names are not kept.
        public var identities: [String]
        public var isMuted: Bool?
        public var isInLobby: Bool?

        public init(id: String, identities: [String] = [], isMuted: Bool? = nil, isInLobby: Bool? = nil) {
            self.id = id
            self.identities = identities
            self.isMuted = isMuted
            self.isInLobby = isInLobby
        }

        /// The id of the identity of `kind`, if the participant has one.
        public func identity(_ kind: String) -> String? {
            let prefix = kind + ":"
            return identities.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
    }

    /// A `commsOperation`'s state (`notStarted`, `running`, `completed`, `failed`).
    public enum OperationStatus: String, Sendable, Hashable {
        case notStarted, running, completed, failed
    }

    /// `resultInfo`: `code` and `subcode` (numbers, or numbers written as strings) and a message.
    public struct ResultInfo: Sendable, Hashable, CustomStringConvertible {
        public var code: Int?
        public var subcode: Int?
        /// The platform's words, printable and bounded.
        public var message: String?

        public init(code: Int? = nil, subcode: Int? = nil, message: String? = nil) {
            self.code = code
            self.subcode = subcode
            self.message = message
        }

        public var description: String {
            let codes = [code.map { "code \($0)" }, subcode.map { "subcode \($0)" }].compactMap { $0 }.joined(separator: ", ")
            switch (codes.isEmpty, message) {
            case (true, nil): return "no result info"
            case (false, nil): return codes
            case (true, let message?): return message
            case (false, let message?): return "\(codes): \(message)"
            }
        }
    }

    /// What one operation notification (or a REST answer) says of an operation.
    public struct Operation: Sendable, Hashable {
        /// `muteParticipantOperation`, `updateRecordingStatusOperation`… (without `#microsoft.graph.`).
        public var type: String
        public var id: String?
        public var clientContext: String?
        public var status: OperationStatus
        public var resultInfo: ResultInfo?

        public init(type: String, id: String? = nil, clientContext: String? = nil, status: OperationStatus, resultInfo: ResultInfo? = nil) {
            self.type = type
            self.id = id
            self.clientContext = clientContext
            self.status = status
            self.resultInfo = resultInfo
        }
    }

    public enum Payload: Sendable, Hashable {
        /// The call's `state`, when the notification carries one (a tone notification may not).
        case callState(String)
        /// A roster change: the participants named (all of them for `created`/`updated`, the ones
        /// that left for `deleted`).
        case participants([Participant])
        /// A DTMF tone (`toneInfo`). The tone itself is only checked to be one of the documented
        /// names and then dropped: the feed needs to know that digits are being keyed, never which.
        case tone
        case operation(Operation)
        /// A resource the feed reads nothing from: counted and skipped.
        case other(type: String)
    }

    /// What a notification's resource URL names.
    public enum ResourceKind: String, Sendable, Hashable {
        case call, participants, operation, other
    }

    public struct Notification: Sendable, Hashable {
        /// The call's id, from the resource URL.
        public var callID: String
        public var resource: ResourceKind
        public var changeType: ChangeType
        public var payloads: [Payload]
    }

    public struct Batch: Sendable, Hashable {
        public var notifications: [Notification]
        public var skipped: [Malformed]
    }

    /// What a callback's body is.
    public enum Body: Sendable, Hashable {
        /// Graph's `commsNotifications` (or one `commsNotification` on its own).
        case notifications(Batch)
        /// An incoming-call notification in the legacy (Skype calling) format, which the platform
        /// sends again in Graph's format once it is answered 204 (MicrosoftDocs/msteams-docs,
        /// call-notifications.md, "Protocol determination"). Nothing of it is read.
        case legacy
    }

    /// The documented tone names (`toneInfo.tone`, MSG resources/toneinfo.md).
    public static let tones: Set<String> = [
        "tone0", "tone1", "tone2", "tone3", "tone4", "tone5", "tone6", "tone7", "tone8", "tone9", "star", "pound", "a", "b", "c", "d",
        "flash",
    ]

    /// The top-level members of the Skype calling format's incoming-call notification
    /// (`conversation`): a body with one of these and nothing of Graph's shape is legacy.
    static let legacyMembers = ["callState", "presentedModalityTypes", "isMultiparty", "conversationResult", "links", "appState"]

    /// The identity kinds of an `identitySet`, in the order they are listed.
    public static let identityKinds = [
        "user", "application", "applicationInstance", "device", "phone", "guest", "encrypted", "onPremises", "acsUser", "spoolUser",
        "acsApplicationInstance", "spoolApplicationInstance", "azureCommunicationServicesUser",
    ]

    /// A callback's body. Throws when the body as a whole cannot be read; otherwise every
    /// readable notification is returned and every other one is in `skipped`.
    public static func parse(_ body: [UInt8], maximumNotifications: Int = 1000) throws(Malformed) -> Body {
        let document: JSONValue
        do {
            document = try JSONValue.parse(body, maximumDepth: 24)
        } catch {
            throw Malformed(reason: "the callback's body is not JSON (\(error.message) at byte \(error.offset))")
        }
        guard case .object = document else { throw Malformed(reason: "the callback's body is not a JSON object") }
        let items: [JSONValue]
        if let value = document["value"] {
            guard let array = value.array else { throw Malformed(reason: "'value' is not an array of notifications") }
            items = array
        } else if document["resourceUrl"] != nil || document["resource"] != nil {
            items = [document]
        } else if isLegacy(document) {
            return .legacy
        } else {
            throw Malformed(reason: "the callback's body is neither commsNotifications nor a commsNotification")
        }
        guard items.count <= maximumNotifications else {
            throw Malformed(reason: "the callback carries \(items.count) notifications, more than \(maximumNotifications)")
        }
        var batch = Batch(notifications: [], skipped: [])
        batch.notifications.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do throws(Malformed) {
                batch.notifications.append(try notification(item))
            } catch {
                batch.skipped.append(Malformed(reason: "notification \(index): \(error.reason)", call: error.call))
            }
        }
        return .notifications(batch)
    }

    static func isLegacy(_ document: JSONValue) -> Bool {
        if let type = document["@odata.type"]?.string, type.hasPrefix("#microsoft.graph.") { return false }
        return legacyMembers.contains { document[$0] != nil }
    }

    /// Where a resource URL points: the call, its roster (or one participant), or one operation.
    enum Resource: Hashable {
        case call(String)
        case participants(call: String)
        case operation(call: String, id: String?)
        case other(call: String)
    }

    /// `/communications/calls/{id}[/participants[/{pid}]|/operations/{oid}]`, also with the older
    /// `/app/calls/…` prefix or as an absolute URL.
    static func resource(_ url: String) -> Resource? {
        guard url.utf8.count <= 2048 else { return nil }
        let path = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let segments = path.split(separator: "/").map(String.init)
        guard let index = segments.lastIndex(of: "calls"), index + 1 < segments.count, let call = identifier(segments[index + 1]) else {
            return nil
        }
        let rest = segments[(index + 2)...]
        guard let next = rest.first else { return .call(call) }
        switch next {
        case "participants": return .participants(call: call)
        case "operations": return .operation(call: call, id: rest.dropFirst().first.flatMap { identifier($0) })
        default: return .other(call: call)
        }
    }

    /// One `commsNotification`.
    static func notification(_ item: JSONValue) throws(Malformed) -> Notification {
        guard case .object = item else { throw Malformed(reason: "not an object") }
        // `resourceUrl` is Graph's; the older Teams samples call it `resource`.
        guard let url = (item["resourceUrl"] ?? item["resource"])?.string else {
            throw Malformed(reason: "no 'resourceUrl' (or 'resource')")
        }
        guard let resource = resource(url) else {
            throw Malformed(reason: "the resource URL does not name a call under /communications/calls")
        }
        let call: String
        let kind: ResourceKind
        switch resource {
        case .call(let id): (call, kind) = (id, .call)
        case .participants(let id): (call, kind) = (id, .participants)
        case .operation(let id, _): (call, kind) = (id, .operation)
        case .other(let id): (call, kind) = (id, .other)
        }
        guard let changeText = item["changeType"]?.string, let changeType = ChangeType(rawValue: changeText) else {
            throw Malformed(reason: "no documented 'changeType'", call: call)
        }
        // One entity or a collection (MSG resources/commsnotification.md).
        let entities: [JSONValue]
        switch item["resourceData"] {
        case .array(let array)?: entities = array
        case .object?: entities = [item["resourceData"]!]
        case nil, .null?:
            // A deleted call may come without its data: the change type says enough.
            guard changeType == .deleted, case .call = resource else { throw Malformed(reason: "no 'resourceData'", call: call) }
            entities = []
        default: throw Malformed(reason: "'resourceData' is neither an object nor an array", call: call)
        }
        guard entities.count <= 512 else { throw Malformed(reason: "more than 512 entities in 'resourceData'", call: call) }
        var payloads: [Payload] = []
        var participants: [Participant] = []
        for entity in entities {
            guard case .object = entity else { throw Malformed(reason: "an entity of 'resourceData' is not an object", call: call) }
            let fullType = entity["@odata.type"]?.string ?? ""
            let type = fullType.hasPrefix("#microsoft.graph.") ? String(fullType.dropFirst("#microsoft.graph.".count)) : fullType
            switch (type, resource) {
            case ("participant", _), ("", .participants):
                participants.append(try participant(entity, call: call))
            case ("call", _), ("", .call):
                if let toneInfo = entity["toneInfo"], toneInfo != .null {
                    guard let tone = toneInfo["tone"]?.string, tones.contains(tone) else {
                        throw Malformed(reason: "a 'toneInfo' without a documented tone", call: call)
                    }
                    payloads.append(.tone)
                }
                if let state = entity["state"] {
                    guard let text = state.string, callStates.keys.contains(text) else {
                        throw Malformed(reason: "a call 'state' that is not a documented one", call: call)
                    }
                    payloads.append(.callState(text))
                }
            case (_, .operation(_, let id)) where type.isEmpty || type.hasSuffix("Operation"):
                payloads.append(.operation(try operation(entity, type: type.isEmpty ? "commsOperation" : type, id: id, call: call)))
            case (_, _) where type.hasSuffix("Operation"):
                payloads.append(.operation(try operation(entity, type: type, id: nil, call: call)))
            default:
                payloads.append(.other(type: PlatformText.shown(type.isEmpty ? "untyped" : type, limit: 64)))
            }
        }
        if case .participants = resource {
            payloads.insert(.participants(participants), at: 0)
        } else if !participants.isEmpty {
            payloads.insert(.participants(participants), at: 0)
        }
        return Notification(callID: call, resource: kind, changeType: changeType, payloads: payloads)
    }

    /// The call states Graph documents, and what the feed makes of each.
    public static let callStates: [String: CallState] = [
        "incoming": .ringing, "establishing": .dialing, "ringing": .ringing, "established": .established, "hold": .held,
        "transferring": .established, "transferAccepted": .established, "redirecting": .established, "terminating": .released,
        "terminated": .released,
    ]

    static func participant(_ entity: JSONValue, call: String) throws(Malformed) -> Participant {
        guard let id = identifier(entity["id"]) else { throw Malformed(reason: "a participant without a usable 'id'", call: call) }
        var identities: [String] = []
        if let identity = entity["info"]?["identity"], case .object = identity {
            for kind in identityKinds {
                if let value = identifier(identity[kind]?["id"]) { identities.append("\(kind):\(value)") }
            }
        }
        var isMuted: Bool?
        if let value = entity["isMuted"], value != .null {
            guard let flag = value.bool else { throw Malformed(reason: "a participant's 'isMuted' is not a boolean", call: call) }
            isMuted = flag
        }
        return Participant(id: id, identities: identities, isMuted: isMuted, isInLobby: entity["isInLobby"]?.bool)
    }

    /// A `commsOperation` (from a notification, or a REST answer's body).
    public static func operation(_ entity: JSONValue, type: String, id: String?, call: String?) throws(Malformed) -> Operation {
        guard let text = entity["status"]?.string, let status = OperationStatus(rawValue: text) else {
            throw Malformed(reason: "an operation without a documented 'status'", call: call)
        }
        var context: String?
        if let value = entity["clientContext"], value != .null {
            guard let text = value.string, text.utf8.count <= 256 else {
                throw Malformed(reason: "an operation whose 'clientContext' is not a string of at most 256 bytes", call: call)
            }
            context = text
        }
        var result: ResultInfo?
        if let info = entity["resultInfo"], case .object = info {
            result = ResultInfo(
                code: number(info["code"]), subcode: number(info["subcode"]),
                message: info["message"]?.string.map { PlatformText.shown($0, limit: 300) })
        }
        return Operation(
            type: PlatformText.shown(type, limit: 64), id: identifier(entity["id"]) ?? id, clientContext: context, status: status,
            resultInfo: result)
    }

    /// A whole number written as a number or as a string (`"code":"200"` in the samples).
    static func number(_ value: JSONValue?) -> Int? {
        if let int = value?.int { return int }
        guard let text = value?.string, text.utf8.count <= 12 else { return nil }
        return Int(text)
    }

    /// An id as the platform writes it: a non-empty string of at most 256 printable characters.
    static func identifier(_ value: JSONValue?) -> String? {
        guard let text = value?.string else { return nil }
        return identifier(text)
    }

    static func identifier(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 256 else { return nil }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else { return nil }
        return text
    }
}
