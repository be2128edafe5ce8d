import Logging
import MutewardenLogging
import MutewardenModel

/// One record as ``InMemoryLogHandler`` captured it: after sanitizing, exactly as a real backend
/// would have seen it.
public struct CapturedLogEntry: Sendable, Equatable {
    public var record: SanitizedLogRecord
    /// The line ``StderrLogHandler`` would have written for it.
    public var line: String

    public var level: Logger.Level { record.level }
    public var label: String { record.label }
    public var message: String { record.message }
    public var metadata: Logger.Metadata { record.metadata }

    public init(record: SanitizedLogRecord, line: String) {
        self.record = record
        self.line = line
    }
}

/// The shared, thread-safe storage behind ``InMemoryLogHandler``s. Loggers copy their handler,
/// so the entries live here, where every copy appends to the same list.
public final class InMemoryLogStore: Sendable {
    private let captured = Locked<[CapturedLogEntry]>([])

    public init() {}

    public var entries: [CapturedLogEntry] { captured.withLock { $0 } }

    public func lines() -> [String] { captured.withLock { $0.map(\.line) } }

    public func removeAll() { captured.withLock { $0.removeAll() } }

    func append(_ entry: CapturedLogEntry) { captured.withLock { $0.append(entry) } }
}

/// A log handler for tests anywhere in the project: captures records instead of writing them.
/// It lives in the test kit, as swift-log keeps its own in-memory handler with its tests: the
/// daemon never captures its log, and a handler that does has no place in what it ships.
///
/// It sanitizes and formats through the same code as ``StderrLogHandler``, so a test that finds
/// no PAN or secret here has shown that none reaches the real log either.
///
/// ```swift
/// let capture = InMemoryLogHandler()
/// let logger = capture.logger(label: "mutewarden")
/// logger.info("card 4111 1111 1111 1111")
/// #expect(capture.entries.first?.message == "card 4111 11** **** 1111")
/// ```
public struct InMemoryLogHandler: LogHandler {
    public var label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let store: InMemoryLogStore

    private let sanitizer: LogRecordSanitizer
    private let clock: @Sendable () -> WallClockTime

    /// - Parameter logLevel: `.trace` by default, so that tests see everything.
    public init(
        label: String = "test",
        logLevel: Logger.Level = .trace,
        metadataProvider: Logger.MetadataProvider? = nil,
        store: InMemoryLogStore = InMemoryLogStore(),
        sanitizer: LogRecordSanitizer = LogRecordSanitizer(),
        clock: @escaping @Sendable () -> WallClockTime = WallClockTime.now
    ) {
        self.label = label
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.store = store
        self.sanitizer = sanitizer
        self.clock = clock
    }

    public var entries: [CapturedLogEntry] { store.entries }

    public func lines() -> [String] { store.lines() }

    public func removeAll() { store.removeAll() }

    /// A logger that writes into this handler's store.
    public func logger(label: String) -> Logger {
        var handler = self
        handler.label = label
        return Logger(label: label) { _ in handler }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let record = sanitizer.sanitize(
            event, label: label, handlerMetadata: metadata, metadataProvider: metadataProvider)
        store.append(CapturedLogEntry(record: record, line: LogLineFormatter.format(record, at: clock())))
    }
}
