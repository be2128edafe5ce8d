#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MutewardenJSON

/// Times in the report's outputs: ISO 8601 in UTC with milliseconds, `2026-12-03T18:40:00.123Z`.
public enum ReportTime {
    public static func iso(_ microseconds: Int64) -> String {
        var seconds = time_t(microseconds.dividedReportingOverflow(by: 1_000_000).partialValue)
        var remainder = microseconds % 1_000_000
        if remainder < 0 {
            seconds -= 1
            remainder += 1_000_000
        }
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return String(microseconds) }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(remainder / 1000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }

    /// Parses what `--since`/`--until` take: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` or with a
    /// space, optionally ending in `Z`, all UTC; or `@` and seconds since the epoch.
    public static func parse(_ text: String) -> Int64? {
        if text.hasPrefix("@") {
            guard let seconds = Int64(text.dropFirst()), seconds >= 0, seconds < 253_402_300_800 else { return nil }
            return seconds * 1_000_000
        }
        var body = Substring(text)
        if body.hasSuffix("Z") { body = body.dropLast() }
        let pieces = body.split(whereSeparator: { $0 == "T" || $0 == " " })
        guard pieces.count == 1 || pieces.count == 2 else { return nil }
        let date = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
        guard date.count == 3, date[0].count == 4, date[1].count == 2, date[2].count == 2,
            let year = Int32(date[0]), let month = Int32(date[1]), let day = Int32(date[2]),
            (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour: Int32 = 0
        var minute: Int32 = 0
        var second: Int32 = 0
        if pieces.count == 2 {
            let time = pieces[1].split(separator: ":", omittingEmptySubsequences: false)
            guard time.count == 2 || time.count == 3, time.allSatisfy({ $0.count == 2 }),
                let h = Int32(time[0]), let m = Int32(time[1]), (0...23).contains(h), (0...59).contains(m)
            else { return nil }
            hour = h
            minute = m
            if time.count == 3 {
                guard let s = Int32(time[2]), (0...60).contains(s) else { return nil }
                second = s
            }
        }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let seconds = timegm(&parts)
        guard seconds >= 0 else { return nil }
        // timegm normalizes 31 February into March: refuse what it had to move.
        var check = tm()
        var back = seconds
        guard gmtime_r(&back, &check) != nil, check.tm_mday == day, check.tm_mon == month - 1 else { return nil }
        return Int64(seconds) * 1_000_000
    }
}

/// The report as JSON, in the stable schema `docs/report.schema.json` describes
/// (`"schema": "mutewarden-report/1"`). Members keep one order, so two reports of the same
/// records are the same bytes but for `generated`.
public enum ReportJSONRenderer {
    public static let schema = "mutewarden-report/1"

    public static func render(_ report: Report, generated: Int64) -> String {
        var text = value(report, generated: generated).serialized
        text.append("\n")
        return text
    }

    static func value(_ report: Report, generated: Int64) -> JSONValue {
        var members: [(String, JSONValue)] = []
        members.append(("schema", .string(schema)))
        members.append(("generated", .string(ReportTime.iso(generated))))
        members.append(
            ("period", .object([("since", .string(ReportTime.iso(report.period.since))), ("until", .string(ReportTime.iso(report.period.until)))])))
        members.append(("source", source(report.source)))
        members.append(("verdict", verdict(report.verdict)))
        members.append(("windows", .array(report.windows.map(group))))
        let targets: [JSONValue] = report.targets.map(target)
        let histogram: [JSONValue] = report.histogram.map { bucket in
            .object([("up_to_ms", bucket.upTo.map(ms) ?? .null), ("count", count(bucket.count))])
        }
        members.append(("time_to_protection", .object([("targets", .array(targets)), ("histogram", .array(histogram))])))
        members.append(("unconfirmed", .array(report.unconfirmed.map(unconfirmed))))
        members.append(("feed_outages", .array(report.outages.map(outage))))
        members.append(("configuration", .array(report.configurations.map(configuration))))
        let daemon: [JSONValue] = report.daemon.map { event in
            .object([("at", .string(ReportTime.iso(event.time))), ("event", .string(event.event))])
        }
        members.append(("daemon", .array(daemon)))
        members.append(("drift", .array(report.drifts.map(drift))))
        members.append(("other_alarms", .array(report.alarms.map(alarm))))
        members.append(("boundary", boundary(report.boundary)))
        return .object(members)
    }

    private static func source(_ source: Report.Source) -> JSONValue {
        .object([
            ("kind", .string(source.kind)), ("path", string(source.path)), ("records", count(source.records)),
            ("malformed", count(source.malformed)), ("skipped", count(source.skipped)),
            ("outside_period", count(source.outsidePeriod)),
        ])
    }

    private static func verdict(_ verdict: Report.Verdict) -> JSONValue {
        let exceptions: [JSONValue] = verdict.exceptions.map { .string($0) }
        return .object([
            ("ok", .bool(verdict.ok)), ("line", .string(verdict.line)), ("captures", count(verdict.captures)),
            ("protected", count(verdict.protected)), ("alarmed", count(verdict.alarmed)), ("dry_run", count(verdict.dryRun)),
            ("pending_at_period_end", count(verdict.pendingAtPeriodEnd)), ("exceptions", .array(exceptions)),
        ])
    }

    private static func group(_ group: Report.WindowGroup) -> JSONValue {
        let ended: [(String, JSONValue)] = group.ended.keys.sorted().map { ($0, count(group.ended[$0]!)) }
        return .object([
            ("policy", .string(group.policy)), ("feed", .string(group.feed)), ("mode", .string(group.mode)),
            ("opened", count(group.opened)), ("extended", count(group.extended)), ("protected", count(group.protected)),
            ("opened_before_period", count(group.openedBeforePeriod)), ("ended", .object(ended)),
        ])
    }

    private static func target(_ target: Report.TargetLatency) -> JSONValue {
        .object([
            ("target", .string(target.target)), ("confirmed", count(target.confirmed)), ("p50_ms", ms(target.p50)),
            ("p90_ms", ms(target.p90)), ("p99_ms", ms(target.p99)), ("max_ms", ms(target.max)),
        ])
    }

    private static func unconfirmed(_ entry: Report.UnconfirmedWindow) -> JSONValue {
        let fallbacks: [JSONValue] = entry.fallbacks.map { .string($0) }
        var members: [(String, JSONValue)] = [
            ("opened_at", time(entry.openedAt)), ("failed_at", time(entry.failedAt)), ("policy", .string(entry.policy)),
            ("feed", .string(entry.feed)), ("call", .string(entry.call)), ("window", .string(entry.window)),
        ]
        members += [
            ("action", .string(entry.action)), ("target", .string(entry.target)), ("error", string(entry.error)),
            ("error_code", string(entry.errorCode)), ("fallbacks", .array(fallbacks)), ("outcome", .string(entry.outcome)),
            ("unprotected_ms", entry.unprotectedMs.map(ms) ?? .null), ("alarmed", .bool(entry.alarmed)),
        ]
        return .object(members)
    }

    private static func outage(_ outage: Report.FeedOutage) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("feed", .string(outage.feed)), ("down_at", time(outage.downAt)), ("up_at", time(outage.upAt)),
            ("duration_ms", outage.durationMs.map(ms) ?? .null), ("result", .string(outage.result)),
        ]
        members += [
            ("reason", string(outage.reason)), ("calls_active", outage.callsActive.map(count) ?? .null),
            ("resync_at", time(outage.resyncAt)), ("resync_calls", outage.resyncCalls.map(count) ?? .null),
            ("ended_by", string(outage.endedBy)),
        ]
        return .object(members)
    }

    private static func configuration(_ event: Report.ConfigurationEvent) -> JSONValue {
        .object([
            ("at", .string(ReportTime.iso(event.time))), ("result", .string(event.result)), ("digest", string(event.digest)),
            ("error", string(event.error)),
        ])
    }

    private static func drift(_ drift: Report.Drift) -> JSONValue {
        .object([
            ("at", .string(ReportTime.iso(drift.time))), ("policy", .string(drift.policy)), ("feed", .string(drift.feed)),
            ("call", .string(drift.call)), ("target", .string(drift.target)), ("reason", .string(drift.reason)),
            ("critical", .bool(drift.critical)),
        ])
    }

    private static func alarm(_ alarm: Report.OtherAlarm) -> JSONValue {
        .object([
            ("at", .string(ReportTime.iso(alarm.time))), ("kind", .string(alarm.kind)), ("feed", string(alarm.feed)),
            ("call", string(alarm.call)), ("detail", string(alarm.detail)),
        ])
    }

    private static func boundary(_ boundary: Report.Boundary) -> JSONValue {
        .object([
            ("windows_opened_before_period", count(boundary.windowsOpenedBeforePeriod)),
            ("windows_open_at_period_end", count(boundary.windowsOpenAtPeriodEnd)),
            ("outages_open_at_start", count(boundary.outagesOpenAtStart)),
            ("outages_open_at_end", count(boundary.outagesOpenAtEnd)),
        ])
    }

    private static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    private static func count(_ value: Int) -> JSONValue { .number(Double(value)) }
    /// Milliseconds to the microsecond, as the journal's times allow.
    private static func ms(_ value: Double) -> JSONValue { .number((value * 1000).rounded() / 1000) }
    private static func time(_ value: Int64?) -> JSONValue { value.map { .string(ReportTime.iso($0)) } ?? .null }
}
