import Logging
import MutewardenModel

/// Writes ``AuditRecord``s through swift-log, whatever backend the daemon set up.
///
/// The record becomes metadata: `audit` (the kind's stable raw value), one entry per
/// ``AuditField`` under its raw name, and `severity` with the severity's name. swift-log's levels
/// already match, but `severity` lets a backend or a SIEM rule read the audit severity without
/// knowing how levels map.
public struct AuditLogger: Sendable {
    public var logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func emit(
        _ record: AuditRecord, file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        // The handlers mask too; masking here as well keeps the audit trail clean even behind a
        // handler from outside this module. The record's identifiers stay whole in its text.
        let metadata = Self.metadata(for: record)
        logger.log(
            level: Self.level(for: record.severity),
            Logger.Message(stringLiteral: LogRecordSanitizer.maskMessage(record.message, keeping: metadata)),
            metadata: metadata,
            file: file, function: function, line: line)
    }

    /// The metadata ``emit(_:file:function:line:)`` attaches to `record`, PAN-masked but for the
    /// identifier fields (``AuditField/isIdentifier``).
    public static func metadata(for record: AuditRecord) -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        metadata.reserveCapacity(record.fields.count + 2)
        for (field, value) in record.fields {
            metadata[field.rawValue] = .string(LogRecordSanitizer.loggable(value, forKey: field.rawValue))
        }
        metadata[Self.kindKey] = .string(record.kind.rawValue)
        metadata[Self.severityKey] = .string(severityName(record.severity))
        return metadata
    }

    public static let kindKey = "audit"
    public static let severityKey = "severity"

    public static func level(for severity: AuditSeverity) -> Logger.Level {
        switch severity {
        case .critical: .critical
        case .error: .error
        case .warning: .warning
        case .notice: .notice
        case .info: .info
        case .debug: .debug
        }
    }

    public static func severityName(_ severity: AuditSeverity) -> String {
        switch severity {
        case .critical: "critical"
        case .error: "error"
        case .warning: "warning"
        case .notice: "notice"
        case .info: "info"
        case .debug: "debug"
        }
    }
}
