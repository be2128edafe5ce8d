#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd
import Logging
import MutewardenModel
import Synchronization

/// One journal field as ``JournalLogHandler`` sends it.
public struct JournalField: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=\(value)" }
}

/// A swift-log backend that sends each record to systemd-journald as structured fields through
/// `sd_journal_sendv`, so that `journalctl MW_CALL=…` or `MESSAGE_ID=…` finds records without
/// parsing text.
///
/// Every record goes through ``LogRecordSanitizer`` first, exactly as with ``StderrLogHandler``:
/// the message, every field name and every field value are PAN-masked and secret-bearing values
/// redacted before any byte leaves the process. Fields:
///
/// - `MESSAGE`, `PRIORITY` (syslog's numbers), `SYSLOG_IDENTIFIER=mutewarden`, `CODE_FILE`,
///   `CODE_LINE`, `CODE_FUNC`;
/// - `MESSAGE_ID`, from ``JournalMessageID``, when the record is an audit record;
/// - `MW_<KEY>` for each metadata entry: audit fields become `MW_AUDIT`, `MW_CALL`,
///   `MW_LATENCY_MS` and so on (see ``fieldName(forMetadataKey:)``);
/// - `MW_LOGGER` with the logger's label when it is not `mutewarden`.
///
/// Values may hold line breaks: `sd_journal_sendv` switches such a field to the protocol's
/// binary form, so nothing in a value can forge another field or record.
public struct JournalLogHandler: LogHandler {
    public var label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let sanitizer: LogRecordSanitizer
    private let sink: JournalSink

    public init(
        label: String,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = nil,
        sanitizer: LogRecordSanitizer = LogRecordSanitizer(),
        sink: JournalSink = .shared
    ) {
        self.label = label
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.sanitizer = sanitizer
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let record = sanitizer.sanitize(
            event, label: label, handlerMetadata: metadata, metadataProvider: metadataProvider)
        sink.write(record)
    }

    /// A factory for `LoggingSystem.bootstrap` or `Logger(label:factory:)`.
    public static func factory(
        logLevel: Logger.Level,
        sanitizer: LogRecordSanitizer = LogRecordSanitizer(),
        sink: JournalSink = .shared
    ) -> @Sendable (String, Logger.MetadataProvider?) -> any LogHandler {
        { label, provider in
            JournalLogHandler(
                label: label, logLevel: logLevel, metadataProvider: provider, sanitizer: sanitizer, sink: sink)
        }
    }

    // MARK: - Fields

    public static let syslogIdentifier = "mutewarden"

    /// Syslog's numeric priority; swift-log's `trace` has no syslog level below `debug`.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// The fields sent for `record`, in the order they are sent.
    public static func fields(for record: SanitizedLogRecord) -> [JournalField] {
        var fields: [JournalField] = []
        forEachField(of: record) { name, value in fields.append(JournalField(name, value)) }
        return fields
    }

    /// `MW_` and `key` upper-cased, with every character journald does not allow in a field name
    /// (anything but A–Z, 0–9 and `_`) replaced by `_`, cut to journald's 64 characters. The
    /// prefix keeps the name from starting with `_` (reserved for trusted fields) or a digit.
    public static func fieldName(forMetadataKey key: String) -> String {
        var name = "MW_"
        name.reserveCapacity(min(maximumFieldNameLength, key.utf8.count + 3))
        for scalar in key.unicodeScalars {
            if name.utf8.count >= maximumFieldNameLength { break }
            switch scalar {
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            default: name.append("_")
            }
        }
        return name
    }

    public static let maximumFieldNameLength = 64

    /// Calls `body` with each field of `record`. One traversal serves both the encoder on the
    /// hot path and ``fields(for:)``, so that what tests inspect is what is sent.
    static func forEachField(of record: SanitizedLogRecord, _ body: (String, String) -> Void) {
        body("MESSAGE", record.message)
        body("PRIORITY", priorityText[priority(record.level)])
        body("SYSLOG_IDENTIFIER", syslogIdentifier)
        body("CODE_FILE", record.file)
        body("CODE_LINE", String(record.line))
        body("CODE_FUNC", record.function)
        if case .string(let kind)? = record.metadata[AuditLogger.kindKey], let audit = AuditKind(rawValue: kind) {
            body("MESSAGE_ID", JournalMessageID.of(audit))
        }
        var used: [String] = []
        used.reserveCapacity(record.metadata.count + 1)
        func emit(_ name: String, _ value: String) {
            var unique = name
            var suffix = 2
            // Two keys can reduce to one name (`error-code`, `error_code`). Journald would keep
            // both values under one name and lose which key each came from, so the later key in
            // sorted order gets a numbered name instead.
            while used.contains(unique) {
                let tail = "_\(suffix)"
                unique = String(name.utf8.prefix(maximumFieldNameLength - tail.utf8.count))! + tail
                suffix += 1
            }
            used.append(unique)
            body(unique, value)
        }
        if record.label != syslogIdentifier {
            emit("MW_LOGGER", record.label)
        }
        for key in record.metadata.keys.sorted() {
            emit(fieldName(forMetadataKey: key), LogLineFormatter.render(record.metadata[key]!))
        }
    }

    private static let priorityText = (0...7).map { String($0) }
}

/// Where ``JournalLogHandler``s send: the journal, or standard error while the journal refuses.
///
/// Shared by every handler of a process (loggers copy their handler), because the fallback state
/// must be one: a journal that refuses records is announced once, not once per logger.
public final class JournalSink: Sendable {
    /// Sends one record's fields; returns 0 or a negative errno, as `sd_journal_sendv` does.
    public typealias Sender = @Sendable (UnsafePointer<iovec>, Int32) -> Int32

    /// The process's sink on the real journal.
    public static let shared = JournalSink()

    /// `sd_journal_sendv`: one datagram on the journal's socket per record, or a memfd for large
    /// ones. It blocks while journald's socket buffer is full, which slows the caller rather than
    /// losing audit records.
    public static let journalSender: Sender = { fields, count in sd_journal_sendv(fields, count) }

    private let sender: Sender
    private let fallback: StderrLogHandler.Writer
    private let clock: @Sendable () -> WallClockTime
    private let failing = Atomic<Bool>(false)

    public init(
        sender: @escaping Sender = JournalSink.journalSender,
        fallback: @escaping StderrLogHandler.Writer = StderrLogHandler.standardError,
        clock: @escaping @Sendable () -> WallClockTime = WallClockTime.now
    ) {
        self.sender = sender
        self.fallback = fallback
        self.clock = clock
    }

    /// Whether the last send failed, so records are going to standard error.
    public var isFallingBack: Bool { failing.load(ordering: .relaxed) }

    public func write(_ record: SanitizedLogRecord) {
        let result = Self.encode(record) { fields, count in sender(fields, count) }
        if result >= 0 {
            if failing.exchange(false, ordering: .relaxed) {
                announce(.notice, "the journal accepts records again: logging to the journal")
            }
            return
        }
        if !failing.exchange(true, ordering: .relaxed) {
            announce(
                .warning,
                "the journal refused a record (\(Self.errorName(-result))): logging to standard error until it accepts again")
        }
        fallback(LogLineFormatter.format(record, at: clock()))
    }

    /// Lays `record`'s fields out as `NAME=value` in one buffer and calls `body` with an iovec per
    /// field; returns what `body` returns. One buffer keeps a record to two allocations however
    /// many fields it has.
    static func encode(_ record: SanitizedLogRecord, _ body: (UnsafePointer<iovec>, Int32) -> Int32) -> Int32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        var ends: [Int] = []
        ends.reserveCapacity(24)
        JournalLogHandler.forEachField(of: record) { name, value in
            bytes.append(contentsOf: name.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
            ends.append(bytes.count)
        }
        return bytes.withUnsafeMutableBytes { buffer in
            let base = buffer.baseAddress!
            return withUnsafeTemporaryAllocation(of: iovec.self, capacity: ends.count) { vectors in
                var start = 0
                for (index, end) in ends.enumerated() {
                    vectors[index] = iovec(iov_base: base + start, iov_len: end - start)
                    start = end
                }
                return body(UnsafePointer(vectors.baseAddress!), Int32(ends.count))
            }
        }
    }

    private func announce(_ level: Logger.Level, _ message: String) {
        let record = SanitizedLogRecord(
            level: level, label: JournalLogHandler.syslogIdentifier, message: message, metadata: [:],
            source: "MutewardenLogging", file: #fileID, function: #function, line: #line)
        fallback(LogLineFormatter.format(record, at: clock()))
    }

    static func errorName(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
