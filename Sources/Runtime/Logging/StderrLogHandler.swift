#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import MutewardenModel

/// Writes one sanitized, human-readable line per record to standard error (under systemd, the
/// journal picks it up), or to an injected writer.
///
/// See ``LogLineFormatter`` for the line and ``LogRecordSanitizer`` for what is masked.
public struct StderrLogHandler: LogHandler {
    /// Receives each line without its trailing newline.
    public typealias Writer = @Sendable (String) -> Void

    public var label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let sanitizer: LogRecordSanitizer
    private let writer: Writer
    private let clock: @Sendable () -> WallClockTime

    public init(
        label: String,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = nil,
        sanitizer: LogRecordSanitizer = LogRecordSanitizer(),
        writer: @escaping Writer = StderrLogHandler.standardError,
        clock: @escaping @Sendable () -> WallClockTime = WallClockTime.now
    ) {
        self.label = label
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.sanitizer = sanitizer
        self.writer = writer
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let record = sanitizer.sanitize(
            event, label: label, handlerMetadata: metadata, metadataProvider: metadataProvider)
        writer(LogLineFormatter.format(record, at: clock()))
    }

    /// Writes a line and its newline to file descriptor 2 in one `write(2)`.
    ///
    /// One call per line keeps lines whole when several processes share the descriptor (up to
    /// PIPE_BUF on a pipe); the lock keeps them whole between this process's threads even when
    /// the kernel takes a long line in parts.
    public static let standardError: Writer = { line in
        writeLine(line, to: STDERR_FILENO)
    }

    /// A factory for `LoggingSystem.bootstrap` or `Logger(label:factory:)`.
    public static func factory(
        logLevel: Logger.Level,
        sanitizer: LogRecordSanitizer = LogRecordSanitizer(),
        writer: @escaping Writer = StderrLogHandler.standardError
    ) -> @Sendable (String, Logger.MetadataProvider?) -> any LogHandler {
        { label, provider in
            StderrLogHandler(
                label: label, logLevel: logLevel, metadataProvider: provider, sanitizer: sanitizer,
                writer: writer)
        }
    }
}

private let standardErrorLock = Locked<Void>(())

func writeLine(_ line: String, to descriptor: Int32) {
    var text = line
    text.append("\n")
    text.withUTF8 { bytes in
        guard let base = bytes.baseAddress else { return }
        standardErrorLock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, base + offset, bytes.count - offset)
                if written < 0 {
                    // A log write that fails for good (a closed descriptor) must not take the
                    // daemon down or spin: drop the line.
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
