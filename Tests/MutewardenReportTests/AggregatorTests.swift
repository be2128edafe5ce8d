import MutewardenModel
import MutewardenReport
import Testing

/// Records as the daemon writes them, made by hand: the aggregator needs no journal.
struct Script {
    var records: [ReportRecord] = []
    /// Microseconds since the epoch of the period's start: 2026-11-01T00:00:00Z.
    static let base: Int64 = 1_793_491_200_000_000

    mutating func add(_ ms: Int64, _ kind: AuditKind, _ priority: AuditSeverity = .info, _ fields: AuditFields) {
        records.append(ReportRecord(time: Self.base + ms * 1000, kind: kind, priority: priority.rawValue, fields: fields))
    }

    static func window(_ call: String, _ number: String = "1", policy: String = "card", feed: String = "sim", mode: String = "enforce")
        -> AuditFields
    {
        [.policy: policy, .feed: feed, .call: call, .window: number, .mode: mode]
    }

    mutating func open(_ ms: Int64, _ call: String, policy: String = "card", feed: String = "sim", mode: String = "enforce") {
        add(ms, .windowOpened, .notice, Self.window(call, policy: policy, feed: feed, mode: mode).overlaid(with: [.result: "opened"]))
    }

    mutating func attempt(_ ms: Int64, _ call: String, target: String = "mute-api", action: String = "mute", policy: String = "card") {
        add(ms, .actionAttempt, .info, Self.window(call, policy: policy).overlaid(with: [.target: target, .action: action, .result: "sent"]))
    }

    mutating func confirm(_ ms: Int64, _ call: String, target: String = "mute-api", action: String = "mute", policy: String = "card") {
        add(ms, .actionConfirmed, .info, Self.window(call, policy: policy).overlaid(with: [.target: target, .action: action, .result: "confirmed"]))
    }

    mutating func close(_ ms: Int64, _ call: String, result: String = "stopped", unprotected: Bool = false, policy: String = "card") {
        var fields = Self.window(call, policy: policy).overlaid(with: [.result: result])
        if unprotected { fields.reason = "unprotected" }
        add(ms, .windowClosed, unprotected ? .error : .notice, fields)
    }

    func report(until ms: Int64 = 3_600_000) -> Report {
        var aggregator = ReportAggregator(
            period: ReportPeriod(since: Self.base, until: Self.base + ms * 1000), source: .init(kind: "export", path: nil))
        for record in records { aggregator.add(record) }
        return aggregator.finish()
    }
}

@Suite struct AggregatorTests {
    @Test func protectedWindowsGiveTimeToProtectionPerTarget() {
        var script = Script()
        // Ten windows on one target confirmed 10, 20, ... 100 ms after opening; one on another.
        for index in 1...10 {
            let call = "c\(index)"
            let start = Int64(index) * 10_000
            script.open(start, call)
            script.attempt(start + 1, call)
            script.confirm(start + Int64(index) * 10, call)
            script.close(start + 5000, call, result: index % 2 == 0 ? "call-ended" : "stopped")
        }
        script.open(200_000, "r1")
        script.attempt(200_001, "r1", target: "recorder", action: "pause-recording")
        script.confirm(200_300, "r1", target: "recorder", action: "pause-recording")
        // The undo is no protection and must not count.
        script.confirm(200_400, "r1", target: "recorder", action: "resume-recording")
        script.close(201_000, "r1", result: "cap-expired")
        let report = script.report()

        #expect(report.verdict.ok)
        #expect(report.verdict.captures == 11)
        #expect(report.verdict.protected == 11)
        #expect(report.targets.map(\.target) == ["mute-api", "recorder"])
        let mute = report.targets[0]
        #expect(mute.confirmed == 10)
        #expect(mute.p50 == 50)
        #expect(mute.p90 == 90)
        #expect(mute.p99 == 100)
        #expect(mute.max == 100)
        #expect(report.targets[1].confirmed == 1)
        #expect(report.targets[1].max == 300)
        #expect(report.windows.count == 1)
        #expect(report.windows[0].opened == 11)
        #expect(report.windows[0].ended == ["stopped": 5, "call-ended": 5, "cap-expired": 1])
        #expect(report.histogram.reduce(0) { $0 + $1.count } == 11)
        #expect(report.histogram[0].count == 1)  // 10 ms
        #expect(report.histogram.last?.count == 0)
    }

    @Test func controlFailureWithFallbackAndRecoveryAndUnprotectedClose() {
        var script = Script()
        // a: fails on its target, confirmed on the fallback.
        script.open(1000, "a")
        script.attempt(1001, "a", target: "flaky")
        script.add(
            2001, .actionFailed, .critical,
            Script.window("a").overlaid(with: [.target: "flaky", .action: "mute", .result: "failed", .error: "timed out", .errorCode: "28"]))
        script.attempt(2002, "a", target: "backup")
        script.confirm(2100, "a", target: "backup")
        script.close(9000, "a")
        // b: fails, then recovered by enforcement after 7.5 s unprotected.
        script.open(10_000, "b")
        script.attempt(10_001, "b", target: "flaky")
        script.add(11_000, .actionFailed, .critical, Script.window("b").overlaid(with: [.target: "flaky", .action: "mute", .result: "failed"]))
        script.add(
            17_500, .actionRecovered, .warning,
            Script.window("b").overlaid(with: [.target: "flaky", .action: "mute", .result: "recovered", .latencyMs: "7500.000"]))
        script.close(20_000, "b")
        // c: fails and the window closes unprotected.
        script.open(30_000, "c")
        script.attempt(30_001, "c", target: "flaky")
        script.add(31_000, .actionFailed, .critical, Script.window("c").overlaid(with: [.target: "flaky", .action: "mute", .result: "failed"]))
        script.close(34_000, "c", result: "call-ended", unprotected: true)
        // d: never confirmed, no failure raised, closed: the one exception.
        script.open(40_000, "d")
        script.attempt(40_001, "d")
        script.close(40_500, "d", result: "call-ended")
        let report = script.report()

        #expect(report.unconfirmed.map(\.call) == ["a", "b", "c", "d"])
        #expect(report.unconfirmed.map(\.outcome) == ["fallback-confirmed", "recovered", "unprotected-at-close", "unconfirmed-at-close"])
        #expect(report.unconfirmed[0].fallbacks == ["backup"])
        #expect(report.unconfirmed[0].target == "flaky")
        #expect(report.unconfirmed[0].error == "timed out")
        #expect(report.unconfirmed[0].errorCode == "28")
        #expect(report.unconfirmed[0].unprotectedMs == 1100)
        #expect(report.unconfirmed[1].unprotectedMs == 7500)
        #expect(report.unconfirmed[2].unprotectedMs == 4000)
        #expect(report.unconfirmed.map(\.alarmed) == [true, true, true, false])
        #expect(report.verdict.captures == 4)
        #expect(report.verdict.alarmed == 3)
        #expect(!report.verdict.ok)
        #expect(report.verdict.exceptions.count == 1)
        #expect(report.verdict.exceptions[0].contains("call d"))
        // A confirmation on a fallback is not the target's time to protection.
        #expect(report.targets.isEmpty)
    }

    @Test func feedOutagesWithCallsActiveAndTheResyncThatClosedThem() {
        var script = Script()
        script.add(0, .daemonStarted, .notice, [.result: "started"])
        script.add(1, .configurationLoaded, .notice, [.result: "loaded", .digest: "sha256:" + String(repeating: "ab", count: 32)])
        script.add(2, .feedUp, .notice, [.feed: "gws", .result: "up"])
        script.add(60_000, .feedDown, .error, [.feed: "gws", .result: "down", .reason: "connection lost", .calls: "7"])
        script.add(75_000, .feedUp, .notice, [.feed: "gws", .result: "up"])
        script.add(75_010, .feedUp, .notice, [.feed: "gws", .result: "resynced", .calls: "5"])
        script.add(80_000, .configurationLoaded, .notice, [.result: "reloaded", .digest: "sha256:" + String(repeating: "cd", count: 32)])
        script.add(81_000, .configurationRejected, .error, [.result: "rejected", .error: "bad policy"])
        // A reload restarting the feed is an orderly stop, not an outage.
        script.add(82_000, .feedDown, .notice, [.feed: "gws", .result: "stopped"])
        script.add(82_100, .feedUp, .notice, [.feed: "gws", .result: "up"])
        script.add(90_000, .feedDown, .critical, [.feed: "gws", .result: "failed", .error: "login refused"])
        script.add(100_000, .daemonStopping, .notice, [.result: "stopping"])
        script.add(100_500, .daemonStopping, .notice, [.result: "stopped"])
        let report = script.report()

        #expect(report.outages.count == 2)
        let first = report.outages[0]
        #expect(first.feed == "gws")
        #expect(first.durationMs == 15_000)
        #expect(first.callsActive == 7)
        #expect(first.resyncCalls == 5)
        #expect(first.resyncAt == Script.base + 75_010_000)
        #expect(first.reason == "connection lost")
        let second = report.outages[1]
        #expect(second.result == "failed")
        #expect(second.endedBy == "daemon-stopped")
        #expect(second.callsActive == nil)
        #expect(report.configurations.map(\.result) == ["loaded", "reloaded", "rejected"])
        #expect(report.configurations[1].digest == "sha256:" + String(repeating: "cd", count: 32))
        #expect(report.configurations[2].error == "bad policy")
        #expect(report.daemon.map(\.event) == ["started", "stopping", "stopped"])
        #expect(report.verdict.ok)
        #expect(report.verdict.captures == 0)
    }

    @Test func periodBoundariesAreSaidNotGuessed() {
        var script = Script()
        // Opened before the period: only its confirmation and close are in it.
        script.confirm(100, "early")
        script.close(2000, "early")
        // An outage that began before the period: the feed comes up with no down before it.
        script.add(500, .feedUp, .notice, [.feed: "gws", .result: "up"])
        // Open at the end: one confirmed, one still pending.
        script.open(50_000, "late")
        script.attempt(50_001, "late")
        script.confirm(50_050, "late")
        script.open(59_000, "pending")
        script.attempt(59_001, "pending")
        script.add(59_500, .feedDown, .error, [.feed: "gws", .result: "down", .calls: "2"])
        let report = script.report(until: 60_000)

        #expect(report.boundary.windowsOpenedBeforePeriod == 1)
        #expect(report.boundary.windowsOpenAtPeriodEnd == 2)
        #expect(report.boundary.outagesOpenAtStart == 1)
        #expect(report.boundary.outagesOpenAtEnd == 1)
        #expect(report.outages.first?.downAt == nil)
        #expect(report.outages.last?.upAt == nil)
        #expect(report.verdict.ok)
        #expect(report.verdict.captures == 2)
        #expect(report.verdict.protected == 1)
        #expect(report.verdict.pendingAtPeriodEnd == 1)
        // No time to protection without the opening.
        #expect(report.targets.map(\.confirmed) == [1])
        #expect(report.windows[0].ended["open-at-period-end"] == 2)
    }

    @Test func windowsLeftInPlaceAtShutdownAndDryRuns() {
        var script = Script()
        script.open(1000, "kept")
        script.attempt(1001, "kept")
        script.confirm(1100, "kept")
        script.add(5000, .daemonStopping, .warning, Script.window("kept").overlaid(with: [.result: "left-in-place"]))
        script.add(5001, .daemonStopping, .warning, [.result: "stopped"])
        script.open(6000, "dry", policy: "trial", mode: "dry-run")
        script.add(6001, .dryRun, .notice, Script.window("dry", policy: "trial", mode: "dry-run").overlaid(with: [.result: "not-sent"]))
        script.add(9000, .windowClosed, .notice, Script.window("dry", policy: "trial", mode: "dry-run").overlaid(with: [.result: "stopped"]))
        let report = script.report()

        let card = report.windows.first { $0.policy == "card" }
        #expect(card?.ended == ["left-in-place": 1])
        #expect(card?.protected == 1)
        let trial = report.windows.first { $0.policy == "trial" }
        #expect(trial?.mode == "dry-run")
        #expect(trial?.opened == 1)
        #expect(report.verdict.dryRun == 1)
        #expect(report.verdict.captures == 1)
        #expect(report.verdict.ok)
    }

    @Test func driftAndOtherAlarmsAreListed() {
        var script = Script()
        script.open(1000, "x")
        script.attempt(1001, "x")
        script.confirm(1100, "x")
        script.add(3000, .windowDrift, .warning, Script.window("x").overlaid(with: [.target: "mute-api", .reason: "the agent is unmuted"]))
        script.attempt(3001, "x")
        script.confirm(3050, "x")
        script.add(4000, .windowDrift, .critical, Script.window("x").overlaid(with: [.target: "mute-api", .reason: "the agent is unmuted"]))
        script.close(9000, "x")
        script.add(9500, .trackerFull, .error, [.feed: "sim", .call: "y", .reason: "3 calls refused since start"])
        script.add(9600, .windowOrphaned, .warning, [.feed: "sim", .call: "z", .reason: "the agent is muted"])
        let report = script.report()

        #expect(report.drifts.map(\.critical) == [false, true])
        #expect(report.alarms.map(\.kind) == ["tracker.full", "window.orphaned"])
        // The re-apply after a drift is not a second time to protection.
        #expect(report.targets.first?.confirmed == 1)
        #expect(report.verdict.protected == 1)
    }

    @Test func cardNumbersInFieldsAreMaskedInEveryFormat() {
        var script = Script()
        let pan = "4111111111111111"
        script.open(1000, "p")
        script.attempt(1001, "p")
        script.add(
            2000, .actionFailed, .critical,
            Script.window("p").overlaid(with: [.target: "mute-api", .action: "mute", .error: "rejected card \(pan) for call"]))
        script.close(3000, "p", unprotected: true)
        script.add(4000, .configurationRejected, .error, [.error: "bad value \(pan)"])
        script.add(5000, .feedDown, .error, [.feed: "sim", .result: "down", .reason: "platform said \(pan)"])
        let report = script.report()
        let outputs = [
            ReportTextRenderer.render(report), ReportJSONRenderer.render(report, generated: Script.base),
            ReportHTMLRenderer.render(report, generated: Script.base),
        ]
        for output in outputs {
            #expect(!output.contains(pan))
            #expect(!output.contains("411111111111"))
        }
        #expect(outputs[0].contains("rejected card"))
    }

    @Test func textFitsATerminal() {
        var script = Script()
        script.open(1000, "c1")
        script.attempt(1001, "c1")
        script.confirm(1200, "c1")
        script.close(5000, "c1")
        let text = ReportTextRenderer.render(script.report())
        #expect(text.contains("VERDICT: PASS"))
        for line in text.split(separator: "\n") { #expect(line.count <= 100, "\(line)") }
    }

    @Test func timesParseAsUTC() {
        #expect(ReportTime.parse("2026-11-01") == Script.base)
        #expect(ReportTime.parse("2026-11-01T00:00:00Z") == Script.base)
        #expect(ReportTime.parse("2026-11-01 00:01") == Script.base + 60_000_000)
        #expect(ReportTime.parse("@1793491200") == Script.base)
        #expect(ReportTime.parse("2026-02-31") == nil)
        #expect(ReportTime.parse("yesterday") == nil)
        #expect(ReportTime.iso(Script.base + 123_000) == "2026-11-01T00:00:00.123Z")
    }
}
