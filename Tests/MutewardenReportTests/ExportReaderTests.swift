import MutewardenLogging
import MutewardenModel
import MutewardenReport
import Testing

/// `journalctl -o json` lines, as journalctl writes them.
enum ExportLines {
    static func line(_ kind: AuditKind, at ms: Int64, priority: Int = 6, _ fields: [String: String], identifier: String = "mutewarden")
        -> String
    {
        var members = [
            "\"__CURSOR\":\"s=1;i=\(ms)\"", "\"__REALTIME_TIMESTAMP\":\"\(Script.base + ms * 1000 + 250)\"",
            "\"_SOURCE_REALTIME_TIMESTAMP\":\"\(Script.base + ms * 1000)\"", "\"PRIORITY\":\"\(priority)\"",
            "\"SYSLOG_IDENTIFIER\":\"\(identifier)\"", "\"MESSAGE_ID\":\"\(JournalMessageID.of(kind))\"",
            "\"MESSAGE\":\"a message\"", "\"MW_AUDIT\":\"\(kind.rawValue)\"",
        ]
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { members.append("\"\(name)\":\"\(value)\"") }
        return "{" + members.joined(separator: ",") + "}"
    }
}

@Suite struct ExportReaderTests {
    let window = ["MW_POLICY": "card", "MW_FEED": "sim", "MW_CALL": "c1", "MW_WINDOW": "1", "MW_MODE": "enforce"]

    func read(_ text: String, until ms: Int64 = 3_600_000) -> Report {
        let period = ReportPeriod(since: Script.base, until: Script.base + ms * 1000)
        var aggregator = ReportAggregator(period: period, source: .init(kind: "export", path: nil))
        ExportReader().read(text: Array(text.utf8), into: &aggregator, period: period)
        return aggregator.finish()
    }

    @Test func readsRecordsAndCountsWhatItSkips() {
        let lines = [
            ExportLines.line(.windowOpened, at: 1000, window.merging(["MW_RESULT": "opened"]) { $1 }),
            ExportLines.line(.actionAttempt, at: 1001, window.merging(["MW_TARGET": "t", "MW_ACTION": "mute"]) { $1 }),
            "not json at all",
            "{\"truncated\": ",
            "[1,2,3]",
            // No timestamp: malformed.
            "{\"SYSLOG_IDENTIFIER\":\"mutewarden\",\"MESSAGE_ID\":\"\(JournalMessageID.of(.feedUp))\"}",
            // Another program's record, and one of the daemon's log lines that is no audit record.
            ExportLines.line(.feedUp, at: 1002, ["MW_FEED": "sim"], identifier: "sshd"),
            "{\"__REALTIME_TIMESTAMP\":\"\(Script.base + 5)\",\"SYSLOG_IDENTIFIER\":\"mutewarden\",\"MESSAGE\":\"hello\"}",
            "",
            // A value journalctl could not show as text arrives as bytes.
            ExportLines.line(.actionConfirmed, at: 1050, window.merging(["MW_TARGET": "t", "MW_ACTION": "mute"]) { $1 })
                .replacingOccurrences(of: "\"MW_CALL\":\"c1\"", with: "\"MW_CALL\":[99,49]"),
            ExportLines.line(.windowClosed, at: 2000, window.merging(["MW_RESULT": "stopped"]) { $1 }),
            // Outside the period.
            ExportLines.line(.feedUp, at: 4_000_000, ["MW_FEED": "sim", "MW_RESULT": "up"]),
        ]
        let report = read(lines.joined(separator: "\n"))
        #expect(report.source.records == 4)
        #expect(report.source.malformed == 4)
        #expect(report.source.skipped == 3)
        #expect(report.source.outsidePeriod == 1)
        #expect(report.targets.first?.confirmed == 1)
        #expect(report.targets.first?.max == 50)
        #expect(report.verdict.protected == 1)
    }

    /// The plain scan (ASCII strings) and the full JSON parser it falls back to read a line alike.
    @Test func escapesAndNonASCIIValuesReadAsTheJSONParserReadsThem() throws {
        let base = ExportLines.line(
            .actionFailed, at: 5, priority: 2, window.merging(["MW_TARGET": "t", "MW_ACTION": "mute", "MW_ERROR": "PLACEHOLDER"]) { $1 })
        let cases: [(String, String)] = [
            (#"plain error"#, "plain error"),
            (#"a \"quoted\" error"#, #"a "quoted" error"#),
            (#"caf\u00e9 closed"#, "café closed"),
            ("délai dépassé", "délai dépassé"),
        ]
        for (encoded, decoded) in cases {
            for line in [
                base.replacingOccurrences(of: "PLACEHOLDER", with: encoded),
                // An escape in a value the report does not use keeps the plain scan.
                base.replacingOccurrences(of: "PLACEHOLDER", with: encoded).replacingOccurrences(
                    of: #""MESSAGE":"a message""#, with: #""MESSAGE":"a \"message\"\n""#),
            ] {
                var parser = ExportLineParser()
                let result = Array(line.utf8).withUnsafeBufferPointer { parser.parse($0) }
                guard case .record(let record) = result else {
                    Issue.record("not a record: \(line)")
                    continue
                }
                #expect(record.fields.error == decoded)
                #expect(record.kind == .actionFailed)
                #expect(record.priority == 2)
                #expect(record.time == Script.base + 5000)
            }
        }
        // Malformed after a good start: the plain scan must not take it.
        for line in [#"{"SYSLOG_IDENTIFIER":"mutewarden""#, #"{"a":"b",}"#, #"{"a":"b"} x"#, #"{"a" "b"}"#] {
            var parser = ExportLineParser()
            #expect(Array(line.utf8).withUnsafeBufferPointer { parser.parse($0) } == .malformed, "\(line)")
        }
    }

    @Test func survivesArbitraryBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0..<600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let period = ReportPeriod(since: 0, until: .max)
            var aggregator = ReportAggregator(period: period, source: .init(kind: "export", path: nil))
            ExportReader().read(text: bytes, into: &aggregator, period: period)
            _ = aggregator.finish()
        }
    }

    @Test func aPlantedCardNumberNeverReachesTheReport() {
        let pan = "4111111111111111"
        let lines = [
            ExportLines.line(
                .windowOpened, at: 1000,
                window.merging(["MW_RESULT": "opened", "MW_ATTRIBUTES": "card=\(pan),lang=en"]) { $1 }),
            ExportLines.line(.actionAttempt, at: 1001, window.merging(["MW_TARGET": "t", "MW_ACTION": "mute"]) { $1 }),
            ExportLines.line(
                .actionFailed, at: 2001, priority: 2,
                window.merging(["MW_TARGET": "t", "MW_ACTION": "mute", "MW_ERROR": "platform rejected \(pan)"]) { $1 }),
            ExportLines.line(.windowClosed, at: 3000, window.merging(["MW_RESULT": "call-ended", "MW_REASON": "unprotected"]) { $1 }),
        ]
        let report = read(lines.joined(separator: "\n"))
        #expect(report.unconfirmed.count == 1)
        for output in [
            ReportTextRenderer.render(report), ReportJSONRenderer.render(report, generated: 0), ReportHTMLRenderer.render(report, generated: 0),
        ] {
            #expect(!output.contains(pan))
        }
    }
}
