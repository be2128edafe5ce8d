/// The report for a terminal: sections in the order an assessor reads them, the verdict first,
/// lines within 80 columns but for long names and error texts, which are cut. Lists longer than
/// ``listLimit`` show their first entries and how many more there are; `--format json` has all.
public enum ReportTextRenderer {
    public static let listLimit = 50
    static let width = 80

    public static func render(_ report: Report) -> String {
        var out = ""
        func line(_ text: String = "") { out += cut(text) + "\n" }
        func heading(_ text: String) {
            line()
            line(text)
            line(String(repeating: "-", count: min(width, text.count)))
        }

        line("mutewarden report: \(ReportTime.iso(report.period.since)) to \(ReportTime.iso(report.period.until))")
        line("source: \(report.source.kind)\(report.source.path.map { " " + $0 } ?? "")")
        line(
            "  \(report.source.records) audit record(s) in the period; \(report.source.malformed) malformed, "
                + "\(report.source.skipped) other, \(report.source.outsidePeriod) outside the period")
        line()
        line((report.verdict.ok ? "VERDICT: PASS: " : "VERDICT: FAIL: ") + report.verdict.line)
        for exception in report.verdict.exceptions.prefix(listLimit) { line("  - " + exception) }
        more(report.verdict.exceptions.count, &out)

        heading("Captures and windows (PCI DSS 10.2)")
        if report.windows.isEmpty { line("no window opened or closed in the period") }
        for group in report.windows {
            line(
                "\(group.policy) on \(group.feed) [\(group.mode)]: \(group.opened) opened, \(group.extended) extended, "
                    + "\(group.protected) protected" + (group.openedBeforePeriod > 0 ? ", \(group.openedBeforePeriod) opened before the period" : ""))
            let ended = group.ended.keys.sorted().map { "\($0) \(group.ended[$0]!)" }.joined(separator: ", ")
            line("  ended: " + (ended.isEmpty ? "none" : ended))
        }

        heading("Time to protection, window open to action confirmed (10.2, 10.7)")
        if report.targets.isEmpty {
            line("no action confirmed in the period")
        } else {
            line(
                pad("target", 24) + pad("confirmed", 10, right: true) + pad("p50 ms", 11, right: true) + pad("p90 ms", 11, right: true)
                    + pad("p99 ms", 11, right: true) + pad("max ms", 11, right: true))
            for target in report.targets {
                line(
                    pad(target.target, 24) + pad(String(target.confirmed), 10, right: true) + pad(ms(target.p50), 11, right: true)
                        + pad(ms(target.p90), 11, right: true) + pad(ms(target.p99), 11, right: true) + pad(ms(target.max), 11, right: true))
            }
            let histogram = report.histogram.map { bucket in
                (bucket.upTo.map { "<=\(Int($0))" } ?? ">\(Int(ReportAggregator.histogramBounds.last!))") + ": \(bucket.count)"
            }
            line("histogram, all targets (ms):")
            line("  " + histogram.prefix(5).joined(separator: "  "))
            line("  " + histogram.dropFirst(5).joined(separator: "  "))
        }

        heading("Control failures and unconfirmed windows (10.7, 12.10)")
        if report.unconfirmed.isEmpty { line("none: every action of the period was confirmed") }
        for entry in report.unconfirmed.prefix(listLimit) {
            line(
                "\(entry.openedAt.map(ReportTime.iso) ?? "before the period") \(entry.policy) call \(entry.call) "
                    + "window \(entry.window) on \(entry.feed)")
            line(
                "  \(entry.action) via \(entry.target): " + (entry.alarmed ? "control failure" : "never confirmed, no alarm")
                    + (entry.error.map { ": " + $0 } ?? "") + (entry.errorCode.map { " (code \($0))" } ?? ""))
            if !entry.fallbacks.isEmpty { line("  fallback: " + entry.fallbacks.joined(separator: ", ")) }
            line("  outcome: " + outcomeText(entry))
        }
        more(report.unconfirmed.count, &out)

        heading("Feed outages (10.7)")
        if report.outages.isEmpty { line("none") }
        for outage in report.outages.prefix(listLimit) {
            line(
                "\(outage.feed): down \(outage.downAt.map(ReportTime.iso) ?? "before the period") (\(outage.result)"
                    + (outage.reason.map { ": " + $0 } ?? "") + ")")
            let up =
                outage.upAt.map { "up \(ReportTime.iso($0))" + (outage.durationMs.map { " after \(duration($0))" } ?? "") }
                ?? "still down at the end of the period"
            line(
                "  \(up)" + (outage.endedBy == "daemon-stopped" ? " (the daemon stopped)" : "")
                    + "; calls active when it went down: \(outage.callsActive.map(String.init) ?? "not recorded")")
            if let resyncAt = outage.resyncAt {
                line("  resync \(ReportTime.iso(resyncAt)): \(outage.resyncCalls.map(String.init) ?? "?") call(s) listed by the platform")
            } else if outage.upAt != nil, outage.endedBy == nil {
                line("  no resync recorded")
            }
        }
        more(report.outages.count, &out)

        heading("Configuration and daemon (10.2.1, 10.2.2)")
        for event in report.configurations.prefix(listLimit) {
            line("\(ReportTime.iso(event.time)) config \(event.result)" + (event.error.map { ": " + $0 } ?? ""))
            // A digest is 71 characters: on a line of its own, so that it is never cut.
            if let digest = event.digest { line("  " + digest) }
        }
        more(report.configurations.count, &out)
        for event in report.daemon.prefix(listLimit * 2) { line("\(ReportTime.iso(event.time)) daemon \(event.event)") }
        more(report.daemon.count, &out, limit: listLimit * 2)
        if report.configurations.isEmpty && report.daemon.isEmpty { line("no configuration load and no start or stop in the period") }

        heading("Drift and other alarms")
        if report.drifts.isEmpty && report.alarms.isEmpty { line("none") }
        for drift in report.drifts.prefix(listLimit) {
            line(
                "\(ReportTime.iso(drift.time)) drift\(drift.critical ? " (repeated, critical)" : ""): \(drift.policy) call \(drift.call) "
                    + "via \(drift.target): \(drift.reason)")
        }
        more(report.drifts.count, &out)
        for alarm in report.alarms.prefix(listLimit) {
            line(
                "\(ReportTime.iso(alarm.time)) \(alarm.kind)" + (alarm.feed.map { " feed \($0)" } ?? "")
                    + (alarm.call.map { " call \($0)" } ?? "") + (alarm.detail.map { ": " + $0 } ?? ""))
        }
        more(report.alarms.count, &out)

        heading("Period boundaries")
        let boundary = report.boundary
        line("windows opened before the period (seen by their later records): \(boundary.windowsOpenedBeforePeriod)")
        line("windows still open at the end of the period: \(boundary.windowsOpenAtPeriodEnd)")
        line("outages begun before the period: \(boundary.outagesOpenAtStart); still open at its end: \(boundary.outagesOpenAtEnd)")
        return out
    }

    static func outcomeText(_ entry: Report.UnconfirmedWindow) -> String {
        let span = entry.unprotectedMs.map { " after \(duration($0)) unprotected" } ?? ""
        switch entry.outcome {
        case "recovered": return "recovered" + span
        case "fallback-confirmed": return "protected by fallback" + span
        case "unprotected-at-close": return "still unprotected at close" + span
        case "unconfirmed-at-close": return "window closed before confirmation" + span
        case "open-at-period-end": return "still unprotected at the end of the period"
        default: return entry.outcome
        }
    }

    private static func more(_ count: Int, _ out: inout String, limit: Int = listLimit) {
        if count > limit { out += "  ... and \(count - limit) more (--format json lists all)\n" }
    }

    static func cut(_ text: String) -> String {
        text.count <= 100 ? text : String(text.prefix(99)) + "…"
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let shown = text.count > width - 1 ? String(text.prefix(width - 2)) + "…" : text
        let fill = String(repeating: " ", count: max(0, width - shown.count))
        return right ? fill + shown : shown + fill
    }

    static func ms(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func duration(_ milliseconds: Double) -> String {
        if milliseconds < 1000 { return ms(milliseconds) + " ms" }
        let seconds = milliseconds / 1000
        if seconds < 120 { return ms(seconds * 1000 / 1000) + " s" }
        let minutes = Int(seconds / 60)
        if minutes < 120 { return "\(minutes) min \(Int(seconds) % 60) s" }
        return "\(minutes / 60) h \(minutes % 60) min"
    }
}
