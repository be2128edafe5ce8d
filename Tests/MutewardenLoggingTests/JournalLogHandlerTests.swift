import Logging
import MutewardenModel
import Synchronization
import Testing

@testable import MutewardenLogging

#if canImport(Glibc)
import Glibc
#endif

/// Records what a ``JournalSink`` would have sent, decoded back from its iovecs.
final class SentRecords: Sendable {
    private let store = Store()
    let sink: JournalSink

    private final class Store: Sendable {
        let sent = Locked<[[JournalField]]>([])
        let fallback = Locked<[String]>([])
        let answer = Atomic<Int32>(0)
    }

    init() {
        let store = self.store
        sink = JournalSink(
            sender: { vectors, count in
                let fields = UnsafeBufferPointer(start: vectors, count: Int(count)).map { vector in
                    let bytes = UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len)
                    let text = String(decoding: bytes, as: UTF8.self)
                    let equals = text.firstIndex(of: "=")!
                    return JournalField(String(text[..<equals]), String(text[text.index(after: equals)...]))
                }
                let answer = store.answer.load(ordering: .relaxed)
                if answer == 0 { store.sent.withLock { $0.append(fields) } }
                return answer
            },
            fallback: { line in store.fallback.withLock { $0.append(line) } },
            clock: fixedClock)
    }

    var records: [[JournalField]] { store.sent.withLock { $0 } }
    var fallback: [String] { store.fallback.withLock { $0 } }

    /// What the sender returns from now on: 0, or a negative errno.
    func answer(_ value: Int32) { store.answer.store(value, ordering: .relaxed) }

    func logger(label: String = "mutewarden") -> Logger {
        let sink = self.sink
        return Logger(label: label) { JournalLogHandler(label: $0, logLevel: .trace, sink: sink) }
    }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

extension Array where Element == JournalField {
    subscript(_ name: String) -> String? { first { $0.name == name }?.value }
}

@Suite struct JournalLogHandlerTests {
    static func isValidJournalFieldName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first != "_", !("0"..."9").contains(first),
            name.utf8.count <= 64
        else { return false }
        return name.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    @Test func auditRecordFields() {
        let sent = SentRecords()
        let record = AuditRecord(
            .actionFailed, .critical, "could not mute",
            [.call: "c-1", .policy: "card", .latencyMs: "12.500", .idempotencyKey: "k", .extension: "3001"])
        AuditLogger(logger: sent.logger()).emit(record, file: "X/File.swift", function: "f()", line: 42)
        let fields = sent.records.first!
        #expect(
            fields.map(\.description) == [
                "MESSAGE=could not mute", "PRIORITY=2", "SYSLOG_IDENTIFIER=mutewarden", "CODE_FILE=X/File.swift",
                "CODE_LINE=42", "CODE_FUNC=f()", "MESSAGE_ID=06cfaf6031794b5aace42058159f4ee0",
                "MW_AUDIT=action.failed", "MW_CALL=c-1", "MW_EXTENSION=3001", "MW_IDEMPOTENCY_KEY=k",
                "MW_LATENCY_MS=12.500", "MW_POLICY=card", "MW_SEVERITY=critical",
            ])
        #expect(sent.fallback.isEmpty)
    }

    @Test func everyAuditFieldHasItsMWName() {
        var fields = AuditFields()
        for field in AuditField.allCases { fields[field] = field.rawValue }
        let sent = SentRecords()
        AuditLogger(logger: sent.logger()).emit(AuditRecord(.feedDown, .error, "m", fields))
        let names = Set(sent.records.first!.map(\.name))
        for field in AuditField.allCases {
            #expect(names.contains("MW_" + field.rawValue.uppercased()), "\(field)")
        }
        #expect(names.contains("MW_AUDIT"))
        #expect(names.allSatisfy(Self.isValidJournalFieldName))
    }

    @Test func everyKindHasADistinctMessageID() {
        let ids = AuditKind.allCases.map(JournalMessageID.of)
        #expect(Set(ids).count == ids.count)
        for kind in AuditKind.allCases {
            let sent = SentRecords()
            AuditLogger(logger: sent.logger()).emit(AuditRecord(kind, .info, "m"))
            #expect(sent.records.first?["MESSAGE_ID"] == JournalMessageID.of(kind))
        }
    }

    @Test func plainRecordsHaveNoMessageID() {
        let sent = SentRecords()
        sent.logger().info("hello", metadata: ["audit": "not.a.kind"])
        #expect(sent.records.first?["MESSAGE_ID"] == nil)
        #expect(sent.records.first?["MW_AUDIT"] == "not.a.kind")
    }

    @Test(arguments: [
        (Logger.Level.critical, "2"), (.error, "3"), (.warning, "4"), (.notice, "5"), (.info, "6"),
        (.debug, "7"), (.trace, "7"),
    ])
    func priority(level: Logger.Level, expected: String) {
        let sent = SentRecords()
        sent.logger().log(level: level, "x")
        #expect(sent.records.first?["PRIORITY"] == expected)
    }

    @Test(arguments: [
        ("latency_ms", "MW_LATENCY_MS"), ("error.message", "MW_ERROR_MESSAGE"), ("callId", "MW_CALLID"),
        ("x-gws-session", "MW_X_GWS_SESSION"), ("ünïcode key", "MW__N_CODE_KEY"), ("", "MW_"),
        ("9lives", "MW_9LIVES"), ("_private", "MW__PRIVATE"),
        (String(repeating: "a", count: 100), "MW_" + String(repeating: "A", count: 61)),
    ])
    func fieldNames(key: String, expected: String) {
        let name = JournalLogHandler.fieldName(forMetadataKey: key)
        #expect(name == expected)
        #expect(Self.isValidJournalFieldName(name))
    }

    @Test func keysThatReduceToOneNameKeepBothValues() {
        let sent = SentRecords()
        sent.logger().info("x", metadata: ["error-code": "a", "error_code": "b", "error.code": "c"])
        let fields = sent.records.first!
        #expect(fields["MW_ERROR_CODE"] == "a")
        #expect(fields["MW_ERROR_CODE_2"] == "c")
        #expect(fields["MW_ERROR_CODE_3"] == "b")
    }

    @Test func loggerLabelOnlyWhenItIsNotTheIdentifier() {
        let sent = SentRecords()
        sent.logger(label: "mutewarden").info("a")
        sent.logger(label: "mutewarden.http").info("b")
        #expect(sent.records[0]["MW_LOGGER"] == nil)
        #expect(sent.records[1]["MW_LOGGER"] == "mutewarden.http")
        #expect(sent.records[1]["SYSLOG_IDENTIFIER"] == "mutewarden")
    }

    @Test(arguments: LogHandlerTests.pans)
    func masksPANInEveryField(pan: String) {
        let sent = SentRecords()
        var logger = sent.logger(label: "label \(pan)")
        logger[metadataKey: "handler"] = "from handler \(pan)"
        logger.error(
            "customer read \(pan) aloud",
            error: CardDeclined(),
            metadata: [
                "value": "\(pan)", "key \(pan)": "x", "multi": "line\n\(pan)",
                "nested": ["inner": "\(pan)", "deeper": ["list": ["a", "\(pan)"]]],
                "convertible": .stringConvertible(CardHolder()),
                "password": "hunter2", "session": ["token": "t0k"],
            ])
        let fields = sent.records.first!
        for field in fields {
            #expect(!PANMasker.containsPAN(field.name), "\(field)")
            #expect(!PANMasker.containsPAN(field.value), "\(field)")
            #expect(!field.value.contains("hunter2") && !field.value.contains("t0k"), "\(field)")
            #expect(Self.isValidJournalFieldName(field.name), "\(field.name)")
        }
        #expect(fields["MW_PASSWORD"] == LogRecordSanitizer.redacted)
        #expect(fields["MW_SESSION"] == "{token=\(LogRecordSanitizer.redacted)}")
        #expect(fields["MW_MULTI"]?.hasPrefix("line\n") == true)
    }

    @Test func fallsBackToStderrAndSaysSoOncePerOutage() {
        let sent = SentRecords()
        let logger = sent.logger()
        sent.answer(-ECONNREFUSED)
        logger.notice("first")
        logger.notice("second")
        #expect(sent.records.isEmpty)
        #expect(sent.sink.isFallingBack)
        #expect(
            sent.fallback == [
                "2026-11-21T22:49:00.123Z WARN mutewarden: the journal refused a record (Connection refused): "
                    + "logging to standard error until it accepts again",
                "2026-11-21T22:49:00.123Z NOTICE mutewarden: first",
                "2026-11-21T22:49:00.123Z NOTICE mutewarden: second",
            ])
        sent.answer(0)
        logger.notice("third")
        logger.notice("fourth")
        #expect(sent.records.map { $0["MESSAGE"] } == ["third", "fourth"])
        #expect(sent.fallback.count == 4)
        #expect(sent.fallback.last?.contains("the journal accepts records again") == true)
        #expect(!sent.sink.isFallingBack)
    }
}

@Suite struct LogBackendTests {
    static let stderrIdentity = FileIdentity(device: 25, inode: 4242)

    static func select(
        _ request: LogBackend.Request, stream: String?, probe: Int32 = 0, probed: Counter? = nil
    ) -> LogBackend.Selection {
        LogBackend.select(
            configured: request, environment: stream.map { ["JOURNAL_STREAM": $0] } ?? [:],
            standardError: stderrIdentity,
            probeJournal: {
                probed?.increment()
                return probe
            })
    }

    @Test func stderrIsStderrWithoutAskingTheJournal() {
        let probed = Counter()
        let selection = Self.select(.stderr, stream: "25:4242", probed: probed)
        #expect(selection.backend == .stderr)
        #expect(selection.warning == nil)
        #expect(probed.value == 0)
    }

    @Test func autoPicksTheJournalOnlyWhenStderrIsTheJournalStream() {
        #expect(Self.select(.auto, stream: "25:4242").backend == .journal)
        #expect(Self.select(.auto, stream: "25:4242").warning == nil)
        #expect(Self.select(.auto, stream: nil).backend == .stderr)
        // Inherited by a child whose stderr was redirected: not ours.
        #expect(Self.select(.auto, stream: "25:4243").backend == .stderr)
        #expect(Self.select(.auto, stream: "26:4242").backend == .stderr)
        for garbage in ["", "25", "25:", ":4242", "a:b", "25:4242:1", "-1:4242"] {
            #expect(Self.select(.auto, stream: garbage).backend == .stderr, "\(garbage)")
        }
        #expect(Self.select(.auto, stream: nil).warning == nil)
    }

    @Test func autoWithAnUnreachableJournalWarns() {
        let selection = Self.select(.auto, stream: "25:4242", probe: ECONNREFUSED)
        #expect(selection.backend == .stderr)
        #expect(selection.warning?.contains("Connection refused") == true)
    }

    @Test func journalFallsBackToStderrWhenTheSocketIsUnreachable() {
        #expect(Self.select(.journal, stream: nil).backend == .journal)
        let selection = Self.select(.journal, stream: nil, probe: ENOENT)
        #expect(selection.backend == .stderr)
        #expect(
            selection.warning
                == "logging.target is journal but the journal socket /run/systemd/journal/socket is unreachable "
                + "(No such file or directory): logging to standard error instead")
    }

    @Test func journalStreamParsing() {
        #expect(FileIdentity(journalStream: "8:123456") == FileIdentity(device: 8, inode: 123_456))
        #expect(FileIdentity(journalStream: "18446744073709551615:1") != nil)
        #expect(FileIdentity(journalStream: "8:123456\n") == nil)
    }

    @Test func standardErrorIdentityMatchesFstat() throws {
        var status = stat()
        try #require(fstat(STDERR_FILENO, &status) == 0)
        let identity = FileIdentity(descriptor: STDERR_FILENO)
        #expect(identity == FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
        #expect(FileIdentity(descriptor: -1) == nil)
    }

    @Test func probeReportsAMissingSocket() {
        #expect(LogBackend.probeJournalSocket(path: "/nonexistent/mutewarden/socket") == ENOENT)
        #expect(LogBackend.probeJournalSocket(path: "/" + String(repeating: "x", count: 200)) == ENAMETOOLONG)
    }
}
