/// The call states every provider maps its own vocabulary onto.
public enum CallState: String, Sendable, Hashable, CaseIterable {
    case ringing, dialing, established, held, released
}

/// Which way the call goes, as seen from the agent.
public enum CallDirection: String, Sendable, Hashable, CaseIterable {
    case inbound, outbound, `internal`, consult, unknown
}

/// The platform's own report of whether the agent is muted.
public enum ReportedMute: String, Sendable, Hashable {
    case on, off
}

/// The platform's own report of the call recording.
public enum ReportedRecording: String, Sendable, Hashable {
    case recording, paused, stopped
}

/// How a provider names one call: its primary id, plus secondary ids such as `connId` or `callUuid`.
public struct CallIdentifiers: Sendable, Hashable, Codable {
    /// The id the provider's call-control API takes.
    public var primary: String
    /// Other names of the same call, by kind (`connId`, `callUuid`, `ivrid`...).
    public var secondary: [String: String]

    public init(primary: String, secondary: [String: String] = [:]) {
        self.primary = primary
        self.secondary = secondary
    }
}

/// One normalized call event: what a feed turns each platform event into.
public struct CallUpdate: Sendable, Hashable {
    /// The name of the feed (from the configuration) that saw the event.
    public var feed: String
    public var ids: CallIdentifiers
    /// The agent's extension (DN, SIP id, phone number) when the platform names it.
    public var agentExtension: String?
    public var direction: CallDirection
    public var state: CallState
    /// The call's attributes (attached data) when this event reports them. `nil` means the event
    /// says nothing about attributes; a dictionary, even empty, replaces what was known.
    public var attributes: [String: String]?
    public var mute: ReportedMute?
    public var recording: ReportedRecording?
    /// The other parties' numbers, when the platform lists them; kept for the audit trail.
    public var participants: [String]?
    /// A provider-supplied, per-call increasing number (event sequence or timestamp). When present,
    /// an update whose sequence is not above the last one seen for the call is stale and dropped.
    public var sequence: UInt64?

    public init(
        feed: String,
        ids: CallIdentifiers,
        agentExtension: String? = nil,
        direction: CallDirection = .unknown,
        state: CallState,
        attributes: [String: String]? = nil,
        mute: ReportedMute? = nil,
        recording: ReportedRecording? = nil,
        participants: [String]? = nil,
        sequence: UInt64? = nil
    ) {
        self.feed = feed
        self.ids = ids
        self.agentExtension = agentExtension
        self.direction = direction
        self.state = state
        self.attributes = attributes
        self.mute = mute
        self.recording = recording
        self.participants = participants
        self.sequence = sequence
    }
}
