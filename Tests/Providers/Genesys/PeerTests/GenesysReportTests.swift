import Crypto
import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel
import MutewardenReport
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mutewarden report` after a scripted run of the daemon on the Genesys peer, its audit records
/// in the test kit's private systemd-journald through the real `JournalLogHandler`: a protected
/// capture, a control failure that is recovered, a Faye restart (a feed outage with a live call,
/// closed by a resync), a reload, and a control failure still unprotected when its call ends.
/// Every figure of the report is checked against what the test did. Needs root (journald in a
/// mount namespace) and the Ruby peer: a missing one fails the test.
@Suite(.serialized) struct GenesysReportTests {
    static let pan = "4111111111111111"
    private static let recording = #"{"recordingState":"Recording","mute":"Off","callType":"Inbound"}"#

    static func sha256(_ text: String) -> String {
        "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }

    @Test func theReportOfAGenesysRunMatchesWhatTheTestDid() async throws {
        let journal = try await PrivateJournal.start()
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        let state = try TemporaryDirectory("mw-gws-report")
        let first = GenesysProviderTests.yaml(peer: peer, deadline: "1s", stateDirectory: state.path)
        let second = GenesysProviderTests.yaml(peer: peer, deadline: "2s", stateDirectory: state.path)
        let text = Locked(first)
        let memory = InMemoryLogHandler(label: "mutewarden", logLevel: .info)
        let sink = JournalSink(sender: journal.sender())
        let logger = Logger(label: "mutewarden") { label in
            MultiplexLogHandler([memory, JournalLogHandler(label: label, logLevel: .info, sink: sink)])
        }
        let loader = GenesysProviderTests.loader
        let daemon = try Daemon(
            configuration: try loader.load(yaml: first, file: "gws.yaml"), logger: logger,
            reloader: { () throws(ConfigurationError) in try loader.load(yaml: text.withLock { $0 }, file: "gws.yaml") })
        let (signals, control) = AsyncStream<DaemonSignal>.makeStream()
        let started = Self.now()
        let run = Task { try await daemon.run(signals: signals) }
        func waitForLine(_ fragments: String...) async -> Bool {
            await waitUntil(every: .milliseconds(20)) { memory.store.lines().contains { line in fragments.allSatisfy(line.contains) } }
        }

        try await peer.waitForSubscribers()
        #expect(await waitForLine("audit=feed.up", "feed=gws"))
        // P1: protected.
        try await peer.createCall(id: "P1", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await waitForLine("audit=action.confirmed", "action=pause-recording", "call=P1"))
        try await peer.setUserData("P1", ["PCI_STAGE": "DONE"])
        #expect(await waitForLine("audit=window.closed", "call=P1"))
        // F1: the platform refuses the pause, slowly and quoting a card number, past the 1 s
        // deadline (a control failure); the daemon keeps trying and is confirmed once the
        // refusals stop.
        try await peer.script(
            operation: "PauseCallRecording", callId: "F1",
            answers: Array(repeating: .delayed(milliseconds: 300, .http(500, body: "card \(Self.pan) refused")), count: 4))
        try await peer.createCall(id: "F1", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await waitForLine("audit=action.failed", "call=F1"))
        #expect(await waitForLine("audit=action.recovered", "call=F1"))
        try await peer.setUserData("F1", ["PCI_STAGE": "DONE"])
        #expect(await waitForLine("audit=window.closed", "call=F1"))
        try await peer.endCall("P1")
        try await peer.endCall("F1")
        #expect(await waitUntil { daemon.snapshot.statistics.trackedCalls == 0 })
        // L1: a live call without a capture, when Faye restarts (the outage).
        try await peer.createCall(id: "L1", userData: ["PCI_STAGE": "IVR"], fields: Self.recording)
        #expect(await waitUntil { daemon.snapshot.statistics.trackedCalls == 1 })
        try await peer.restart()
        #expect(await waitForLine("audit=feed.down", "feed=gws", "result=down"))
        try await peer.waitForSubscribers()
        #expect(await waitForLine("audit=feed.up", "result=resynced"))
        // A reload: the deadline changes.
        text.withLock { $0 = second }
        control.yield(.reload)
        #expect(await waitForLine("audit=config.loaded", "result=reloaded"))
        // U1: accepted but never confirmed, again and again, until the call ends: still
        // unprotected at close.
        try await peer.script(
            operation: "PauseCallRecording", callId: "U1", answers: Array(repeating: .acceptWithoutConfirming, count: 20))
        try await peer.createCall(id: "U1", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await waitForLine("audit=action.failed", "call=U1"))
        try await peer.endCall("U1")
        #expect(await waitForLine("audit=window.closed", "call=U1"))
        control.yield(.terminate)
        #expect(try await run.value == 0)
        _ = try await journal.waitForEntries(["MW_AUDIT=daemon.stopping", "MW_RESULT=stopped"], count: 1)
        let entries = try await journal.entries(["SYSLOG_IDENTIFIER=mutewarden"])
        let period = ReportPeriod(since: started - 5_000_000, until: Self.now() + 5_000_000)
        await peer.stop()

        var aggregator = ReportAggregator(period: period, source: .init(kind: "journal", path: journal.journalDirectory))
        try JournalReader(directory: journal.journalDirectory).read(into: &aggregator, period: period)
        let report = aggregator.finish()
        await journal.stop()

        #expect(report.source.records == entries.filter { $0["MW_AUDIT"] != nil && $0["MESSAGE_ID"] != nil }.count)
        #expect(report.verdict.ok, "\(report.verdict.exceptions)")
        #expect(report.verdict.captures == 3)
        #expect(report.verdict.protected == 1)
        #expect(report.verdict.alarmed == 2)
        #expect(report.windows.map(\.opened) == [3])
        #expect(report.windows.first?.ended == ["stopped": 2, "call-ended": 1])
        #expect(report.targets.map(\.target) == ["voice"])
        #expect(report.targets.first?.confirmed == 1)
        #expect(report.unconfirmed.map(\.call) == ["F1", "U1"])
        #expect(report.unconfirmed.map(\.outcome) == ["recovered", "unprotected-at-close"])
        #expect(report.unconfirmed.allSatisfy { $0.alarmed && $0.target == "voice" && ($0.unprotectedMs ?? 0) > 1000 })
        #expect(report.outages.count == 1)
        let outage = try #require(report.outages.first)
        #expect(outage.feed == "gws")
        #expect(outage.result == "down")
        #expect(outage.callsActive == 1, "L1 was live")
        #expect(outage.resyncCalls == 0, "the restarted peer forgot every call")
        #expect(outage.resyncAt != nil && outage.upAt != nil && (outage.durationMs ?? -1) >= 0)
        #expect(report.configurations.map(\.result) == ["loaded", "reloaded"])
        #expect(report.configurations.map(\.digest) == [Self.sha256(first), Self.sha256(second)])
        #expect(report.daemon.map(\.event).first == "started")
        #expect(report.daemon.map(\.event).last == "stopped")
        #expect(report.boundary == Report.Boundary())

        let outputs = [
            ReportTextRenderer.render(report), ReportJSONRenderer.render(report, generated: 0),
            ReportHTMLRenderer.render(report, generated: 0),
        ]
        for output in outputs { #expect(!output.contains(Self.pan)) }
        #expect(!entries.contains { $0.fields.values.contains { $0.contains { $0.contains(Self.pan) } } })
        #expect(report.unconfirmed.first?.error?.isEmpty == false)

        // The same from journalctl's export.
        let exported = try await runProgram(
            try JournalTools.journalctl(), ["--directory=\(journal.journalDirectory)", "--no-pager", "-o", "json"])
        #expect(exported.status == 0)
        var fromExport = ReportAggregator(period: period, source: .init(kind: "export", path: nil))
        ExportReader().read(text: Array(exported.stdout.utf8), into: &fromExport, period: period)
        let exportReport = fromExport.finish()
        #expect(exportReport.source.malformed == 0)
        let strip = { (json: String) throws -> NSDictionary in
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
            return object.filter { $0.key != "source" } as NSDictionary
        }
        #expect(try strip(ReportJSONRenderer.render(exportReport, generated: 0)) == strip(outputs[1]))
    }
}
