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
}

/// One audit record: who/what, event type, outcome, origin and the call, answering PCI DSS 10.2.2.
/// The time is added by the log handler.
public struct AuditRecord: Sendable, Hashable {
    public var kind: AuditKind
    public var severity: AuditSeverity
    public var message: String
    public var fields: [AuditField: String]

    public init(_ kind: AuditKind, _ severity: AuditSeverity, _ message: String, _ fields: [AuditField: String] = [:]) {
        self.kind = kind
        self.severity = severity
        self.message = message
        self.fields = fields
    }

    public subscript(_ field: AuditField) -> String? { fields[field] }
}
