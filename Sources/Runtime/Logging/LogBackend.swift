#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// Where log records go, and the decision between the two.
///
/// The decision is a pure function of the configuration, the environment, standard error's
/// identity and whether the journal's socket answers, so that every branch can be unit-tested;
/// ``select(configured:)`` gathers those from the running process.
public enum LogBackend: String, Sendable, Hashable {
    /// One line per record on standard error (``StderrLogHandler``).
    case stderr
    /// Native journal fields (``JournalLogHandler``).
    case journal

    /// What the configuration asks for. It mirrors `logging.target` (MutewardenConfig's
    /// `LogTarget`), which this module cannot see.
    public enum Request: String, Sendable, Hashable, CaseIterable {
        case auto, stderr, journal
    }

    /// The outcome: a backend, why it was chosen, and a warning to log once after bootstrap
    /// when the choice is not what was asked for.
    public struct Selection: Sendable, Hashable {
        public var backend: LogBackend
        public var reason: String
        public var warning: String?

        public init(backend: LogBackend, reason: String, warning: String? = nil) {
            self.backend = backend
            self.reason = reason
            self.warning = warning
        }
    }

    /// The path `sd_journal_sendv` sends to; it is fixed in libsystemd.
    public static let journalSocketPath = "/run/systemd/journal/socket"

    /// - Parameters:
    ///   - configured: `logging.target`.
    ///   - environment: the process environment; only `JOURNAL_STREAM` is read. systemd sets it
    ///     to `device:inode` of the stream it connected to the service's stdout/stderr.
    ///   - standardError: `fstat(2)` of descriptor 2. `JOURNAL_STREAM` is inherited by children
    ///     whose stderr may go elsewhere, so it only counts when it names this very descriptor.
    ///   - probeJournal: 0 when the journal's socket accepts a connection, otherwise an errno;
    ///     called only when the journal is a candidate.
    public static func select(
        configured: Request,
        environment: [String: String],
        standardError: FileIdentity?,
        probeJournal: () -> Int32
    ) -> Selection {
        switch configured {
        case .stderr:
            return Selection(backend: .stderr, reason: "logging.target is stderr")
        case .auto:
            guard let stream = environment["JOURNAL_STREAM"] else {
                return Selection(backend: .stderr, reason: "logging.target is auto and JOURNAL_STREAM is not set")
            }
            guard let expected = FileIdentity(journalStream: stream), expected == standardError else {
                return Selection(
                    backend: .stderr,
                    reason: "logging.target is auto and JOURNAL_STREAM does not name this process's standard error")
            }
            let error = probeJournal()
            guard error == 0 else {
                // Standard error is the journal's stream, so the lines still reach the journal,
                // only without native fields.
                return Selection(
                    backend: .stderr,
                    reason: "logging.target is auto, standard error is a journal stream, but the journal socket is unreachable",
                    warning: "the journal socket \(journalSocketPath) is unreachable (\(JournalSink.errorName(error))): "
                        + "logging plain lines to standard error, which systemd forwards to the journal")
            }
            return Selection(backend: .journal, reason: "logging.target is auto and standard error is a journal stream")
        case .journal:
            let error = probeJournal()
            guard error == 0 else {
                return Selection(
                    backend: .stderr,
                    reason: "logging.target is journal but the journal socket is unreachable",
                    warning: "logging.target is journal but the journal socket \(journalSocketPath) is unreachable "
                        + "(\(JournalSink.errorName(error))): logging to standard error instead")
            }
            return Selection(backend: .journal, reason: "logging.target is journal")
        }
    }

    /// ``select(configured:environment:standardError:probeJournal:)`` on this process.
    public static func select(configured: Request) -> Selection {
        var environment: [String: String] = [:]
        if let stream = getenv("JOURNAL_STREAM") { environment["JOURNAL_STREAM"] = String(cString: stream) }
        return select(
            configured: configured, environment: environment,
            standardError: FileIdentity(descriptor: STDERR_FILENO),
            probeJournal: { probeJournalSocket() })
    }

    /// 0 when a datagram socket can connect to `path`, otherwise the errno.
    ///
    /// `sd_journal_sendv` cannot answer this: it returns success when the socket does not exist
    /// ("fail silently if the journal is not available"), so a journal that is not there would
    /// swallow the audit trail without a word.
    public static func probeJournalSocket(path: String = journalSocketPath) -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { return ENAMETOOLONG }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0 ? 0 : errno
    }

    /// A factory for `LoggingSystem.bootstrap` that writes to this backend.
    public func factory(
        logLevel: Logger.Level,
        sanitizer: LogRecordSanitizer = LogRecordSanitizer()
    ) -> @Sendable (String, Logger.MetadataProvider?) -> any LogHandler {
        switch self {
        case .stderr: StderrLogHandler.factory(logLevel: logLevel, sanitizer: sanitizer)
        case .journal: JournalLogHandler.factory(logLevel: logLevel, sanitizer: sanitizer)
        }
    }
}

/// A file's device and inode, as `fstat(2)` gives them and `JOURNAL_STREAM` writes them.
public struct FileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// Parses `JOURNAL_STREAM`: `device:inode`, both decimal.
    public init?(journalStream: String) {
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        self.init(device: device, inode: inode)
    }

    /// `fstat(2)` of `descriptor`, or nil when it is not open.
    public init?(descriptor: Int32) {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        self.init(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }
}
