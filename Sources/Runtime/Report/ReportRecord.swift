import MutewardenLogging
import MutewardenModel

/// One audit record as the report reads it back from the journal or from an export: its kind,
/// its time, its priority and its fields. The message is not kept: every figure of the report
/// comes from the fields, which are the records' stable part.
public struct ReportRecord: Sendable, Hashable {
    /// Microseconds since the Unix epoch: when the daemon sent the record
    /// (`_SOURCE_REALTIME_TIMESTAMP`), or when journald received it when that is missing.
    public var time: Int64
    public var kind: AuditKind
    /// Syslog's priority (`PRIORITY`), 0–7; 6 when the record has none.
    public var priority: Int
    public var fields: AuditFields

    public init(time: Int64, kind: AuditKind, priority: Int = 6, fields: AuditFields = AuditFields()) {
        self.time = time
        self.kind = kind
        self.priority = priority
        self.fields = fields
    }

    public subscript(_ field: AuditField) -> String? { fields[field] }
}

/// The period a report covers, in microseconds since the Unix epoch: `since` included, `until`
/// excluded.
public struct ReportPeriod: Sendable, Hashable {
    public var since: Int64
    public var until: Int64

    public init(since: Int64, until: Int64) {
        self.since = since
        self.until = until
    }

    public func contains(_ time: Int64) -> Bool { time >= since && time < until }
}

/// Builds a ``ReportRecord`` from journal fields (`NAME`, value), as both readers see them.
///
/// A record is the daemon's when its `SYSLOG_IDENTIFIER` is the identifier asked for and its
/// `MESSAGE_ID` is one of ``AuditKind``'s ids (`MW_AUDIT` is the fallback for a copy that lost
/// its ids). Anything else is not an audit record of this daemon and is skipped.
struct RecordBuilder {
    var identifier: String
    private(set) var record = ReportRecord(time: 0, kind: .daemonStarted)
    private var sourceTime: Int64?
    private var receivedTime: Int64?
    private var messageID: String?
    private var auditKind: String?
    private var syslogIdentifier: String?

    init(identifier: String) {
        self.identifier = identifier
    }

    mutating func reset() {
        record = ReportRecord(time: 0, kind: .daemonStarted)
        sourceTime = nil
        receivedTime = nil
        messageID = nil
        auditKind = nil
        syslogIdentifier = nil
    }

    /// Takes one field; names the report does not use cost one comparison of their first bytes.
    mutating func add<Name: Collection<UInt8>>(name: Name, value: () -> String) {
        guard let first = name.first else { return }
        switch first {
        case UInt8(ascii: "M"):
            if name.starts(with: "MW_".utf8) {
                let rest = name.dropFirst(3)
                if let field = Self.fieldsByJournalName[Array(rest)] {
                    record.fields[field] = value()
                } else if rest.elementsEqual("AUDIT".utf8) {
                    auditKind = value()
                }
            } else if name.elementsEqual("MESSAGE_ID".utf8) {
                messageID = value()
            }
        case UInt8(ascii: "P"):
            if name.elementsEqual("PRIORITY".utf8), let priority = Int(value()), (0...7).contains(priority) {
                record.priority = priority
            }
        case UInt8(ascii: "S"):
            if name.elementsEqual("SYSLOG_IDENTIFIER".utf8) { syslogIdentifier = value() }
        case UInt8(ascii: "_"):
            if name.elementsEqual("_SOURCE_REALTIME_TIMESTAMP".utf8) {
                sourceTime = Int64(value())
            } else if name.elementsEqual("__REALTIME_TIMESTAMP".utf8) {
                receivedTime = Int64(value())
            }
        default: return
        }
    }

    /// Whether ``add(name:value:)`` uses a field of this name: the plain scan of an export line
    /// decodes only those values.
    static func isUsed<Name: Collection<UInt8>>(_ name: Name) -> Bool {
        guard let first = name.first else { return false }
        switch first {
        case UInt8(ascii: "M"): return name.starts(with: "MW_".utf8) || name.elementsEqual("MESSAGE_ID".utf8)
        case UInt8(ascii: "P"): return name.elementsEqual("PRIORITY".utf8)
        case UInt8(ascii: "S"): return name.elementsEqual("SYSLOG_IDENTIFIER".utf8)
        case UInt8(ascii: "_"):
            return name.elementsEqual("_SOURCE_REALTIME_TIMESTAMP".utf8) || name.elementsEqual("__REALTIME_TIMESTAMP".utf8)
        default: return false
        }
    }

    /// Sets the time journald received the record, for a reader that has it apart from the fields.
    mutating func setReceivedTime(_ time: Int64) { receivedTime = time }

    /// The record, or why it is not one of the daemon's audit records.
    func finish() -> Result<ReportRecord, Skip> {
        guard syslogIdentifier == identifier else { return .failure(.notOurs) }
        let kind = messageID.flatMap { Self.kindsByMessageID[$0] } ?? auditKind.flatMap(AuditKind.init(rawValue:))
        guard let kind else { return .failure(.notAudit) }
        guard let time = sourceTime ?? receivedTime, time >= 0 else { return .failure(.noTime) }
        var record = record
        record.kind = kind
        record.time = time
        return .success(record)
    }

    enum Skip: Error {
        /// Another program's record.
        case notOurs
        /// The daemon's, but an ordinary log line rather than an audit record.
        case notAudit
        /// No usable timestamp: counted as malformed.
        case noTime
    }

    static let kindsByMessageID: [String: AuditKind] = Dictionary(
        uniqueKeysWithValues: AuditKind.allCases.map { (JournalMessageID.of($0), $0) })

    /// `MW_` field names, without the prefix, as ``JournalLogHandler`` writes them.
    static let fieldsByJournalName: [[UInt8]: AuditField] = Dictionary(
        uniqueKeysWithValues: AuditField.allCases.map { field in
            (Array(JournalLogHandler.fieldName(forMetadataKey: field.rawValue).utf8.dropFirst(3)), field)
        })
}
