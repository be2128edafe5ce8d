import MutewardenModel

/// The `acs` feed's logic, with no I/O: it takes the event batches of callbacks and the passing of
/// time, and says what to deliver and what to record. ``ACSFeed`` drives it from the ingress;
/// tests and the fuzzer drive it directly.
///
/// Call Automation sends events, not states: each callback says one thing about one call
/// connection. The core keeps what is known of every live call (its agent, participants, mute,
/// recording and whether digits are being keyed) and delivers the whole of it at each change, so
/// that a policy's condition sees the call, not the last event.
public struct ACSFeedCore: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var feed: String
        /// Which participants are the agent, whose mute state is reported and whose id actions
        /// address: the first participant of one of these kinds whose raw id starts with
        /// ``agentIDPrefix``.
        public var agentKinds: Set<String>
        public var agentIDPrefix: String?
        /// The attribute that says digits are being keyed: set to ``keyingValue`` at each tone,
        /// removed after ``keyingQuietPeriod`` without one. Its value never holds a digit.
        public var keyingAttribute: String
        public var keyingQuietPeriod: Duration
        /// A call that sent no event for this long is forgotten, with a record: a
        /// `CallDisconnected` the platform never delivered must not keep it tracked forever.
        public var idleLimit: Duration
        /// At most this many calls are tracked; events about a call beyond it are refused with a
        /// record.
        public var maximumCalls: Int

        public init(
            feed: String, agentKinds: Set<String> = ["communicationUser", "microsoftTeamsUser"], agentIDPrefix: String? = nil,
            keyingAttribute: String = "dtmf", keyingQuietPeriod: Duration = .seconds(5), idleLimit: Duration = .seconds(4 * 3600),
            maximumCalls: Int = 100_000
        ) {
            self.feed = feed
            self.agentKinds = agentKinds
            self.agentIDPrefix = agentIDPrefix
            self.keyingAttribute = keyingAttribute
            self.keyingQuietPeriod = keyingQuietPeriod
            self.idleLimit = idleLimit
            self.maximumCalls = maximumCalls
        }
    }

    public static let keyingValue = "keying"

    /// What the driver does, in order.
    public enum Output: Sendable, Hashable {
        case deliver([CallUpdate])
        case report(AuditSeverity, String, AuditFields)
    }

    struct CallRecord: Sendable {
        var ids: CallIdentifiers
        var state: CallState = .established
        var agent: String?
        var participants: [String]?
        var mute: ReportedMute?
        var recording: ReportedRecording?
        var participantsSequence: Int?
        var keyingUntil: MonotonicInstant?
        var lastEventAt: MonotonicInstant
    }

    public let configuration: Configuration
    private var calls: [String: CallRecord] = [:]
    /// Events of types the feed does not read, by type, since the last ``takeSkippedCounts()``.
    public private(set) var skippedTypes: [String: Int] = [:]

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var trackedCalls: Int { calls.count }

    /// A callback's events, in order.
    public mutating func receive(_ batch: ACSEvents.Batch, now: MonotonicInstant) -> [Output] {
        var outputs: [Output] = []
        for malformed in batch.skipped {
            var fields: AuditFields = [.feed: configuration.feed, .reason: malformed.reason]
            if let call = malformed.call { fields[.call] = call }
            outputs.append(.report(.warning, "acs event skipped: \(malformed.reason)", fields))
        }
        var updates: [CallUpdate] = []
        for event in batch.events {
            if case .other(let type) = event.payload {
                skippedTypes[type, default: 0] += 1
                continue
            }
            if let update = apply(event, now: now, outputs: &outputs) { updates.append(update) }
        }
        if !updates.isEmpty { outputs.insert(.deliver(updates), at: 0) }
        return outputs
    }

    /// The update `event` makes, if it changes what is known of its call.
    private mutating func apply(_ event: ACSEvents.Event, now: MonotonicInstant, outputs: inout [Output]) -> CallUpdate? {
        let id = event.callConnectionID
        if case .callDisconnected = event.payload {
            guard var record = calls.removeValue(forKey: id) else {
                // A call never seen: still say it ended, so that a window the engine restored
                // from its state file for it closes.
                return CallUpdate(feed: configuration.feed, ids: identifiers(of: event, merging: nil), state: .released)
            }
            record.state = .released
            record.keyingUntil = nil
            return update(record)
        }
        var record: CallRecord
        let isNew = calls[id] == nil
        if let known = calls[id] {
            record = known
        } else {
            guard calls.count < configuration.maximumCalls else {
                outputs.append(
                    .report(
                        .critical, "acs: \(calls.count) calls tracked, the configured maximum; call \(id) is not followed",
                        [.feed: configuration.feed, .call: id, .reason: "too-many-calls"]))
                return nil
            }
            record = CallRecord(ids: identifiers(of: event, merging: nil), lastEventAt: now)
        }
        let before = record
        record.ids = identifiers(of: event, merging: record.ids)
        record.lastEventAt = now
        switch event.payload {
        case .callConnected, .callDisconnected, .other:
            break
        case .participantsUpdated(let sequence, let participants):
            if let sequence, let last = record.participantsSequence, sequence <= last {
                // Call Automation may deliver callbacks out of order; `sequenceNumber` says which
                // roster is newer.
                calls[id] = record
                return nil
            }
            record.participantsSequence = sequence ?? record.participantsSequence
            apply(participants, to: &record)
        case .toneReceived:
            record.keyingUntil = now + configuration.keyingQuietPeriod
        case .recordingStateChanged(let recordingID, let state):
            record.ids.secondary["recordingId"] = recordingID
            switch state {
            case .active?: record.recording = .recording
            case .inactive?: record.recording = .paused
            case nil: break
            }
        }
        calls[id] = record
        if !isNew && !changed(before, record) { return nil }
        return update(record)
    }

    private func changed(_ a: CallRecord, _ b: CallRecord) -> Bool {
        a.ids != b.ids || a.state != b.state || a.agent != b.agent || a.participants != b.participants || a.mute != b.mute
            || a.recording != b.recording || (a.keyingUntil == nil) != (b.keyingUntil == nil)
    }

    private func apply(_ participants: [ACSEvents.Participant], to record: inout CallRecord) {
        record.participants = participants.map(\.rawId)
        let agent = participants.first { participant in
            configuration.agentKinds.contains(participant.kind)
                && (configuration.agentIDPrefix.map { participant.rawId.hasPrefix($0) } ?? true)
        }
        record.agent = agent?.rawId ?? record.agent
        if let agent {
            record.mute = agent.isMuted.map { $0 ? .on : .off } ?? record.mute
        }
        let others = participants.filter { $0.rawId != agent?.rawId }
        let heldByAll = !others.isEmpty && others.allSatisfy { $0.isOnHold == true }
        record.state = (heldByAll || agent?.isOnHold == true) ? .held : .established
    }

    private func identifiers(of event: ACSEvents.Event, merging known: CallIdentifiers?) -> CallIdentifiers {
        var ids = known ?? CallIdentifiers(primary: event.callConnectionID)
        if let server = event.serverCallID { ids.secondary["serverCallId"] = server }
        if let correlation = event.correlationID { ids.secondary["correlationId"] = correlation }
        return ids
    }

    private func update(_ record: CallRecord) -> CallUpdate {
        var attributes: [String: String] = [:]
        if record.keyingUntil != nil { attributes[configuration.keyingAttribute] = Self.keyingValue }
        return CallUpdate(
            feed: configuration.feed, ids: record.ids, agentExtension: record.agent, direction: .unknown, state: record.state,
            attributes: attributes, mute: record.mute, recording: record.recording, participants: record.participants)
    }

    /// When ``tick(now:)`` next has something to do.
    public var nextDeadline: MonotonicInstant? {
        var next: MonotonicInstant?
        for record in calls.values {
            let idle = record.lastEventAt + configuration.idleLimit
            next = min(next ?? idle, idle)
            if let keying = record.keyingUntil { next = min(next ?? keying, keying) }
        }
        return next
    }

    /// Ends the keying of calls whose quiet period passed, and forgets calls idle past the limit.
    public mutating func tick(now: MonotonicInstant) -> [Output] {
        var updates: [CallUpdate] = []
        var outputs: [Output] = []
        for (id, var record) in calls {
            if record.lastEventAt + configuration.idleLimit <= now {
                calls[id] = nil
                record.state = .released
                record.keyingUntil = nil
                updates.append(update(record))
                outputs.append(
                    .report(
                        .warning, "acs: call \(id) sent no event for \(configuration.idleLimit.compact) and is taken as ended",
                        [.feed: configuration.feed, .call: id, .reason: "idle"]))
                continue
            }
            if let until = record.keyingUntil, until <= now {
                record.keyingUntil = nil
                calls[id] = record
                updates.append(update(record))
            }
        }
        if !updates.isEmpty { outputs.insert(.deliver(updates), at: 0) }
        return outputs
    }

    /// The skipped event types and their counts since the last call, for one record.
    public mutating func takeSkippedCounts() -> [String: Int] {
        defer { skippedTypes = [:] }
        return skippedTypes
    }
}
