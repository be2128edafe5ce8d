import MutewardenModel

/// The `graph` feed's logic, with no I/O: it takes the notifications of callbacks, what the
/// `graph` target learnt of its own operations, and the passing of time, and says what to deliver
/// and what to record. ``GraphFeed`` drives it from the ingress; tests and the fuzzer drive it
/// directly.
///
/// Graph notifies changes of resources: a call's state, its roster, an operation. The core keeps
/// what is known of every live call (its participants, which one is the agent, mute, the bot's
/// recording status, whether digits are being keyed) and delivers the whole of it at each change,
/// so that a policy's condition sees the call, not the last notification.
public struct GraphFeedCore: Sendable {
    /// Which participant is the agent: whose `isMuted` is reported as the call's mute and whose
    /// participant id a mute addresses.
    public enum AgentSelection: Sendable, Hashable, CustomStringConvertible {
        /// The bot itself (the participant whose `application` identity is the app id): what the
        /// bot's own mute and unmute change.
        case bot(appID: String)
        /// The first participant with an identity of one of `kinds` (`user`, `phone`…) whose id
        /// starts with `idPrefix` (any, when nil).
        case participant(kinds: [String], idPrefix: String?)

        public var description: String {
            switch self {
            case .bot(let appID): "the bot (application \(appID))"
            case .participant(let kinds, let prefix):
                "the first participant with a \(kinds.joined(separator: "/")) identity" + (prefix.map { " starting '\($0)'" } ?? "")
            }
        }
    }

    public struct Configuration: Sendable, Hashable {
        public var feed: String
        public var agent: AgentSelection
        /// The attribute that says digits are being keyed: set to ``keyingValue`` at each tone,
        /// removed after ``keyingQuietPeriod`` without one. Its value never holds a digit.
        public var keyingAttribute: String
        public var keyingQuietPeriod: Duration
        /// A call that sent no notification for this long is forgotten, with a record: a
        /// `terminated` the platform never delivered must not keep it tracked forever.
        public var idleLimit: Duration
        public var maximumCalls: Int
        /// Operations the target reported as still running are remembered this long, at most
        /// ``maximumPendingOperations`` of them, waiting for their outcome's notification.
        public var operationLifetime: Duration
        public var maximumPendingOperations: Int

        public init(
            feed: String, agent: AgentSelection, keyingAttribute: String = "dtmf", keyingQuietPeriod: Duration = .seconds(5),
            idleLimit: Duration = .seconds(4 * 3600), maximumCalls: Int = 100_000, operationLifetime: Duration = .seconds(600),
            maximumPendingOperations: Int = 10_000
        ) {
            self.feed = feed
            self.agent = agent
            self.keyingAttribute = keyingAttribute
            self.keyingQuietPeriod = keyingQuietPeriod
            self.idleLimit = idleLimit
            self.maximumCalls = maximumCalls
            self.operationLifetime = operationLifetime
            self.maximumPendingOperations = maximumPendingOperations
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
        var participants: [GraphNotifications.Participant] = []
        var agent: String?
        var mute: ReportedMute?
        var recording: ReportedRecording?
        var keyingUntil: MonotonicInstant?
        var lastEventAt: MonotonicInstant
    }

    struct PendingOperation: Sendable {
        var call: String
        var operation: String
        var effect: GraphOperationEffect?
        var operationID: String?
        var expiresAt: MonotonicInstant
    }

    public let configuration: Configuration
    private var calls: [String: CallRecord] = [:]
    private var pending: [String: PendingOperation] = [:]
    /// Notifications of resources the feed does not read, by type, since the last ``takeSkippedCounts()``.
    public private(set) var skippedTypes: [String: Int] = [:]

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public var trackedCalls: Int { calls.count }
    public var pendingOperations: Int { pending.count }

    /// A callback's notifications, in order.
    public mutating func receive(_ batch: GraphNotifications.Batch, now: MonotonicInstant) -> [Output] {
        var outputs: [Output] = []
        for malformed in batch.skipped {
            var fields: AuditFields = [.feed: configuration.feed, .reason: "malformed"]
            if let call = malformed.call { fields[.call] = call }
            outputs.append(.report(.warning, "graph notification skipped: \(malformed.reason)", fields))
        }
        var updates: [CallUpdate] = []
        for notification in batch.notifications {
            if let update = apply(notification, now: now, outputs: &outputs) { updates.append(update) }
        }
        if !updates.isEmpty { outputs.insert(.deliver(updates), at: 0) }
        return outputs
    }

    /// The update `notification` makes, if it changes what is known of its call.
    private mutating func apply(_ notification: GraphNotifications.Notification, now: MonotonicInstant, outputs: inout [Output])
        -> CallUpdate?
    {
        let id = notification.callID
        var released = false
        var touchesCall = false
        for payload in notification.payloads {
            switch payload {
            case .callState(let state):
                touchesCall = true
                if GraphNotifications.callStates[state] == .released { released = true }
            case .participants, .tone: touchesCall = true
            case .operation(let operation):
                outputs += settle(operation, call: id, now: now)
            case .other(let type): skippedTypes[type, default: 0] += 1
            }
        }
        // A call deleted is gone, whatever its data says (MSG api/call-delete.md: `deleted` with
        // state `terminated`).
        if notification.changeType == .deleted && notification.resource == .call { released = true }
        if released {
            guard var record = calls.removeValue(forKey: id) else {
                // A call never seen (or already released by `terminating`): still say it ended, so
                // that a window the engine restored from its state file for it closes.
                return CallUpdate(feed: configuration.feed, ids: CallIdentifiers(primary: id), state: .released)
            }
            record.state = .released
            record.keyingUntil = nil
            return update(record)
        }
        guard touchesCall else { return nil }
        var record: CallRecord
        let isNew = calls[id] == nil
        if let known = calls[id] {
            record = known
        } else {
            guard calls.count < configuration.maximumCalls else {
                outputs.append(
                    .report(
                        .critical, "graph: \(calls.count) calls tracked, the configured maximum; call \(id) is not followed",
                        [.feed: configuration.feed, .call: id, .reason: "too-many-calls"]))
                return nil
            }
            record = CallRecord(ids: CallIdentifiers(primary: id), lastEventAt: now)
        }
        let before = record
        record.lastEventAt = now
        for payload in notification.payloads {
            switch payload {
            case .callState(let state):
                if let mapped = GraphNotifications.callStates[state] { record.state = mapped }
            case .participants(let participants):
                apply(participants, change: notification.changeType, to: &record)
            case .tone:
                record.keyingUntil = now + configuration.keyingQuietPeriod
            case .operation, .other:
                break
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

    private func apply(_ participants: [GraphNotifications.Participant], change: GraphNotifications.ChangeType, to record: inout CallRecord) {
        switch change {
        case .deleted:
            let gone = Set(participants.map(\.id))
            record.participants.removeAll { gone.contains($0.id) }
        case .created, .updated:
            for participant in participants {
                if let index = record.participants.firstIndex(where: { $0.id == participant.id }) {
                    record.participants[index] = participant
                } else if record.participants.count < 256 {
                    record.participants.append(participant)
                }
            }
        }
        let agent = record.participants.first(where: isAgent)
        if let agent {
            record.agent = agent.id
            record.mute = agent.isMuted.map { $0 ? .on : .off } ?? record.mute
        } else if let known = record.agent, !record.participants.contains(where: { $0.id == known }) {
            // The agent left: its mute no longer describes anyone in the call.
            record.agent = nil
            record.mute = nil
        }
    }

    private func isAgent(_ participant: GraphNotifications.Participant) -> Bool {
        switch configuration.agent {
        case .bot(let appID):
            return participant.identity("application") == appID || participant.identity("applicationInstance") == appID
        case .participant(let kinds, let prefix):
            return kinds.contains { kind in
                guard let id = participant.identity(kind) else { return false }
                return prefix.map { id.hasPrefix($0) } ?? true
            }
        }
    }

    private func update(_ record: CallRecord) -> CallUpdate {
        var attributes: [String: String] = [:]
        if record.keyingUntil != nil { attributes[configuration.keyingAttribute] = Self.keyingValue }
        return CallUpdate(
            feed: configuration.feed, ids: record.ids, agentExtension: record.agent, direction: .unknown, state: record.state,
            attributes: attributes, mute: record.mute, recording: record.recording,
            participants: record.participants.map { $0.identities.first ?? "participant:\($0.id)" })
    }

    // MARK: - Operations

    /// What the target says of an operation it sent for a call of this feed.
    public mutating func receive(_ message: GraphOperationMessage, now: MonotonicInstant) -> [Output] {
        switch message {
        case .running(let clientContext, let operationID, let call, let operation, let effect):
            guard pending.count < configuration.maximumPendingOperations || pending[clientContext] != nil else {
                return [
                    .report(
                        .warning,
                        "graph: \(pending.count) operations awaited, the configured maximum; the outcome of \(operation) "
                            + "on call \(call) will not be read", [.feed: configuration.feed, .call: call, .reason: "too-many-operations"])
                ]
            }
            pending[clientContext] = PendingOperation(
                call: call, operation: operation, effect: effect, operationID: operationID, expiresAt: now + configuration.operationLifetime)
            return []
        case .completed(let call, let effect):
            return apply(effect, to: call)
        }
    }

    /// An operation notification: its outcome for the operation the target is waiting for.
    private mutating func settle(_ operation: GraphNotifications.Operation, call: String, now: MonotonicInstant) -> [Output] {
        var key = operation.clientContext.flatMap { pending[$0] == nil ? nil : $0 }
        if key == nil, let id = operation.id {
            key = pending.first { $0.value.operationID == id && $0.value.call == call }?.key
        }
        switch operation.status {
        case .notStarted, .running:
            return []
        case .completed:
            guard let key, let entry = pending.removeValue(forKey: key) else { return [] }
            return entry.effect.map { apply($0, to: entry.call) } ?? []
        case .failed:
            let entry = key.flatMap { pending.removeValue(forKey: $0) }
            let what = entry?.operation ?? operation.type
            return [
                .report(
                    .error, "graph: \(what) on call \(call) failed: \(operation.resultInfo.map { "\($0)" } ?? "no result info")",
                    [.feed: configuration.feed, .call: call, .reason: "operation-failed"])
            ]
        }
    }

    private mutating func apply(_ effect: GraphOperationEffect, to call: String) -> [Output] {
        guard var record = calls[call] else { return [] }
        let before = record
        switch effect {
        case .recording(let state): record.recording = state
        }
        calls[call] = record
        return changed(before, record) ? [.deliver([update(record)])] : []
    }

    // MARK: - Time

    /// When ``tick(now:)`` next has something to do.
    public var nextDeadline: MonotonicInstant? {
        var next: MonotonicInstant?
        for record in calls.values {
            let idle = record.lastEventAt + configuration.idleLimit
            next = min(next ?? idle, idle)
            if let keying = record.keyingUntil { next = min(next ?? keying, keying) }
        }
        for entry in pending.values { next = min(next ?? entry.expiresAt, entry.expiresAt) }
        return next
    }

    /// Ends the keying of calls whose quiet period passed, forgets calls idle past the limit and
    /// operations whose outcome never came.
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
                        .warning, "graph: call \(id) sent no notification for \(configuration.idleLimit.compact) and is taken as ended",
                        [.feed: configuration.feed, .call: id, .reason: "idle"]))
                continue
            }
            if let until = record.keyingUntil, until <= now {
                record.keyingUntil = nil
                calls[id] = record
                updates.append(update(record))
            }
        }
        for (key, entry) in pending where entry.expiresAt <= now {
            pending[key] = nil
            outputs.append(
                .report(
                    .warning,
                    "graph: no outcome of \(entry.operation) on call \(entry.call) was notified within "
                        + configuration.operationLifetime.compact, [.feed: configuration.feed, .call: entry.call, .reason: "operation-lost"]))
        }
        if !updates.isEmpty { outputs.insert(.deliver(updates), at: 0) }
        return outputs
    }

    /// The skipped resource types and their counts since the last call, for one record.
    public mutating func takeSkippedCounts() -> [String: Int] {
        defer { skippedTypes = [:] }
        return skippedTypes
    }
}
