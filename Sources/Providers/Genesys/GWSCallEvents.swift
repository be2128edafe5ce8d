import MutewardenJSON
import MutewardenModel

/// Turns Genesys Web Services call notifications (CometD channel `/v2/me/calls`,
/// `CallStateChangeMessage`) and call resources into normalized call updates.
///
/// Shapes are from the GWS v2 documentation (docs/providers/genesys.md lists what is assumed).
public enum GWSCallEvents {
    /// The notification types GWS v2 documents on `/v2/me/calls`.
    public static let knownNotificationTypes: Set<String> = [
        "StatusChange", "AttachedDataChanged", "CallRecordingStateChange", "MonitoredUserMutedStateChange",
    ]

    public enum Outcome: Sendable, Hashable {
        /// A call update, and the notification type it came with.
        case update(CallUpdate, notificationType: String)
        /// A message on the channel that is not about a call (another message type).
        case ignored(messageType: String)
    }

    /// Why a message could not be used. The message is skipped; the feed stays up.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public var description: String { "malformed GWS call notification: \(reason)" }
    }

    /// Maps the `data` of one `/v2/me/calls` message.
    public static func map(notification data: JSONValue, feed: String) throws(Malformed) -> Outcome {
        guard case .object = data else { throw Malformed(reason: "data is not an object") }
        guard let messageType = data["messageType"]?.string else { throw Malformed(reason: "no messageType") }
        guard messageType == "CallStateChangeMessage" else { return .ignored(messageType: messageType) }
        guard let call = data["call"] else { throw Malformed(reason: "no call object") }
        let notificationType = data["notificationType"]?.string ?? "(none)"
        // The notification's phoneNumber is the agent's DN, the extension actions address.
        let update = try map(call: call, feed: feed, agentExtension: data["phoneNumber"]?.string)
        return .update(update, notificationType: notificationType)
    }

    /// Maps one call resource (from a notification, or from `GET /api/v2/me/calls`).
    public static func map(call: JSONValue, feed: String, agentExtension: String?) throws(Malformed) -> CallUpdate {
        guard case .object = call else { throw Malformed(reason: "call is not an object") }
        guard let id = call["id"]?.string, !id.isEmpty else { throw Malformed(reason: "the call has no id") }
        guard let stateName = call["state"]?.string else { throw Malformed(reason: "call \(id) has no state") }
        guard let state = callState(stateName) else {
            // A state is a short word: anything longer is quoted in part, so the record stays a line.
            let shown = stateName.count > 64 ? stateName.prefix(64) + "… (\(stateName.utf8.count) bytes)" : Substring(stateName)
            throw Malformed(reason: "call \(id) has unknown state '\(shown)'")
        }
        var secondary: [String: String] = [:]
        if let uuid = call["callUuid"]?.string, !uuid.isEmpty { secondary["callUuid"] = uuid }
        if let connID = call["connId"]?.string, !connID.isEmpty { secondary["connId"] = connID }
        return CallUpdate(
            feed: feed, ids: CallIdentifiers(primary: id, secondary: secondary), agentExtension: agentExtension,
            direction: direction(call["callType"]?.string), state: state,
            // Absent userData means the attached data was deleted: an empty set, not "unknown".
            attributes: attributes(call["userData"]),
            mute: call["mute"]?.string.flatMap(mute), recording: call["recordingState"]?.string.flatMap(recording),
            participants: participants(call["participants"]))
    }

    /// `GET /api/v2/me/calls`: `{"statusCode":0,"calls":[...]}`. A call that cannot be read is
    /// reported, not fatal: the rest of the list still counts.
    public static func mapCallList(_ body: JSONValue, feed: String, agentExtension: String?)
        -> (calls: [CallUpdate], skipped: [Malformed], statusCode: Int?)
    {
        let statusCode = body["statusCode"]?.int
        var calls: [CallUpdate] = []
        var skipped: [Malformed] = []
        for call in body["calls"]?.array ?? [] {
            do {
                calls.append(try map(call: call, feed: feed, agentExtension: agentExtension))
            } catch {
                skipped.append(error)
            }
        }
        return (calls, skipped, statusCode)
    }

    static func callState(_ name: String) -> CallState? {
        switch name {
        case "Ringing": .ringing
        case "Dialing": .dialing
        case "Established": .established
        case "Held": .held
        case "Released", "Completed": .released
        default: nil
        }
    }

    static func direction(_ callType: String?) -> CallDirection {
        switch callType {
        case "Inbound": .inbound
        case "Outbound": .outbound
        case "Internal": .internal
        case "Consult": .consult
        default: .unknown
        }
    }

    static func mute(_ value: String) -> ReportedMute? {
        switch value {
        case "On": .on
        case "Off": .off
        default: nil
        }
    }

    static func recording(_ value: String) -> ReportedRecording? {
        switch value {
        case "Recording": .recording
        case "Paused": .paused
        case "Stopped": .stopped
        default: nil
        }
    }

    /// userData values are any JSON: scalars become their text, structures their JSON text, so a
    /// policy can still match them.
    static func attributes(_ userData: JSONValue?) -> [String: String] {
        guard let members = userData?.object else { return [:] }
        var attributes: [String: String] = [:]
        attributes.reserveCapacity(members.count)
        for (key, value) in members {
            attributes[key] = value.scalarText ?? (value == .null ? "" : value.serialized)
        }
        return attributes
    }

    /// Participants come as strings in older GWS and as objects in newer; the number is kept.
    static func participants(_ value: JSONValue?) -> [String]? {
        guard let items = value?.array else { return nil }
        return items.compactMap { item in
            item.string ?? item["phoneNumber"]?.string ?? item["digits"]?.string
        }
    }
}
