import MutewardenJSON
import MutewardenModel

/// The Voicenter feed's logic, with no I/O: it takes the socket.io events of one connection
/// (`(name, data)`), the connection's ups and downs and the passing of time, and says what to do:
/// call updates and snapshots for the engine, events to emit, records to write, and when to give
/// up on the connection. ``VoicenterFeed`` drives it over a ``VoicenterSocketSession``; tests and
/// the fuzzer drive it directly.
///
/// What it remembers between events is which extensions each live call is on (its *legs*): a
/// call that a transfer or a conference put on two extensions stays live when one of them hangs
/// up, and moves to the other.
public struct VoicenterFeedCore: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var feed: String
        public var extensionField: VoicenterExtensionField
        /// Emit `keepalive` after this long without any event (the vendor's SDK: 60 s).
        public var keepaliveAfter: Duration
        /// Give up on the connection after this long without any event (the SDK: twice the above).
        public var silenceLimit: Duration
        /// How long to wait for `AllExtensionsStatus` after connecting or asking for a resync:
        /// past it, ask (again) with `resync`; past it once more, reconnect.
        public var snapshotWait: Duration
        /// Ask for a fresh snapshot this often while connected (the SDK: every 5 minutes), so that
        /// a HANGUP the server never sent does not leave a call tracked until the idle limit.
        public var resyncInterval: Duration?

        public init(
            feed: String, extensionField: VoicenterExtensionField = .extenUser, keepaliveAfter: Duration = .seconds(60),
            silenceLimit: Duration? = nil, snapshotWait: Duration = .seconds(15), resyncInterval: Duration? = .seconds(300)
        ) {
            self.feed = feed
            self.extensionField = extensionField
            self.keepaliveAfter = keepaliveAfter
            self.silenceLimit = silenceLimit ?? keepaliveAfter * 2
            self.snapshotWait = snapshotWait
            self.resyncInterval = resyncInterval
        }
    }

    /// What the driver does, in order.
    public enum Output: Sendable, Hashable {
        /// Calls' new states, for `sink.deliver(contentsOf:)`.
        case deliver([CallUpdate])
        /// The platform's complete list of current calls, for `sink.resync(feed:current:)`.
        case resync([CallUpdate])
        /// The first snapshot of this connection has arrived: the feed is up.
        case ready
        /// Emit `keepalive` with the current socket token (the driver holds the token, so that no
        /// output ever carries it).
        case keepalive
        /// Emit an event, e.g. `resync` `{"cache": false}`.
        case emit(event: String, data: JSONValue)
        /// Write a record.
        case report(AuditSeverity, String, AuditFields)
        /// Close this connection and open another (on the next server); `newLogin` when the
        /// token is what the server refused.
        case reconnect(reason: String, newLogin: Bool)
    }

    public let configuration: Configuration

    /// The events the feed reads, and those it knows and ignores (queues, dialers, users).
    public static let ignoredEvents: Set<String> = [
        "loginSuccess", "QueueEvent", "DialerEvent", "AllDialersStatus", "AllUsersStatus", "QueuesUpdated", "DialersUpdated",
        "UserEvent",
    ]

    /// The emit that asks the server for a fresh `AllExtensionsStatus`, as the vendor's SDK sends it.
    public static let resyncEmit = Output.emit(event: "resync", data: .object([("cache", .bool(false))]))

    // Per connection.
    private var isConnected = false
    private var isReady = false
    private var lastEventAt = MonotonicInstant.zero
    private var keepaliveSentAt: MonotonicInstant?
    /// Since when a snapshot is awaited, and whether `resync` was already asked for meanwhile.
    private var awaitingSnapshotSince: MonotonicInstant?
    private var resyncAsked = false
    private var lastSnapshotAt = MonotonicInstant.zero

    // Across connections: replaced by every snapshot.
    /// ivrid → extension → the call as that extension last stated it.
    private var legs: [String: [String: CallUpdate]] = [:]
    /// extension → the ivrids it listed last, each once. A list, not a set: an extension lists
    /// a call or two, and making a set of them for every event cost more than comparing them
    /// (docs/performance.md); ``LiveIDs`` keeps long lists fast.
    private var callsByExtension: [String: [String]] = [:]
    /// What was reported once (unknown events, reasons, statuses), bounded.
    private var reportedOnce: Set<String> = []

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// How many calls are known live, for tests and status.
    public var liveCallCount: Int { legs.count }

    /// A connection is up (socket.io CONNECT done): the server is expected to send
    /// `AllExtensionsStatus` by itself.
    public mutating func connected(at now: MonotonicInstant) -> [Output] {
        isConnected = true
        isReady = false
        lastEventAt = now
        keepaliveSentAt = nil
        awaitingSnapshotSince = now
        resyncAsked = false
        return []
    }

    /// The connection ended; events of the next one start afresh.
    public mutating func disconnected() {
        isConnected = false
        isReady = false
        awaitingSnapshotSince = nil
    }

    /// One event of the connection.
    public mutating func received(_ name: String, _ data: JSONValue, at now: MonotonicInstant) -> [Output] {
        received(name, of: data, at: now)
    }

    /// One event of the connection, its data read in place (as the socket.io client hands it over).
    public mutating func received(_ name: String, _ data: JSONNode, at now: MonotonicInstant) -> [Output] {
        received(name, of: data, at: now)
    }

    private mutating func received<JSON: JSONReadable>(_ name: String, of data: JSON, at now: MonotonicInstant) -> [Output] {
        lastEventAt = now
        keepaliveSentAt = nil
        switch name {
        case "AllExtensionsStatus":
            return snapshot(data, at: now)
        case "ExtensionEvent":
            return extensionEvent(data, at: now)
        case "ExtensionsUpdated":
            // The set of monitored extensions changed: what is known may be missing some.
            return askForSnapshot(at: now)
        case "keepaliveResponse", "loginStatus":
            if data["isOk"]?.bool == false || VoicenterEvents.errorCode(data["errorCode"]) != nil {
                let code = VoicenterEvents.errorCode(data["errorCode"]).map { "errorCode \($0)" } ?? "isOk false"
                return [.reconnect(reason: "the server answered \(name) with \(code)", newLogin: true)]
            }
            return []
        default:
            if Self.ignoredEvents.contains(name) { return [] }
            return once(
                "event:\(name)", .notice,
                "feed \(configuration.feed): unknown event '\(VoicenterEvents.word(name))' ignored (reported once)",
                [.feed: configuration.feed, .reason: VoicenterEvents.word(name)])
        }
    }

    /// The passing of time: keepalive, silence, an overdue snapshot, the periodic resync.
    public mutating func tick(at now: MonotonicInstant) -> [Output] {
        guard isConnected else { return [] }
        let silent = now.since(lastEventAt)
        if silent >= configuration.silenceLimit {
            return [.reconnect(reason: "no event for \(silent.compact) (keepalive unanswered)", newLogin: false)]
        }
        if let since = awaitingSnapshotSince, now.since(since) >= configuration.snapshotWait {
            if resyncAsked {
                return [.reconnect(reason: "no AllExtensionsStatus \(configuration.snapshotWait.compact) after asking for a resync", newLogin: false)]
            }
            awaitingSnapshotSince = now
            resyncAsked = true
            return [
                .report(
                    .notice,
                    "feed \(configuration.feed): no AllExtensionsStatus within \(configuration.snapshotWait.compact) "
                        + (isReady ? "of an update of the extensions" : "of connecting") + "; asking for a resync",
                    [.feed: configuration.feed, .result: "resync"]),
                Self.resyncEmit,
            ]
        }
        if silent >= configuration.keepaliveAfter, keepaliveSentAt.map({ now.since($0) >= configuration.keepaliveAfter }) ?? true {
            keepaliveSentAt = now
            return [.keepalive]
        }
        if isReady, awaitingSnapshotSince == nil, let interval = configuration.resyncInterval, now.since(lastSnapshotAt) >= interval {
            return askForSnapshot(at: now)
        }
        return []
    }

    // MARK: - Events

    private mutating func snapshot<JSON: JSONReadable>(_ data: JSON, at now: MonotonicInstant) -> [Output] {
        let feed = configuration.feed
        let snapshot: VoicenterEvents.Snapshot
        do {
            snapshot = try VoicenterEvents.snapshot(of: data, feed: feed, field: configuration.extensionField)
        } catch {
            if let code = error.errorCode {
                return [
                    .reconnect(reason: "the server refused AllExtensionsStatus with errorCode \(code)", newLogin: true)
                ]
            }
            // Still awaited: the overdue-snapshot timer asks again, then reconnects.
            return [
                .report(
                    .error, "feed \(feed): AllExtensionsStatus skipped: \(error)",
                    [.feed: feed, .result: "skipped", .reason: "resync"])
            ]
        }
        var outputs: [Output] = []
        legs.removeAll(keepingCapacity: true)
        callsByExtension.removeAll(keepingCapacity: true)
        var listed: [CallUpdate] = []
        var position: [String: Int] = [:]
        var listedBy: [String: Set<String>] = [:]
        defer { callsByExtension = listedBy.mapValues { Array($0) } }
        for state in snapshot.extensions {
            let key = state.extensionID ?? ""
            listedBy[key, default: []].formUnion(state.calls.map(\.ids.primary))
            for call in state.calls {
                legs[call.ids.primary, default: [:]][key] = call
                // One entry per call: the engine keys calls by id, and a second entry for a call on
                // two extensions would only move it between them.
                if let index = position[call.ids.primary] {
                    listed[index] = call
                } else {
                    position[call.ids.primary] = listed.count
                    listed.append(call)
                }
            }
            outputs += problems(of: state, in: "AllExtensionsStatus")
        }
        for skipped in snapshot.skipped {
            outputs.append(.report(.warning, "feed \(feed): AllExtensionsStatus: \(skipped); skipped", [.feed: feed, .result: "skipped"]))
        }
        outputs.insert(.resync(listed), at: 0)
        if !isReady {
            // Up first, then resynchronized: the records then read in the order things happened.
            isReady = true
            outputs.insert(.ready, at: 0)
        }
        awaitingSnapshotSince = nil
        resyncAsked = false
        lastSnapshotAt = now
        return outputs
    }

    private mutating func extensionEvent<JSON: JSONReadable>(_ data: JSON, at now: MonotonicInstant) -> [Output] {
        let feed = configuration.feed
        let event: VoicenterEvents.ExtensionEvent
        do {
            event = try VoicenterEvents.extensionEvent(of: data, feed: feed, field: configuration.extensionField)
        } catch {
            // A skipped event may have carried a capture: a fresh snapshot brings it back.
            var fields: AuditFields = [.feed: feed, .result: "skipped", .reason: "resync"]
            if let call = error.call { fields[.call] = call }
            return [
                .report(
                    .warning,
                    "feed \(feed)" + (error.call.map { ", call \($0)" } ?? "")
                        + ": ExtensionEvent skipped, and a resync is asked for so that a capture it carried is not lost: \(error)",
                    fields)
            ] + askForSnapshot(at: now)
        }
        var notices: [Output] = []
        if !VoicenterEvents.knownReasons.contains(event.reason) {
            notices = once(
                "reason:\(event.reason)", .notice,
                "feed \(feed): unknown ExtensionEvent reason '\(VoicenterEvents.word(event.reason))'; its calls are still applied "
                    + "(reported once)", [.feed: feed, .reason: VoicenterEvents.word(event.reason)])
        }
        let key = event.state.extensionID ?? ""
        let live = LiveIDs(event.state.calls)
        // This extension's list is the truth for this extension: a call it no longer lists has
        // left it (hung up, transferred away). Only a HANGUP ends a call; a call that merely left
        // keeps its state until its next event or the next snapshot.
        for gone in callsByExtension[key] ?? [] where !live.contains(gone) {
            legs[gone]?[key] = nil
            if legs[gone]?.isEmpty == true { legs[gone] = nil }
        }
        callsByExtension[key] = live.ids.isEmpty ? nil : live.ids
        var updates = event.state.calls
        for call in event.state.calls { legs[call.ids.primary, default: [:]][key] = call }
        if let ended = event.ended, !live.contains(ended.ids.primary) {
            legs[ended.ids.primary]?[key] = nil
            if let remaining = legs[ended.ids.primary], let other = remaining.keys.min(), let leg = remaining[other] {
                // Still live on another extension (a transfer, a conference): it moves there.
                updates.append(leg)
            } else {
                legs[ended.ids.primary] = nil
                updates.append(ended)
            }
        }
        var outputs: [Output] = updates.isEmpty ? notices : [.deliver(updates)] + notices
        outputs += problems(of: event.state, in: "ExtensionEvent")
        if !event.state.skipped.isEmpty { outputs += askForSnapshot(at: now) }
        return outputs
    }

    /// The distinct ids of an event's calls, in their order, and whether one is among them: by
    /// comparing a few, or, for a list long enough that that would be slow, through a set.
    struct LiveIDs {
        private(set) var ids: [String] = []
        private var set: Set<String>?
        private static let comparedUpTo = 16

        init(_ calls: [CallUpdate]) {
            if calls.count > Self.comparedUpTo {
                var set = Set<String>(minimumCapacity: calls.count)
                ids.reserveCapacity(calls.count)
                for call in calls where set.insert(call.ids.primary).inserted { ids.append(call.ids.primary) }
                self.set = set
            } else {
                ids.reserveCapacity(calls.count)
                for call in calls where !ids.contains(call.ids.primary) { ids.append(call.ids.primary) }
            }
        }

        func contains(_ id: String) -> Bool { set?.contains(id) ?? ids.contains(id) }
    }

    /// Skipped calls and mapping notes of one extension's state.
    private mutating func problems(of state: VoicenterEvents.ExtensionState, in event: String) -> [Output] {
        let feed = configuration.feed
        var outputs: [Output] = []
        for skipped in state.skipped {
            var fields: AuditFields = [.feed: feed, .result: "skipped"]
            if let call = skipped.call { fields[.call] = call }
            fields.extension = state.extensionID
            outputs.append(.report(.warning, "feed \(feed): \(event): \(skipped); skipped", fields))
        }
        for note in state.notes.sorted(by: { "\($0)" < "\($1)" }) {
            switch note {
            case .unknownCallStatus(let status):
                outputs += once(
                    "status:\(status)", .notice,
                    "feed \(feed): unknown callstatus '\(status)': such calls are kept as established (reported once)",
                    [.feed: feed, .reason: status])
            case .unknownDirection(let direction):
                outputs += once(
                    "direction:\(direction)", .notice,
                    "feed \(feed): unknown call direction '\(direction)': kept as unknown (reported once)",
                    [.feed: feed, .reason: direction])
            }
        }
        return outputs
    }

    /// `resync`, unless a snapshot is already awaited.
    private mutating func askForSnapshot(at now: MonotonicInstant) -> [Output] {
        guard isConnected, awaitingSnapshotSince == nil else { return [] }
        awaitingSnapshotSince = now
        resyncAsked = true
        return [Self.resyncEmit]
    }

    /// A record written once per `key` for the life of the feed; past 256 keys, none: a server
    /// that invents a new word per event must not fill the log.
    private mutating func once(_ key: String, _ severity: AuditSeverity, _ message: String, _ fields: AuditFields) -> [Output] {
        guard reportedOnce.count < 256, reportedOnce.insert(key).inserted else { return [] }
        return [.report(severity, message, fields)]
    }
}
