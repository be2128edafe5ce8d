import Logging
import MutewardenModel
import MutewardenTesting
import Testing

@testable import MutewardenLogging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct LogHandlerTests {
    static let pans = ["4111111111111111", "4111 1111 1111 1111", "378282246310005", "5555-5555-5555-4444"]

    @Test func writesOneFormattedLine() {
        let (logger, collector) = stderrLogger()
        logger.critical(
            "action failed",
            metadata: ["call": "c-1", "reason": "deadline passed", "attempt": "3", "note": "say \"hi\""])
        #expect(
            collector.lines == [
                "2026-11-21T22:49:00.123Z CRIT mutewarden: action failed attempt=3 call=c-1"
                    + " note=\"say \\\"hi\\\"\" reason=\"deadline passed\""
            ])
    }

    @Test(arguments: [
        (Logger.Level.critical, "CRIT"), (.error, "ERR"), (.warning, "WARN"), (.notice, "NOTICE"),
        (.info, "INFO"), (.debug, "DEBUG"), (.trace, "TRACE"),
    ])
    func levelNames(level: Logger.Level, name: String) {
        let (logger, collector) = stderrLogger()
        logger.log(level: level, "x")
        #expect(collector.lines == ["2026-11-21T22:49:00.123Z \(name) mutewarden: x"])
    }

    @Test func respectsLogLevel() {
        let (logger, collector) = stderrLogger(level: .notice)
        logger.info("dropped")
        logger.notice("kept")
        #expect(collector.lines.count == 1)
    }

    @Test(arguments: pans)
    func masksPANEverywhere(pan: String) {
        let (stderr, collector) = stderrLogger()
        let (memory, capture) = capturingLogger()
        for var logger in [stderr, memory] {
            logger[metadataKey: "handler"] = "from handler \(pan)"
            logger.error(
                "customer read \(pan) aloud",
                error: CardDeclined(),
                metadata: [
                    "value": "\(pan)",
                    "key \(pan)": "x",
                    "nested": ["inner": "\(pan)", "deeper": ["list": ["a", "\(pan)"]]],
                    "array": ["\(pan)", ["k": "\(pan)"]],
                    "convertible": .stringConvertible(CardHolder()),
                ],
                source: "src \(pan)")
        }
        let lines = collector.lines + capture.lines()
        #expect(lines.count == 2)
        #expect(collector.lines == capture.lines(), "both handlers share one sanitizer and formatter")
        for line in lines {
            #expect(!PANMasker.containsPAN(line), "\(line)")
            #expect(!line.contains(pan))
            #expect(!line.contains("4111111111111111"))
            #expect(!line.contains("5555555555554444"))
        }
        let entry = try! #require(capture.entries.first)
        #expect(!PANMasker.containsPAN(entry.message))
        #expect(!PANMasker.containsPAN(entry.record.source))
        #expect(!Self.anyPAN(in: entry.metadata))
        #expect(entry.metadata["convertible"] == .string("holder of 5555 55** **** 4444"))
        #expect(entry.metadata["error.message"] == .string("card 411111******1111 declined"))
    }

    @Test func masksPANInLabelAndProviderMetadata() {
        let provider = Logger.MetadataProvider { ["provided": "4111111111111111"] }
        let capture = InMemoryLogHandler(label: "4111111111111111", metadataProvider: provider)
        let logger = Logger(label: "ignored") { _ in capture }
        logger.info("hello")
        #expect(capture.entries.first?.label == "411111******1111")
        #expect(capture.entries.first?.metadata["provided"] == .string("411111******1111"))
    }

    static let secretKeys = [
        "password", "db_password", "Secret", "client_secret", "token", "X-Auth-Token", "Authorization",
        "proxy-authorization", "cookie", "Set-Cookie", "api_key", "API-Key", "apiKey", "private_key",
    ]

    @Test(arguments: secretKeys)
    func redactsSecretBearingKeys(key: String) {
        let (memory, capture) = capturingLogger()
        var logger = memory
        logger[metadataKey: key] = "hunter2"
        logger.info("connecting", metadata: ["nested": [key: "hunter3"], key: ["deep": "hunter4"]])
        let entry = try! #require(capture.entries.first)
        #expect(entry.metadata[key] == .string("<redacted>"))
        #expect(entry.metadata["nested"] == .dictionary([key: .string("<redacted>")]))
        let line = capture.lines()[0]
        #expect(!line.contains("hunter"))
    }

    @Test(arguments: AuditField.allCases.map(\.rawValue) + ["audit", "severity", "call", "feed"])
    func keepsOrdinaryKeys(key: String) {
        #expect(!LogRecordSanitizer().isSecretKey(key))
    }

    @Test func additionalSecretMarkers() {
        let sanitizer = LogRecordSanitizer(additionalSecretKeyMarkers: ["X-Genesys-Session"])
        #expect(sanitizer.isSecretKey("x_genesys_session_id"))
        #expect(!LogRecordSanitizer().isSecretKey("x_genesys_session_id"))
    }

    @Test func oneLinePerRecordWhateverTheContent() {
        let (logger, collector) = stderrLogger()
        logger.warning(
            "first\nsecond\r\nthird",
            metadata: ["multi": "a\nb", "key\nbreak": "v", "sep": "x\u{2028}y", "tab": "a\tb", "empty": ""])
        let lines = collector.lines
        #expect(lines.count == 1)
        let line = lines[0]
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{2028}"))
        #expect(
            line
                == "2026-11-21T22:49:00.123Z WARN mutewarden: first\\nsecond\\r\\nthird empty=\"\""
                + " \"key\\nbreak\"=v multi=\"a\\nb\" sep=\"x\\u{2028}y\" tab=\"a\\tb\"")
    }

    /// The byte-level fast paths (ASCII keys, ASCII text) decide as the Unicode rules do.
    @Test func fastPathsAgreeWithTheUnicodeRules() {
        // Unicode lowercasing turns KELVIN SIGN into an ASCII `k`: still a secret key.
        #expect(LogRecordSanitizer().isSecretKey("TO\u{212A}EN"))
        #expect(LogRecordSanitizer().isSecretKey("X_AUTH-TOKEN"))
        #expect(!LogRecordSanitizer().isSecretKey("idempotency_key"))
        let (logger, collector) = stderrLogger()
        logger.info("é\u{85}", metadata: ["café": "naïve", "nel": "a\u{85}b", "ls": "\u{2029}"])
        #expect(
            collector.lines == [
                "2026-11-21T22:49:00.123Z INFO mutewarden: é\\u{85} café=naïve ls=\"\\u{2029}\" nel=\"a\\u{85}b\""
            ])
    }

    @Test func quotesKeysThatWouldBeAmbiguous() {
        let (logger, collector) = stderrLogger()
        logger.info("k", metadata: ["a=b": "c", "with space": "v"])
        #expect(collector.lines == ["2026-11-21T22:49:00.123Z INFO mutewarden: k \"a=b\"=c \"with space\"=v"])
    }

    @Test func factoryBuildsConfiguredHandlers() {
        let collector = LineCollector()
        let factory = StderrLogHandler.factory(logLevel: .warning, writer: collector.writer)
        let logger = Logger(label: "mutewarden.engine") { factory($0, nil) }
        #expect(logger.logLevel == .warning)
        logger.info("dropped")
        logger.warning("card 4111111111111111")
        #expect(collector.lines.count == 1)
        #expect(collector.lines.first?.hasSuffix(" WARN mutewarden.engine: card 411111******1111") == true)
    }

    @Test func rendersNestedMetadata() {
        let (logger, collector) = stderrLogger()
        logger.info("n", metadata: ["d": ["b": "2", "a": "x y"], "l": ["1", "2,3"]])
        #expect(
            collector.lines == [
                "2026-11-21T22:49:00.123Z INFO mutewarden: n d=\"{a=\\\"x y\\\",b=2}\" l=\"[1,\\\"2,3\\\"]\""
            ])
    }

    /// swift-log's value-semantics requirement for handlers.
    @Test func metadataAndLevelAreValues() {
        let (first, _) = stderrLogger()
        var logger1 = first
        logger1.logLevel = .debug
        logger1[metadataKey: "only-on"] = "first"
        var logger2 = logger1
        logger2.logLevel = .error
        logger2[metadataKey: "only-on"] = "second"
        #expect(logger1.logLevel == .debug)
        #expect(logger2.logLevel == .error)
        #expect(logger1[metadataKey: "only-on"] == "first")
        #expect(logger2[metadataKey: "only-on"] == "second")
    }

    @Test func inMemoryStoreIsSharedAndClearable() {
        let (logger, capture) = capturingLogger()
        var copy = logger
        copy[metadataKey: "k"] = "v"
        logger.info("one")
        copy.info("two")
        #expect(capture.entries.map(\.message) == ["one", "two"])
        #expect(capture.entries.map(\.level) == [.info, .info])
        #expect(capture.entries[1].metadata == ["k": "v"])
        capture.removeAll()
        #expect(capture.entries.isEmpty)
    }

    @Test func standardErrorWriterWritesWholeLines() async throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer { close(descriptors[0]) }
        let writeEnd = descriptors[1]
        let payload = String(repeating: "x", count: 200)
        // Stays well under the pipe's buffer so that no reader is needed while writing.
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<20 { writeLine("\(task)-\(index) \(payload)", to: writeEnd) }
                }
            }
        }
        close(writeEnd)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptors[0], &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 161)
        #expect(lines.last == "")
        #expect(lines.dropLast().allSatisfy { $0.hasSuffix(" " + payload) && $0.count < 210 })
    }

    static func anyPAN(in metadata: Logger.Metadata) -> Bool {
        metadata.contains { key, value in PANMasker.containsPAN(key) || anyPAN(in: value) }
    }

    static func anyPAN(in value: Logger.MetadataValue) -> Bool {
        switch value {
        case .string(let text): PANMasker.containsPAN(text)
        case .stringConvertible(let convertible): PANMasker.containsPAN(convertible.description)
        case .dictionary(let nested): anyPAN(in: nested)
        case .array(let elements): elements.contains { anyPAN(in: $0) }
        }
    }
}

@Suite struct WallClockTimeTests {
    @Test(arguments: [
        (WallClockTime(secondsSinceEpoch: 0), "1970-01-01T00:00:00.000Z"),
        (WallClockTime(secondsSinceEpoch: 1_795_301_340, nanoseconds: 123_456_789), "2026-11-21T22:49:00.123Z"),
        (WallClockTime(secondsSinceEpoch: 951_868_799, nanoseconds: 999_999_999), "2000-02-29T23:59:59.999Z"),
        (WallClockTime(secondsSinceEpoch: 4_107_542_400), "2100-03-01T00:00:00.000Z"),
        (WallClockTime(secondsSinceEpoch: -1), "1969-12-31T23:59:59.000Z"),
    ])
    func iso8601(time: WallClockTime, expected: String) {
        #expect(time.iso8601 == expected)
    }

    @Test func nowIsRecent() {
        #expect(WallClockTime.now().secondsSinceEpoch > 1_700_000_000)
    }
}
