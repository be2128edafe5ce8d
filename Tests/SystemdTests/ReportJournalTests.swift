import Crypto
import Foundation
import MutewardenModel
import MutewardenReport
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mutewarden report` over a real journal: the built daemon runs on the simulator with its
/// records going to a private systemd-journald, the test reloads it (a valid configuration, then
/// one refused with a card number in it), and the report is built from the journal directory
/// through sd-journal, from `journalctl -o json`, and by the `report` command. Every figure is
/// checked against what the test did or, where the simulator decided (how many captures), against
/// the journal's own entries as journalctl lists them. Needs root (journald in a mount namespace):
/// like every test with a peer, it fails where that is missing rather than skip.
@Suite(.serialized) struct ReportJournalTests {
    static let pan = "4111111111111111"

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binary: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("mutewarden").path,
            packageRoot.appendingPathComponent(".build/debug/mutewarden").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// Every window's mute fails for good on `flaky` (a control failure) and is taken over by the
    /// fallback; the recording pause is confirmed at once. The capture value is a card number,
    /// and on the attribute allowlist: the daemon masks it, and the report must never show it.
    static func configuration(state: String, recorderLatency: String) -> String {
        """
        feeds:
          sim:
            type: simulator
            agents: 4
            call_rate: 6
            call_duration: 3s
            capture_ratio: 1
            capture_after: 200ms
            capture_duration: 600ms
            capture_value: "\(pan)"
            done_value: DONE
            max_calls: 6
            seed: 11
        targets:
          recorder:
            type: log
            latency: \(recorderLatency)
          flaky:
            type: log
            fail_ratio: 1.0
            failure: permanent
          backup:
            type: log
        policies:
          card:
            feeds: [sim]
            start: { attribute: PCI_STAGE, equals: "\(pan)" }
            stop: { attribute: PCI_STAGE, in: [DONE] }
            max_duration: 20s
            actions:
              - { kind: pause-recording, target: recorder, by: call, deadline: 2s }
              - { kind: mute, target: flaky, by: call, deadline: 1s, fallback: [backup] }
        logging:
          level: info
          target: journal
          attributes: [PCI_STAGE, Queue]
        state:
          directory: \(state)

        """
    }

    static func sha256(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    @Test func theReportFromTheJournalMatchesTheRun() async throws {
        let journal = try await PrivateJournal.start()
        let work = try TemporaryDirectory("mutewarden-report")
        let config = work.appending("mutewarden.yaml")
        let first = Self.configuration(state: work.appending("state"), recorderLatency: "5ms")
        try first.write(toFile: config, atomically: true, encoding: .utf8)
        let started = ReportClock.now()

        // The daemon in a mount namespace where /run is the private journal's, so its
        // sd_journal_sendv reaches that journald.
        let daemon = try await PeerProcess.start(
            JournalTools.unshare(),
            [
                "--mount", "--propagation", "private", "/bin/sh", "-c", #"mount --bind "$1" /run && shift && exec "$@""#, "sh",
                journal.runDirectory, Self.binary, "run", "--config", config, "--for", "6s",
            ], name: "mutewarden", holdInput: false)
        let second = Self.configuration(state: work.appending("state"), recorderLatency: "15ms")
        try await withPeer(daemon) { daemon in
            _ = try await journal.waitForEntries(["MW_AUDIT=window.opened"], count: 1)
            // A valid reload: the recorder is rebuilt, the digest changes.
            try second.write(toFile: config, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            _ = try await journal.waitForEntries(["MW_AUDIT=config.loaded", "MW_RESULT=reloaded"], count: 1)
            // A refused one, whose error quotes a card number.
            try (second + "bogus_key_\(Self.pan): 1\n").write(toFile: config, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            _ = try await journal.waitForEntries(["MW_AUDIT=config.rejected"], count: 1)
            try second.write(toFile: config, atomically: true, encoding: .utf8)
            #expect(await daemon.waitForExit(timeout: .seconds(30)) == .exited(0), "\(daemon.tail())")
        }
        _ = try await journal.waitForEntries(["MW_AUDIT=daemon.stopping", "MW_RESULT=stopped"], count: 1)
        let entries = try await journal.entries(["SYSLOG_IDENTIFIER=mutewarden"])
        await journal.stop()
        let period = ReportPeriod(since: started - 60_000_000, until: ReportClock.now() + 60_000_000)

        // What the journal holds, counted without the report's code.
        func count(_ kind: String, _ extra: (JournalEntry) -> Bool = { _ in true }) -> Int {
            entries.filter { $0["MW_AUDIT"] == kind && extra($0) }.count
        }
        let opened = count("window.opened") { $0["MW_RESULT"] == "opened" }
        let failures = count("action.failed") { $0["PRIORITY"] == "2" && $0["MW_ACTION"] == "mute" }
        let pauses = count("action.confirmed") { $0["MW_ACTION"] == "pause-recording" }
        let fallbackConfirmations = count("action.confirmed") { $0["MW_ACTION"] == "mute" && $0["MW_TARGET"] == "backup" }
        #expect(opened >= 2, "the run opened too few windows to prove anything: \(opened)")

        // From the journal directory, through sd-journal.
        var aggregator = ReportAggregator(period: period, source: .init(kind: "journal", path: journal.journalDirectory))
        try JournalReader(directory: journal.journalDirectory).read(into: &aggregator, period: period)
        let report = aggregator.finish()

        #expect(report.source.malformed == 0)
        #expect(report.verdict.ok, "\(report.verdict.exceptions)")
        #expect(report.verdict.captures == opened)
        #expect(report.verdict.alarmed == failures)
        #expect(failures == opened, "every mute fails on flaky")
        #expect(report.verdict.protected == 0)
        #expect(report.windows.map(\.opened) == [opened])
        #expect(report.windows.first?.ended.values.reduce(0, +) == opened)
        #expect(report.targets.map(\.target) == ["recorder"])
        #expect(report.targets.first?.confirmed == pauses)
        #expect((report.targets.first?.max ?? 0) < 2000, "a pause confirmed within its deadline")
        #expect(report.unconfirmed.count == failures)
        #expect(report.unconfirmed.allSatisfy { $0.outcome == "fallback-confirmed" && $0.fallbacks == ["backup"] && $0.target == "flaky" })
        #expect(report.unconfirmed.filter { $0.unprotectedMs != nil }.count == fallbackConfirmations)
        #expect(report.configurations.map(\.result) == ["loaded", "reloaded"] + Array(repeating: "rejected", count: count("config.rejected")))
        #expect(report.configurations.map(\.digest).prefix(2) == [Self.sha256(first), Self.sha256(second)])
        #expect(report.daemon.map(\.event) == ["started", "ready", "stopping", "stopped"])
        #expect(report.outages.isEmpty, "the simulator's stop at shutdown is no outage: \(report.outages)")
        #expect(report.boundary == Report.Boundary())

        let outputs = [
            ReportTextRenderer.render(report), ReportJSONRenderer.render(report, generated: ReportClock.now()),
            ReportHTMLRenderer.render(report, generated: ReportClock.now()),
        ]
        for output in outputs { #expect(!output.contains(Self.pan), "a card number in the report") }
        #expect(entries.contains { $0["MW_ERROR"]?.contains("bogus_key_") == true }, "the refusal quotes the key")
        try await Self.validate(outputs[1])

        // The same from an export, as an assessor's offline copy.
        let exported = try await runProgram(JournalTools.journalctl(), ["--directory=\(journal.journalDirectory)", "--no-pager", "-o", "json"])
        #expect(exported.status == 0)
        let exportFile = work.appending("journal.json")
        try exported.stdout.write(toFile: exportFile, atomically: true, encoding: .utf8)
        var fromExport = ReportAggregator(period: period, source: .init(kind: "export", path: exportFile))
        try ExportReader().read(path: exportFile, into: &fromExport, period: period)
        let exportReport = fromExport.finish()
        #expect(exportReport.source.malformed == 0)
        #expect(exportReport.source.records == report.source.records)
        #expect(
            try Self.withoutSource(ReportJSONRenderer.render(exportReport, generated: 0))
                == Self.withoutSource(ReportJSONRenderer.render(report, generated: 0)))

        // And the command, as an operator runs it.
        let html = work.appending("report.html")
        let command = try await runProgram(
            Self.binary,
            [
                "report", "--since", "@\(period.since / 1_000_000)", "--until", "@\(period.until / 1_000_000 + 1)", "--directory",
                journal.journalDirectory, "--format", "html", "--output", html,
            ])
        #expect(command.status == 0, "\(command.output)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("Verdict: PASS"))
        #expect(!page.contains(Self.pan))
        let text = try await runProgram(Self.binary, ["report", "--since", "@\(period.since / 1_000_000)", "--from", exportFile])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.stdout.contains("VERDICT: PASS"))
        #expect(!text.output.contains(Self.pan))
    }

    /// The command's errors, with sysexits statuses and one clear line each.
    @Test func theCommandsErrorsAreClearWithSysexitsStatuses() async throws {
        let work = try TemporaryDirectory("mutewarden-report-errors")
        let export = work.appending("empty.json")
        try "".write(toFile: export, atomically: true, encoding: .utf8)
        let cases: [([String], Int32, String)] = [
            (["--since", "2026-13-01"], 64, "--since expects a UTC time"),
            (["--since", "2026-11-02", "--until", "2026-11-01"], 64, "--until must be after --since"),
            (["--since", "2026-11-01", "--from", export, "--directory", work.path], 64, "give one of them"),
            (["--since", "2026-11-01", "--format", "pdf"], 64, "pdf"),
            (["--since", "2026-11-01", "--from", work.appending("missing.json")], 66, "cannot open"),
            (["--since", "2026-11-01", "--directory", work.appending("missing")], 66, "cannot open the journal"),
            (["--since", "2026-11-01", "--from", export, "--output", work.appending("no/such/dir/report.txt")], 73, "cannot write"),
        ]
        for (arguments, status, message) in cases {
            let result = try await runProgram(Self.binary, ["report"] + arguments)
            #expect(result.status == status, "\(arguments): \(result.output)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let empty = try await runProgram(Self.binary, ["report", "--since", "2026-11-01", "--until", "2026-12-01", "--from", export])
        #expect(empty.status == 0)
        #expect(empty.stdout.contains("VERDICT: PASS: every capture protected or alarmed: 0 capture(s)"))
    }

    static func withoutSource(_ json: String) throws -> NSDictionary {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        return object.filter { $0.key != "source" && $0.key != "generated" } as NSDictionary
    }

    static func validate(_ json: String) async throws {
        let work = try TemporaryDirectory("mutewarden-report-schema")
        let file = work.appending("report.json")
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        let check = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))
            for error in errors: print(list(error.absolute_path), error.message)
            sys.exit(1 if errors else 0)
            """
        let result = try await runProgram(
            try locateTool("python3"), ["-c", check, packageRoot.appendingPathComponent("docs/report.schema.json").path, file])
        #expect(result.status == 0, "the report does not match docs/report.schema.json: \(result.output)")
    }
}

enum ReportClock {
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }
}
