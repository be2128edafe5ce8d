import MutewardenModel

/// `mutewarden status` for people: a screenful, each line cut to the terminal's width. Scripts
/// read `--json` instead; this layout may change.
public enum StatusText {
    /// Windows and actions shown; the JSON lists more.
    public static let rowsShown = 10

    public static func render(_ status: DaemonStatus, width: Int = 100) -> String {
        var lines: [String] = []
        lines.append(
            "mutewarden \(status.version) (pid \(status.pid)) \(status.state), up \(duration(status.uptimeSeconds)) "
                + "since \(status.startedAt)")
        lines.append(
            "configuration: \(status.configuration.files.joined(separator: ", ")), generation \(status.configuration.generation), "
                + "loaded \(status.configuration.loadedAt)")
        // A digest is 71 characters: on a line of its own, every line still fits a terminal.
        if let digest = status.configuration.digest { lines.append("configuration digest: \(digest)") }
        let engine = status.engine
        var load =
            "engine: \(engine.callsTracked) call(s) tracked"
            + (engine.callsCapacity.map { " of \($0)" } ?? "") + ", queue \(engine.queueDepth), "
        if let rate = engine.eventsPerSecondRecent {
            load += "\(number(rate)) events/s (10 s)"
            if let minute = engine.eventsPerSecondMinute { load += ", \(number(minute)) (1 min)" }
        } else {
            load += "events/s not measured yet"
        }
        load += ", \(engine.eventsProcessed) events since start"
        lines.append(load)
        if !engine.answered { lines.append("  ENGINE DID NOT ANSWER within 0.5 s: counters are its last published ones") }
        if engine.callsRefused > 0 { lines.append("  \(engine.callsRefused) call(s) refused: the tracker was full") }

        lines.append("feeds:")
        if status.feeds.isEmpty { lines.append("  none") }
        let feedWidth = status.feeds.map(\.name.count).max() ?? 0
        for feed in status.feeds {
            lines.append(
                "  " + pad(feed.name, feedWidth) + "  " + (feed.state == "up" ? "up  " : "DOWN") + " for "
                    + duration(feed.sinceSeconds) + ", last event "
                    + (feed.lastEventSecondsAgo.map { duration($0) + " ago" } ?? "none") + (feed.state == "up" ? "" : ": \(feed.detail)"))
        }

        let unconfirmed = status.windows.listed.filter { !$0.confirmed }.count
        lines.append(
            "windows open: \(status.windows.open)"
                + (status.windows.listed.isEmpty ? "" : " (oldest first; \(unconfirmed) of those listed not fully confirmed)"))
        for window in status.windows.listed.prefix(rowsShown) {
            let actions = window.actions.map { action in
                "\(action.operation) \(action.address) via \(action.targets.joined(separator: "→")) "
                    + action.state.uppercased(if: action.state == "failed")
                    + (action.timeToProtectionMs.map { " in \(number($0)) ms" } ?? "")
            }
            lines.append(
                "  " + pad(duration(window.ageSeconds), 7) + " " + window.policy + " on call " + window.call
                    + (window.agentExtension.map { " (ext \($0))" } ?? "") + (window.mode == "dry-run" ? " [dry-run]" : "")
                    + ": " + (actions.isEmpty ? "no action" : actions.joined(separator: "; ")))
        }
        if status.windows.open > min(status.windows.listed.count, rowsShown) {
            lines.append("  … \(status.windows.open - min(status.windows.listed.count, rowsShown)) more (--json lists \(DaemonStatus.listLimit))")
        }

        let phases = status.actions.byPhase.keys.sorted().map { "\($0) \(status.actions.byPhase[$0]!)" }
        lines.append("actions in progress: \(status.actions.inProgress)" + (phases.isEmpty ? "" : " (\(phases.joined(separator: ", ")))"))
        for job in status.actions.listed.prefix(rowsShown) {
            lines.append(
                "  " + pad(job.ageSeconds.map(duration) ?? "-", 7) + " " + "\(job.operation) \(job.address) via \(job.target): "
                    + job.phase + ", attempt \(job.attempts)" + (job.enforcing ? ", enforcing" : "")
                    + (job.lastError.map { ", last error: " + (job.lastErrorCode.map { "[\($0)] " } ?? "") + $0 } ?? ""))
        }
        if status.actions.inProgress > min(status.actions.listed.count, rowsShown) {
            lines.append("  … \(status.actions.inProgress - min(status.actions.listed.count, rowsShown)) more")
        }

        let failures = status.controlFailures
        lines.append("control failures: \(failures.lastHour) in the last hour, \(failures.sinceStart) since start")
        for failure in failures.recent.suffix(5) {
            lines.append("  " + duration(failure.secondsAgo) + " ago: " + failure.message)
        }
        return lines.map { cut($0, to: width) }.joined(separator: "\n")
    }

    static func cut(_ line: String, to width: Int) -> String {
        guard width > 1, line.count > width else { return line }
        return String(line.prefix(width - 1)) + "…"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// 0.4s, 12s, 3m05s, 2h10m, 3d04h.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let value = max(0, seconds)
        if value < 10 { return number(value) + "s" }
        let whole = Int(value.rounded(.down))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m" + two(whole % 60) + "s" }
        if whole < 86_400 { return "\(whole / 3600)h" + two(whole / 60 % 60) + "m" }
        return "\(whole / 86_400)d" + two(whole / 3600 % 24) + "h"
    }

    static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// One decimal below 100, none above.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "?" }
        if value >= 100 { return String(Int(value.rounded())) }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension String {
    fileprivate func uppercased(if condition: Bool) -> String { condition ? uppercased() : self }
}
