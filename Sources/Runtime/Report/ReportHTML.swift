/// The report as one self-contained HTML page: inline CSS, inline SVG, no script, no font, no
/// image or link to fetch, so it opens offline, prints (print CSS: no backgrounds needed, page
/// breaks between sections), and can be attached to an assessment as it is.
public enum ReportHTMLRenderer {
    public static func render(_ report: Report, generated: Int64) -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>mutewarden report \(escape(ReportTime.iso(report.period.since))) to \(escape(ReportTime.iso(report.period.until)))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#111;padding:0 1em}
            h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #999;margin-top:1.6em}
            table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}
            td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
            .pass{border:2px solid #070;padding:.5em}.fail{border:2px solid #b00;padding:.5em}
            .muted{color:#555}code{font-size:.95em}svg{max-width:100%;height:auto}
            @media print{body{margin:0;max-width:none;font-size:11pt}h2{break-after:avoid}table,svg{break-inside:avoid}section{break-inside:auto}}
            </style></head><body>

            """
        out += "<h1>mutewarden report</h1>\n"
        out += "<p>Period <b>\(escape(ReportTime.iso(report.period.since)))</b> to <b>\(escape(ReportTime.iso(report.period.until)))</b> "
        out += "(end excluded). Generated \(escape(ReportTime.iso(generated))). Source: \(escape(report.source.kind))"
        out += report.source.path.map { " <code>\(escape($0))</code>" } ?? ""
        out += ": \(report.source.records) audit record(s), \(report.source.malformed) malformed, \(report.source.skipped) other, "
        out += "\(report.source.outsidePeriod) outside the period.</p>\n"

        out += "<p class=\"\(report.verdict.ok ? "pass" : "fail")\"><b>Verdict: \(report.verdict.ok ? "PASS" : "FAIL")</b>: "
        out += escape(report.verdict.line) + "</p>\n"
        if !report.verdict.exceptions.isEmpty {
            out += "<ul>" + report.verdict.exceptions.map { "<li>\(escape($0))</li>" }.joined() + "</ul>\n"
        }

        out += "<section><h2>Timeline of outages and failures</h2>\n" + timeline(report) + "</section>\n"

        out += "<section><h2>Captures and windows (PCI DSS 10.2)</h2>\n"
        if report.windows.isEmpty {
            out += "<p>No window opened or closed in the period.</p>\n"
        } else {
            out += "<table><tr><th>Policy</th><th>Feed</th><th>Mode</th><th class=n>Opened</th><th class=n>Extended</th>"
            out += "<th class=n>Protected</th><th>How they ended</th></tr>\n"
            for group in report.windows {
                let ended = group.ended.keys.sorted().map { "\(escape($0)) \(group.ended[$0]!)" }.joined(separator: ", ")
                out += "<tr><td>\(escape(group.policy))</td><td>\(escape(group.feed))</td><td>\(escape(group.mode))</td>"
                out += "<td class=n>\(group.opened)</td><td class=n>\(group.extended)</td><td class=n>\(group.protected)</td>"
                out += "<td>\(ended)\(group.openedBeforePeriod > 0 ? "; \(group.openedBeforePeriod) opened before the period" : "")</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += "</section>\n"

        out += "<section><h2>Time to protection (10.2, 10.7)</h2>\n"
        if report.targets.isEmpty {
            out += "<p>No action confirmed in the period.</p>\n"
        } else {
            out += "<p class=muted>From the window opening to the first confirmation of each mute or recording pause.</p>\n"
            out += "<table><tr><th>Target</th><th class=n>Confirmed</th><th class=n>p50 ms</th><th class=n>p90 ms</th>"
            out += "<th class=n>p99 ms</th><th class=n>max ms</th></tr>\n"
            for target in report.targets {
                out += "<tr><td>\(escape(target.target))</td><td class=n>\(target.confirmed)</td>"
                out += "<td class=n>\(ReportTextRenderer.ms(target.p50))</td><td class=n>\(ReportTextRenderer.ms(target.p90))</td>"
                out += "<td class=n>\(ReportTextRenderer.ms(target.p99))</td><td class=n>\(ReportTextRenderer.ms(target.max))</td></tr>\n"
            }
            out += "</table>\n" + histogram(report)
        }
        out += "</section>\n"

        out += "<section><h2>Control failures and unconfirmed windows (10.7, 12.10)</h2>\n"
        if report.unconfirmed.isEmpty {
            out += "<p>None: every action of the period was confirmed.</p>\n"
        } else {
            out += "<table><tr><th>Opened</th><th>Policy / call / window</th><th>Action via target</th><th>Error</th>"
            out += "<th>Fallback</th><th>Outcome</th></tr>\n"
            for entry in report.unconfirmed {
                out += "<tr><td>\(escape(entry.openedAt.map(ReportTime.iso) ?? "before the period"))</td>"
                out += "<td>\(escape(entry.policy)) / \(escape(entry.call)) / \(escape(entry.window)) on \(escape(entry.feed))</td>"
                out += "<td>\(escape(entry.action)) via \(escape(entry.target))\(entry.alarmed ? "" : " (no alarm)")</td>"
                out += "<td>\(escape(entry.error ?? ""))\(entry.errorCode.map { " (code \(escape($0)))" } ?? "")</td>"
                out += "<td>\(escape(entry.fallbacks.joined(separator: ", ")))</td>"
                out += "<td>\(escape(ReportTextRenderer.outcomeText(entry)))</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += "</section>\n"

        out += "<section><h2>Feed outages (10.7)</h2>\n"
        if report.outages.isEmpty {
            out += "<p>None.</p>\n"
        } else {
            out += "<table><tr><th>Feed</th><th>Down</th><th>Up</th><th class=n>Duration</th><th class=n>Calls active</th>"
            out += "<th>Resync</th><th>Reason</th></tr>\n"
            for outage in report.outages {
                out += "<tr><td>\(escape(outage.feed))</td><td>\(escape(outage.downAt.map(ReportTime.iso) ?? "before the period"))</td>"
                out += "<td>\(escape(outage.upAt.map(ReportTime.iso) ?? "still down at the end"))"
                out += "\(outage.endedBy == "daemon-stopped" ? " (daemon stopped)" : "")</td>"
                out += "<td class=n>\(escape(outage.durationMs.map(ReportTextRenderer.duration) ?? ""))</td>"
                out += "<td class=n>\(outage.callsActive.map(String.init) ?? "not recorded")</td>"
                out +=
                    "<td>\(escape(outage.resyncAt.map { ReportTime.iso($0) + " (\(outage.resyncCalls.map(String.init) ?? "?") calls)" } ?? ""))</td>"
                out += "<td>\(escape(outage.result))\(escape(outage.reason.map { ": " + $0 } ?? ""))</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += "</section>\n"

        out += "<section><h2>Configuration and daemon (10.2.1, 10.2.2)</h2>\n<table><tr><th>At</th><th>Event</th><th>Detail</th></tr>\n"
        let events =
            report.configurations.map { ($0.time, "config \($0.result)", $0.digest ?? $0.error ?? "") }
            + report.daemon.map { ($0.time, "daemon \($0.event)", "") }
        for (time, event, detail) in events.sorted(by: { $0.0 < $1.0 }) {
            out += "<tr><td>\(escape(ReportTime.iso(time)))</td><td>\(escape(event))</td><td><code>\(escape(detail))</code></td></tr>\n"
        }
        out += "</table>\n</section>\n"

        out += "<section><h2>Drift and other alarms</h2>\n"
        if report.drifts.isEmpty && report.alarms.isEmpty {
            out += "<p>None.</p>\n"
        } else {
            out += "<table><tr><th>At</th><th>Kind</th><th>Feed / call</th><th>Detail</th></tr>\n"
            for drift in report.drifts {
                out += "<tr><td>\(escape(ReportTime.iso(drift.time)))</td><td>drift\(drift.critical ? " (repeated)" : "")</td>"
                out += "<td>\(escape(drift.feed)) / \(escape(drift.call))</td><td>\(escape(drift.policy)) via \(escape(drift.target)): "
                out += "\(escape(drift.reason))</td></tr>\n"
            }
            for alarm in report.alarms {
                out += "<tr><td>\(escape(ReportTime.iso(alarm.time)))</td><td>\(escape(alarm.kind))</td>"
                out += "<td>\(escape(alarm.feed ?? "")) / \(escape(alarm.call ?? ""))</td><td>\(escape(alarm.detail ?? ""))</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += "</section>\n"

        let boundary = report.boundary
        out += "<section><h2>Period boundaries</h2>\n<ul>"
        out += "<li>Windows opened before the period, seen through their later records: \(boundary.windowsOpenedBeforePeriod)</li>"
        out += "<li>Windows still open at the end of the period: \(boundary.windowsOpenAtPeriodEnd)</li>"
        out += "<li>Outages begun before the period: \(boundary.outagesOpenAtStart); still open at its end: \(boundary.outagesOpenAtEnd)</li>"
        out += "</ul></section>\n</body></html>\n"
        return out
    }

    /// One row per feed with its outages, and one row of control failures (a mark per failure,
    /// red while unprotected, amber once recovered or taken over by a fallback) and drifts.
    static func timeline(_ report: Report) -> String {
        let feeds = Array(Set(report.outages.map(\.feed))).sorted()
        let rowHeight = 22.0
        let left = 150.0
        let width = 900.0
        let plot = width - left - 10
        let rows = feeds.count + 1
        let height = Double(rows) * rowHeight + 30
        let start = Double(report.period.since)
        let span = max(1, Double(report.period.until - report.period.since))
        func x(_ time: Int64?) -> Double {
            guard let time else { return left }
            return left + max(0, min(1, (Double(time) - start) / span)) * plot
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
        svg += "aria-label=\"Timeline of feed outages and control failures\">\n"
        svg += "<rect x=\"\(n(left))\" y=\"0\" width=\"\(n(plot))\" height=\"\(n(Double(rows) * rowHeight))\" fill=\"#f4f4f4\" stroke=\"#999\"/>\n"
        for (index, feed) in feeds.enumerated() {
            let y = Double(index) * rowHeight
            svg += "<text x=\"4\" y=\"\(n(y + 15))\" font-size=\"12\">feed \(escape(String(feed.prefix(18))))</text>\n"
            for outage in report.outages where outage.feed == feed {
                let x0 = x(outage.downAt)
                let x1 = outage.upAt.map { x($0) } ?? (left + plot)
                svg += "<rect x=\"\(n(x0))\" y=\"\(n(y + 3))\" width=\"\(n(max(1.5, x1 - x0)))\" height=\"\(n(rowHeight - 6))\" fill=\"#c00\">"
                svg += "<title>\(escape(feed)) down \(escape(outage.downAt.map(ReportTime.iso) ?? "before the period"))</title></rect>\n"
            }
        }
        let failureY = Double(feeds.count) * rowHeight
        svg += "<text x=\"4\" y=\"\(n(failureY + 15))\" font-size=\"12\">control failures</text>\n"
        for entry in report.unconfirmed {
            let color = entry.outcome == "recovered" || entry.outcome == "fallback-confirmed" ? "#d80" : "#c00"
            svg += "<circle cx=\"\(n(x(entry.failedAt ?? entry.openedAt)))\" cy=\"\(n(failureY + rowHeight / 2))\" r=\"5\" fill=\"\(color)\">"
            svg += "<title>\(escape(entry.policy)) call \(escape(entry.call)): \(escape(ReportTextRenderer.outcomeText(entry)))</title></circle>\n"
        }
        for drift in report.drifts {
            svg += "<rect x=\"\(n(x(drift.time) - 3))\" y=\"\(n(failureY + 5))\" width=\"6\" height=\"\(n(rowHeight - 10))\" fill=\"#880\">"
            svg += "<title>drift on call \(escape(drift.call))</title></rect>\n"
        }
        let axisY = Double(rows) * rowHeight + 18
        svg += "<text x=\"\(n(left))\" y=\"\(n(axisY))\" font-size=\"11\">\(escape(ReportTime.iso(report.period.since)))</text>\n"
        svg +=
            "<text x=\"\(n(left + plot))\" y=\"\(n(axisY))\" font-size=\"11\" text-anchor=\"end\">\(escape(ReportTime.iso(report.period.until)))</text>\n"
        svg += "</svg>\n"
        svg += "<p class=muted>Red bars: a feed down. Circles: control failures (red: unprotected at close or at the end of the "
        svg += "period; amber: recovered or protected by a fallback). Olive marks: drift.</p>\n"
        return svg
    }

    static func histogram(_ report: Report) -> String {
        let buckets = report.histogram
        guard !buckets.isEmpty else { return "" }
        let largest = max(1, buckets.map(\.count).max() ?? 1)
        let barWidth = 70.0
        let height = 160.0
        let width = Double(buckets.count) * barWidth + 20
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height + 40))\" role=\"img\" "
        svg += "aria-label=\"Histogram of time to protection\">\n"
        for (index, bucket) in buckets.enumerated() {
            let barHeight = Double(bucket.count) / Double(largest) * height
            let x = 10 + Double(index) * barWidth
            svg +=
                "<rect x=\"\(n(x + 5))\" y=\"\(n(height - barHeight + 14))\" width=\"\(n(barWidth - 10))\" height=\"\(n(barHeight))\" fill=\"#357\"/>\n"
            svg +=
                "<text x=\"\(n(x + barWidth / 2))\" y=\"\(n(height - barHeight + 10))\" font-size=\"11\" text-anchor=\"middle\">\(bucket.count)</text>\n"
            let label = bucket.upTo.map { "≤\(Int($0)) ms" } ?? ">\(Int(ReportAggregator.histogramBounds.last!)) ms"
            svg += "<text x=\"\(n(x + barWidth / 2))\" y=\"\(n(height + 30))\" font-size=\"11\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// A coordinate with one decimal: enough for a drawing, and no long digit runs in the page.
    static func n(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
