/// The kinds of audit record. Their raw values are stable: operators, SIEM rules and the journal
/// catalog match on them.
public enum AuditKind: String, Sendable, Hashable, CaseIterable {
    case windowOpened = "window.opened"
    case windowClosed = "window.closed"
    case actionAttempt = "action.attempt"
    case actionRetry = "action.retry"
    case actionConfirmed = "action.confirmed"
    /// A PCI control failure: the action was not confirmed by its deadline.
    case actionFailed = "action.failed"
    /// The action stopped without failing the control: the call ended or the window closed first.
    case actionAbandoned = "action.abandoned"
    /// An action that failed its control was confirmed at last: the record gives how long the
    /// call went unprotected.
    case actionRecovered = "action.recovered"
    /// The platform reported a state that contradicts an open window (recording resumed, agent
    /// unmuted): the action is applied again.
    case windowDrift = "window.drift"
    /// After a reconnection, the platform shows a call paused or muted that no open window
    /// explains: a window opened in the moments before a crash, or someone else's action.
    case windowOrphaned = "window.orphaned"
    /// What a dry-run policy would have sent.
    case dryRun = "action.dry-run"
    case callExpired = "call.expired"
    case trackerFull = "tracker.full"
    case feedUp = "feed.up"
    case feedDown = "feed.down"
    case configurationLoaded = "config.loaded"
    case configurationRejected = "config.rejected"
    case stateRestored = "state.restored"
    case daemonStarted = "daemon.started"
    case daemonStopping = "daemon.stopping"
}

/// Severity, with syslog's names: the journal and the stderr handler map them the same way.
public enum AuditSeverity: Int, Sendable, Hashable, Comparable {
    case critical = 2, error = 3, warning = 4, notice = 5, info = 6, debug = 7

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue > rhs.rawValue }
}

/// Field names shared by every audit record. Stable: the journald backend upper-cases them into
/// `MW_*` fields.
public enum AuditField: String, Sendable, Hashable, CaseIterable {
    case policy, feed, call, `extension`, target, action, attempt
    case latencyMs = "latency_ms"
    case result
    case idempotencyKey = "idempotency_key"
    case window, reason, error
    case errorCode = "error_code"
    case mode, attributes
    /// The network address of a peer that called the daemon (the callback ingress): who was
    /// refused. Never a credential.
    case peer
    /// `config.loaded`: the SHA-256 of the configuration's files, as `sha256:<hex>` (what
    /// `cat` of the files in merge order piped to `sha256sum` prints), so a report can tie the
    /// configuration in force to a change ticket.
    case digest
    /// `feed.down`: the calls the feed had live when it went down, which may go unseen until it
    /// is back; `feed.up` after a resync: the calls the platform listed.
    case calls

    /// Whether the field holds only an identifier that a platform or the daemon generated: the
    /// call id, the window's sequence number, the idempotency key (a hash printed as a UUID).
    ///
    /// The log handlers leave such a value unmasked when it is one identifier, not free text, so
    /// that the audit trail can be searched by it: platforms' call ids are long digit runs
    /// (Voicenter's are 18–19 digits) and about one in ten passes the Luhn check. The same digits
    /// in any other field, the message included, are still masked. `extension` is not one: an
    /// agent's extension is typed by people and short enough never to need it.
    public var isIdentifier: Bool {
        switch self {
        case .call, .window, .idempotencyKey, .digest: true
        default: false
        }
    }
}

/// The fields of one audit record: one stored property per ``AuditField``, so that building a
/// record on the engine's hot path costs stores, not dictionary hashing. An empty string is the
/// same as no value.
public struct AuditFields: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public var policy: String?
    public var feed: String?
    public var call: String?
    public var `extension`: String?
    public var target: String?
    public var action: String?
    public var attempt: String?
    public var latencyMs: String?
    public var result: String?
    public var idempotencyKey: String?
    public var window: String?
    public var reason: String?
    public var error: String?
    public var errorCode: String?
    public var mode: String?
    public var attributes: String?
    public var peer: String?
    public var digest: String?
    public var calls: String?

    public init() {}

    public init(dictionaryLiteral elements: (AuditField, String)...) {
        for (field, value) in elements { self[field] = value }
    }

    public subscript(_ field: AuditField) -> String? {
        get {
            switch field {
            case .policy: policy
            case .feed: feed
            case .call: call
            case .`extension`: `extension`
            case .target: target
            case .action: action
            case .attempt: attempt
            case .latencyMs: latencyMs
            case .result: result
            case .idempotencyKey: idempotencyKey
            case .window: window
            case .reason: reason
            case .error: error
            case .errorCode: errorCode
            case .mode: mode
            case .attributes: attributes
            case .peer: peer
            case .digest: digest
            case .calls: calls
            }
        }
        set {
            let value = newValue?.isEmpty == true ? nil : newValue
            switch field {
            case .policy: policy = value
            case .feed: feed = value
            case .call: call = value
            case .`extension`: `extension` = value
            case .target: target = value
            case .action: action = value
            case .attempt: attempt = value
            case .latencyMs: latencyMs = value
            case .result: result = value
            case .idempotencyKey: idempotencyKey = value
            case .window: window = value
            case .reason: reason = value
            case .error: error = value
            case .errorCode: errorCode = value
            case .mode: mode = value
            case .attributes: attributes = value
            case .peer: peer = value
            case .digest: digest = value
            case .calls: calls = value
            }
        }
    }

    /// These fields, with every value that `other` sets replacing this one's.
    public func overlaid(with other: AuditFields) -> AuditFields {
        var result = self
        if let value = other.policy { result.policy = value }
        if let value = other.feed { result.feed = value }
        if let value = other.call { result.call = value }
        if let value = other.`extension` { result.`extension` = value }
        if let value = other.target { result.target = value }
        if let value = other.action { result.action = value }
        if let value = other.attempt { result.attempt = value }
        if let value = other.latencyMs { result.latencyMs = value }
        if let value = other.result { result.result = value }
        if let value = other.idempotencyKey { result.idempotencyKey = value }
        if let value = other.window { result.window = value }
        if let value = other.reason { result.reason = value }
        if let value = other.error { result.error = value }
        if let value = other.errorCode { result.errorCode = value }
        if let value = other.mode { result.mode = value }
        if let value = other.attributes { result.attributes = value }
        if let value = other.peer { result.peer = value }
        if let value = other.digest { result.digest = value }
        if let value = other.calls { result.calls = value }
        return result
    }

    public var isEmpty: Bool { AuditField.allCases.allSatisfy { self[$0] == nil } }
    public var count: Int { AuditField.allCases.reduce(0) { $0 + (self[$1] == nil ? 0 : 1) } }

    /// The fields that have a value, in ``AuditField`` declaration order.
    public func makeIterator() -> AnyIterator<(key: AuditField, value: String)> {
        var index = 0
        let fields = self
        return AnyIterator {
            while index < AuditField.allCases.count {
                let field = AuditField.allCases[index]
                index += 1
                if let value = fields[field] { return (field, value) }
            }
            return nil
        }
    }
}

/// One audit record: who/what, event type, outcome, origin and the call, answering PCI DSS 10.2.2.
/// The time is added by the log handler.
public struct AuditRecord: Sendable, Hashable {
    public var kind: AuditKind
    public var severity: AuditSeverity
    public var message: String
    public var fields: AuditFields

    public init(_ kind: AuditKind, _ severity: AuditSeverity, _ message: String, _ fields: AuditFields = AuditFields()) {
        self.kind = kind
        self.severity = severity
        self.message = message
        self.fields = fields
    }

    public subscript(_ field: AuditField) -> String? { fields[field] }
}
