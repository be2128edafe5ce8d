#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd
import MutewardenLogging
import MutewardenModel

/// Reads the daemon's audit records from the journal through libsystemd's sd-journal API: the
/// system's journal, or the journal files of one directory (`--directory`, as `journalctl
/// --directory` takes it).
///
/// Matches select the records in journald's indexes rather than by reading every entry:
/// `SYSLOG_IDENTIFIER` is the daemon's identifier and `MESSAGE_ID` one of the audit kinds' ids
/// (sd-journal ORs matches on one field and ANDs the fields). The read starts at `since` by a
/// seek on the realtime clock and stops at the first entry at or after `until`.
public struct JournalReader: Sendable {
    public var directory: String?
    public var identifier: String

    public init(directory: String? = nil, identifier: String = "mutewarden") {
        self.directory = directory
        self.identifier = identifier
    }

    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(String)
        case cannotRead(String)

        public var description: String {
            switch self {
            case .cannotOpen(let detail): "cannot open the journal: \(detail)"
            case .cannotRead(let detail): "cannot read the journal: \(detail)"
            }
        }
    }

    public func read(into aggregator: inout ReportAggregator, period: ReportPeriod) throws(Failure) {
        var journal: OpaquePointer?
        let opened: Int32
        if let directory {
            opened = sd_journal_open_directory(&journal, directory, 0)
        } else {
            opened = sd_journal_open(&journal, 0)
        }
        guard opened >= 0, let journal else { throw .cannotOpen((directory.map { $0 + ": " } ?? "") + Self.errorText(opened)) }
        defer { sd_journal_close(journal) }

        var matches = ["SYSLOG_IDENTIFIER=" + identifier]
        matches += AuditKind.allCases.map { "MESSAGE_ID=" + JournalMessageID.of($0) }
        for match in matches {
            let added = match.withCString { sd_journal_add_match(journal, $0, 0) }
            guard added >= 0 else { throw .cannotOpen("match \(match): \(Self.errorText(added))") }
        }
        let sought = sd_journal_seek_realtime_usec(journal, UInt64(max(0, period.since)))
        guard sought >= 0 else { throw .cannotRead("seek: \(Self.errorText(sought))") }

        var builder = RecordBuilder(identifier: identifier)
        while true {
            let next = sd_journal_next(journal)
            if next == 0 { break }
            guard next > 0 else { throw .cannotRead(Self.errorText(next)) }
            var received: UInt64 = 0
            guard sd_journal_get_realtime_usec(journal, &received) >= 0, received <= UInt64(Int64.max) else {
                aggregator.source.malformed += 1
                continue
            }
            if Int64(received) >= period.until { break }
            builder.reset()
            builder.setReceivedTime(Int64(received))
            sd_journal_restart_data(journal)
            var data: UnsafeRawPointer?
            var length = 0
            while sd_journal_enumerate_data(journal, &data, &length) > 0 {
                guard let data else { continue }
                let field = UnsafeBufferPointer(start: data.assumingMemoryBound(to: UInt8.self), count: length)
                guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { continue }
                // The name is compared where it lies: a String per field was half of the read's cost.
                builder.add(name: UnsafeBufferPointer(rebasing: field[..<equals])) {
                    String(decoding: UnsafeBufferPointer(rebasing: field[(equals + 1)...]), as: UTF8.self)
                }
            }
            switch builder.finish() {
            case .success(let record):
                // The source time can be a little earlier than the receive time the seek used.
                if period.contains(record.time) {
                    aggregator.add(record)
                } else {
                    aggregator.source.outsidePeriod += 1
                }
            case .failure(.noTime): aggregator.source.malformed += 1
            case .failure: aggregator.source.skipped += 1
            }
        }
    }

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(-code) else { return "error \(code)" }
        return String(cString: text)
    }
}
