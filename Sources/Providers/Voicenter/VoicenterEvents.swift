import MutewardenJSON
import MutewardenModel

/// Which field of a Voicenter extension names it for `MuteUnmuteCalls`' `extension` parameter.
public enum VoicenterExtensionField: String, Sendable, Hashable, CaseIterable {
    /// The SIP ID (an 8-character string such as `KGpK4iWq`): what the vendor's page says the
    /// parameter takes.
    case extenUser
    /// The extension's number (an integer in the feed).
    case number
}

/// Turns the Real-Time API's `AllExtensionsStatus` and `ExtensionEvent` payloads into normalized
/// call updates. Pure: no I/O, no state; what the feed remembers between events is in
/// ``VoicenterFeedCore``.
///
/// Shapes are from Voicenter's SDK types and a recorded session (docs/providers/voicenter.md lists
/// what is assumed). Every value is checked before it is used; a call that cannot be read is
/// reported with its reason and left out, the rest of the payload still counts.
public enum VoicenterEvents {
    /// Why a payload, or one call of it, could not be used. The reason names identifiers (an
    /// ivrid, an extension) and short protocol words at most: never customer data.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        /// The call it is about, when the payload names one.
        public var call: String?
        /// Set when the server refused rather than sent something unreadable (`errorCode`).
        public var errorCode: String?

        public init(reason: String, call: String? = nil, errorCode: String? = nil) {
            self.reason = reason
            self.call = call
            self.errorCode = errorCode
        }

        public var description: String { reason }
    }

    /// Something mapped with a default that an operator should hear about once.
    public enum Note: Sendable, Hashable {
        /// A `callstatus` outside Ringing/Dialing/Talking/Hold: the call is kept as established.
        case unknownCallStatus(String)
        /// A `direction` outside Incoming/Outgoing/Click2Call/Spy: kept as unknown.
        case unknownDirection(String)
    }

    /// One extension's live calls, as one payload states them.
    public struct ExtensionState: Sendable, Hashable {
        /// The value actions address the extension by (``VoicenterExtensionField``); nil when the
        /// payload lacks it.
        public var extensionID: String?
        /// Its live calls, Spy legs left out: a supervisor listening in is not the agent the
        /// call's actions are for.
        public var calls: [CallUpdate]
        public var skipped: [Malformed]
        public var notes: Set<Note>
    }

    /// `AllExtensionsStatus`: every monitored extension and its calls.
    public struct Snapshot: Sendable, Hashable {
        public var extensions: [ExtensionState]
        /// Entries of `extensions` that are not objects.
        public var skipped: [Malformed]
        /// `servertime` in UTC seconds, when stated.
        public var serverTime: Double?
    }

    /// `ExtensionEvent`: one extension's state after something happened to one of its calls.
    public struct ExtensionEvent: Sendable, Hashable {
        /// NEWCALL, ANSWER, HOLD, UNHOLD, HANGUP, userStatusUpdate, or whatever else the server says.
        public var reason: String
        public var state: ExtensionState
        /// On HANGUP: the call that ended on this extension (`data.currentCall`, or the event's own
        /// `ivruniqueid`), as a released update. nil otherwise, and for a Spy leg's end.
        public var ended: CallUpdate?
        public var serverTime: Double?
    }

    public static let knownReasons: Set<String> = ["NEWCALL", "ANSWER", "HOLD", "UNHOLD", "HANGUP", "userStatusUpdate"]

    /// Reads an `AllExtensionsStatus` payload: `{errorCode?, errorDesc?, extensions: [Extension],
    /// servertime, servertimeoffset}`.
    public static func snapshot(_ payload: JSONValue, feed: String, field: VoicenterExtensionField) throws(Malformed) -> Snapshot {
        try snapshot(of: payload, feed: feed, field: field)
    }

    /// ``snapshot(_:feed:field:)`` of a document read in place.
    public static func snapshot(_ payload: JSONNode, feed: String, field: VoicenterExtensionField) throws(Malformed) -> Snapshot {
        try snapshot(of: payload, feed: feed, field: field)
    }

    static func snapshot<JSON: JSONReadable>(of payload: JSON, feed: String, field: VoicenterExtensionField) throws(Malformed)
        -> Snapshot
    {
        guard payload.isObject else { throw Malformed(reason: "the payload is not an object") }
        guard let extensions = payload["extensions"]?.elements else {
            if let code = errorCode(payload["errorCode"]) {
                throw Malformed(reason: "the server answered errorCode \(code) and no extensions", errorCode: code)
            }
            throw Malformed(reason: "no extensions array")
        }
        let offset = payload["servertimeoffset"]
        var snapshot = Snapshot(
            extensions: [], skipped: [], serverTime: VoicenterTime.utcSeconds(of: payload["servertime"], offsetMinutes: offset))
        snapshot.extensions.reserveCapacity(extensions.underestimatedCount)
        for (index, entry) in extensions.enumerated() {
            guard entry.isObject else {
                snapshot.skipped.append(Malformed(reason: "extension \(index + 1) of the list is not an object"))
                continue
            }
            snapshot.extensions.append(extensionState(entry, feed: feed, field: field, offset: offset))
        }
        return snapshot
    }

    /// Reads an `ExtensionEvent` payload: `{eventName, reason, cause?, data: Extension,
    /// ivruniqueid?, servertime, servertimeoffset, …}`.
    public static func extensionEvent(_ payload: JSONValue, feed: String, field: VoicenterExtensionField) throws(Malformed)
        -> ExtensionEvent
    {
        try extensionEvent(of: payload, feed: feed, field: field)
    }

    /// ``extensionEvent(_:feed:field:)`` of a document read in place.
    public static func extensionEvent(_ payload: JSONNode, feed: String, field: VoicenterExtensionField) throws(Malformed)
        -> ExtensionEvent
    {
        try extensionEvent(of: payload, feed: feed, field: field)
    }

    static func extensionEvent<JSON: JSONReadable>(of payload: JSON, feed: String, field: VoicenterExtensionField)
        throws(Malformed) -> ExtensionEvent
    {
        guard payload.isObject else { throw Malformed(reason: "the payload is not an object") }
        guard let reason = payload["reason"]?.string, !reason.isEmpty else { throw Malformed(reason: "no reason") }
        guard let data = payload["data"], data.isObject else {
            throw Malformed(reason: "\(word(reason)): data is not an object", call: topLevelID(payload))
        }
        let offset = payload["servertimeoffset"]
        let state = extensionState(data, feed: feed, field: field, offset: offset)
        var event = ExtensionEvent(
            reason: reason, state: state, ended: nil,
            serverTime: VoicenterTime.utcSeconds(of: payload["servertime"], offsetMinutes: offset))
        guard reason == "HANGUP" else { return event }
        // The ended call is data.currentCall; the live ones are data.calls (a recorded session
        // shows it), so the current call of a HANGUP is never taken as live.
        if let current = data["currentCall"], current.isObject {
            if isSpy(current) { return event }
            do {
                event.ended = try call(current, feed: feed, agentExtension: state.extensionID, offset: offset).update
                event.ended?.state = .released
                event.ended?.attributes = nil
                return event
            } catch {
                // A currentCall without a usable id: the event's own id may still say which.
                if topLevelID(payload) == nil { throw error }
            }
        }
        guard let id = topLevelID(payload) else {
            throw Malformed(reason: "HANGUP names no ended call (no currentCall, no ivruniqueid)")
        }
        event.ended = CallUpdate(feed: feed, ids: CallIdentifiers(primary: id), agentExtension: state.extensionID, state: .released)
        return event
    }

    /// One extension's id and live calls.
    static func extensionState<JSON: JSONReadable>(_ data: JSON, feed: String, field: VoicenterExtensionField, offset: JSON?)
        -> ExtensionState
    {
        let extensionID = identifier(data[field.rawValue], limit: 128)
        var state = ExtensionState(extensionID: extensionID, calls: [], skipped: [], notes: [])
        guard let calls = data["calls"] else { return state }
        guard let items = calls.elements else {
            if !calls.isNull { state.skipped.append(Malformed(reason: "extension \(extensionID ?? "?"): calls is not an array")) }
            return state
        }
        state.calls.reserveCapacity(items.underestimatedCount)
        for item in items {
            do {
                let mapped = try call(item, feed: feed, agentExtension: extensionID, offset: offset)
                state.notes.formUnion(mapped.notes)
                if !mapped.isSpy { state.calls.append(mapped.update) }
            } catch {
                state.skipped.append(error)
            }
        }
        return state
    }

    struct MappedCall {
        var update: CallUpdate
        var isSpy: Bool
        var notes: Set<Note>
    }

    /// One `ExtensionCall`: `{ivrid, callstatus, direction, callerphone, recording: {IsMuted, …},
    /// customdata, …}`.
    static func call<JSON: JSONReadable>(_ value: JSON, feed: String, agentExtension: String?, offset: JSON?) throws(Malformed)
        -> MappedCall
    {
        guard value.isObject else { throw Malformed(reason: "a call is not an object") }
        guard let id = callID(value) else {
            throw Malformed(reason: "a call\(agentExtension.map { " of extension \($0)" } ?? "") has no usable ivrid")
        }
        var notes: Set<Note> = []
        // Compared in place: the status and direction are a few words, not worth a String each.
        let status = value["callstatus"]
        let state: CallState
        if let status, status.isString("Talking") {
            state = .established
        } else if let status, status.isString("Hold") {
            state = .held
        } else if let status, status.isString("Ringing") {
            state = .ringing
        } else if let status, status.isString("Dialing") {
            state = .dialing
        } else {
            // Listed in calls[], so live: dropping it would leave a capture unprotected.
            state = .established
            notes.insert(.unknownCallStatus(status?.string.map { word($0) } ?? "(none)"))
        }
        let directionValue = value["direction"]
        let direction: CallDirection
        var isSpy = false
        if let directionValue, directionValue.isString("Incoming") {
            direction = .inbound
        } else if let directionValue, directionValue.isString("Outgoing") || directionValue.isString("Click2Call") {
            direction = .outbound
        } else if let directionValue, directionValue.isString("Spy") {
            direction = .internal
            isSpy = true
        } else if let other = directionValue?.string {
            direction = .unknown
            notes.insert(.unknownDirection(word(other)))
        } else {
            direction = .unknown
        }
        let participants = value["callerphone"]?.scalarText.flatMap { $0.isEmpty ? nil : [$0] }
        let update = CallUpdate(
            feed: feed, ids: CallIdentifiers(primary: id), agentExtension: agentExtension, direction: direction, state: state,
            attributes: attributes(value["customdata"]), recording: recording(value["recording"]), participants: participants)
        return MappedCall(update: update, isSpy: isSpy, notes: notes)
    }

    static func isSpy<JSON: JSONReadable>(_ call: JSON) -> Bool { call["direction"]?.isString("Spy") == true }

    /// The call's id under any of the spellings Voicenter's own code uses.
    static func callID<JSON: JSONReadable>(_ call: JSON) -> String? {
        for key in callIDKeys {
            if let id = identifier(call[key], limit: 256, numbers: false) { return id }
        }
        return nil
    }

    // Made once: a literal in the loop would be a new array at every call.
    private static let callIDKeys = ["ivrid", "ivrUniqueId", "ivruniqueid", "ivrUniqueID"]
    private static let topLevelIDKeys = ["ivruniqueid", "ivrUniqueId", "ivrUniqueID", "ivrid"]

    static func topLevelID<JSON: JSONReadable>(_ payload: JSON) -> String? {
        for key in topLevelIDKeys {
            if let id = identifier(payload[key], limit: 256, numbers: false) { return id }
        }
        return nil
    }

    /// An identifier as text: a non-empty string of printable characters, or (when allowed) a
    /// whole number that a double holds exactly. An ivrid must be a string: its 18–19 digits do
    /// not survive a double.
    static func identifier<JSON: JSONReadable>(_ value: JSON?, limit: Int, numbers: Bool = true) -> String? {
        guard let value else { return nil }
        let text: String
        if let string = value.string {
            text = string
        } else if numbers, value.number != nil {
            guard let int = value.int else { return nil }
            text = String(int)
        } else {
            return nil
        }
        // In UTF-8 the scalars below 0x20 and 0x7F are exactly the bytes of those values.
        guard !text.isEmpty, text.utf8.count <= limit, !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return text
    }

    /// `customdata` as attributes. An object's values become their text (structures their JSON
    /// text, as GWS userData); a list of key/value pairs is read too, and so is an object sent as
    /// JSON text. Absent is "no news" (nil), so that an event that leaves customdata out cannot
    /// end a capture; `null` is "none" (empty).
    static func attributes<JSON: JSONReadable>(_ value: JSON?, nested: Bool = false) -> [String: String]? {
        guard let value else { return nil }
        if value.isNull { return [:] }
        if let members = value.members {
            var attributes = [String: String](minimumCapacity: members.underestimatedCount)
            for (key, value) in members { attributes[key] = text(value) }
            return attributes
        }
        if let items = value.elements {
            var attributes: [String: String] = [:]
            for item in items {
                guard let key = (item["Key"] ?? item["key"] ?? item["Name"] ?? item["name"])?.scalarText, !key.isEmpty else {
                    continue
                }
                attributes[key] = (item["Value"] ?? item["value"]).map(text) ?? ""
            }
            return attributes
        }
        if !nested, let string = value.string, string.utf8.first == UInt8(ascii: "{") {
            guard let parsed = try? JSONValue.parse(string, maximumDepth: 16) else { return nil }
            return attributes(parsed, nested: true)
        }
        return nil
    }

    private static func text<JSON: JSONReadable>(_ value: JSON) -> String {
        value.scalarText ?? (value.isNull ? "" : value.value.serialized)
    }

    /// `recording.IsMuted`: 1 (or true, "1", "true") is paused, 0 is recording. Anything else,
    /// or no recording object, says nothing.
    static func recording<JSON: JSONReadable>(_ value: JSON?) -> ReportedRecording? {
        guard let muted = value?["IsMuted"] ?? value?["isMuted"] else { return nil }
        if let number = muted.number {
            return number == 1 ? .paused : number == 0 ? .recording : nil
        }
        if let flag = muted.bool { return flag ? .paused : .recording }
        if muted.isString("1") || muted.isString("true") { return .paused }
        if muted.isString("0") || muted.isString("false") { return .recording }
        return nil
    }

    /// A non-zero `errorCode` (number or string) as text; nil for none, 0 and "0".
    static func errorCode<JSON: JSONReadable>(_ value: JSON?) -> String? {
        guard let text = value?.scalarText, !text.isEmpty, text != "0", text != "false" else { return nil }
        return word(text)
    }

    /// A short protocol word for a record: at most 32 characters, control characters dropped.
    static func word(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.lazy.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(32)))
        return text.unicodeScalars.count > 32 ? clean + "…" : clean
    }
}
