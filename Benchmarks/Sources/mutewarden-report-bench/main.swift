import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MutewardenLogging
import MutewardenModel
import MutewardenReport

// `mutewarden report` over a month of a busy site's audit records (make bench-report).
//
//   mutewarden-report-bench generate --records N --json FILE [--export FILE]
//       writes N records as `journalctl -o json` lines (every field journalctl adds, so lines
//       are the size of a real export), and optionally in journald's export format, from which
//       systemd-journal-remote builds a journal directory;
//   mutewarden-report-bench read (--from FILE | --directory DIR) [--rounds R]
//       builds the report for the whole month as `mutewarden report` does (reader, aggregator,
//       the three renderers) and prints the time of each part.
//
// The mix per captured call follows what the daemon writes: window.opened, an attempt and a
// confirmation for the mute and for the recording pause, window.closed, then the undos' attempts
// and confirmations (10 records). Around it: retries (2%), control failures with a fallback
// (0.1%), drift (0.05%), idle calls (0.2%), a feed outage and its resync every ~20,000 records,
// a reload a day, a restart a week.

struct Options {
    var command = ""
    var records = 1_000_000
    var json: String?
    var export: String?
    var from: String?
    var directory: String?
    var rounds = 1

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        command = rest.popFirst() ?? ""
        while let argument = rest.popFirst() {
            let value = rest.popFirst() ?? ""
            switch argument {
            case "--records": records = Int(value) ?? records
            case "--json": json = value
            case "--export": export = value
            case "--from": from = value
            case "--directory": directory = value
            case "--rounds": rounds = Int(value) ?? rounds
            default:
                print("unknown option \(argument)")
                exit(64)
            }
        }
    }
}

/// xorshift64*: the same month every run.
struct Random {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ fraction: Double) -> Bool { Double(next() % 1_000_000) < fraction * 1_000_000 }
}

final class Writer {
    let json: UnsafeMutablePointer<FILE>
    let export: UnsafeMutablePointer<FILE>?
    var written = 0
    var seqnum = 0
    var time: Int64 = 1_793_491_200_000_000  // 2026-11-01T00:00:00Z
    var random = Random()

    init(json: String, export: String?) {
        self.json = fopen(json, "w")!
        self.export = export.map { fopen($0, "w")! }
    }

    func close() {
        fclose(json)
        if let export { fclose(export) }
    }

    func emit(_ kind: AuditKind, _ severity: AuditSeverity, _ message: String, _ fields: AuditFields) {
        seqnum += 1
        written += 1
        var all: [(String, String)] = [
            (
                "__CURSOR",
                "s=8c1d0a5e2f6b4f3c9d7e1a2b3c4d5e6f;i=\(String(seqnum, radix: 16));b=2f8e9c1d3b4a4e5f8a7b6c5d4e3f2a1b;"
                    + "m=\(String(time / 3, radix: 16));t=\(String(time, radix: 16));x=\(String(UInt64(bitPattern: Int64(seqnum) &* 7919), radix: 16))"
            ),
            ("__REALTIME_TIMESTAMP", String(time + 40)), ("__MONOTONIC_TIMESTAMP", String(time / 3)),
            ("_BOOT_ID", "2f8e9c1d3b4a4e5f8a7b6c5d4e3f2a1b"), ("PRIORITY", String(severity.rawValue)),
            ("SYSLOG_IDENTIFIER", "mutewarden"), ("CODE_FILE", "MutewardenEngine/Dispatcher.swift"), ("CODE_LINE", "187"),
            ("CODE_FUNC", "audit(_:_:_:_:)"), ("MESSAGE_ID", JournalMessageID.of(kind)), ("MESSAGE", message),
            ("MW_AUDIT", kind.rawValue), ("MW_SEVERITY", AuditLogger.severityName(severity)),
        ]
        for (field, value) in fields { all.append((JournalLogHandler.fieldName(forMetadataKey: field.rawValue), value)) }
        all += [
            ("_TRANSPORT", "journal"), ("_PID", "4127"), ("_UID", "998"), ("_GID", "998"), ("_COMM", "mutewarden"),
            ("_EXE", "/usr/bin/mutewarden"), ("_CMDLINE", "/usr/bin/mutewarden run --config /etc/mutewarden/mutewarden.yaml"),
            ("_CAP_EFFECTIVE", "0"), ("_SYSTEMD_CGROUP", "/system.slice/mutewarden.service"),
            ("_SYSTEMD_UNIT", "mutewarden.service"), ("_SYSTEMD_SLICE", "system.slice"),
            ("_SYSTEMD_INVOCATION_ID", "5b0e1c2d3f4a4b6c8d9e0f1a2b3c4d5e"), ("_MACHINE_ID", "0a1b2c3d4e5f40718293a4b5c6d7e8f9"),
            ("_HOSTNAME", "pci-voice-01"), ("_SOURCE_REALTIME_TIMESTAMP", String(time)),
        ]
        var line = "{"
        for (index, (name, value)) in all.enumerated() {
            if index > 0 { line += "," }
            line += "\"\(name)\":\"\(escape(value))\""
        }
        line += "}\n"
        fputs(line, json)
        if let export {
            var entry = ""
            for (name, value) in all where name != "__CURSOR" { entry += "\(name)=\(value)\n" }
            entry += "\n"
            fputs(entry, export)
        }
    }

    func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    func advance(ms: Int64) { time += ms * 1000 }
}

func generate(_ options: Options) {
    let writer = Writer(json: options.json!, export: options.export)
    let feeds = ["gws-eu", "gws-us"]
    let digest = "sha256:" + String(repeating: "5e", count: 32)
    var window = 0
    // A month: about 2.6 s of platform time per record.
    let step = Int64(30 * 86_400_000) / Int64(options.records)
    writer.emit(.daemonStarted, .notice, "mutewarden 0.9.0 started: 2 feed(s), 3 target(s), 1 policy", [.result: "started"])
    writer.emit(.configurationLoaded, .notice, "configuration loaded", [.result: "loaded", .digest: digest])
    for feed in feeds { writer.emit(.feedUp, .notice, "feed \(feed) is up", [.feed: feed, .result: "up"]) }
    var lastDay = 0
    var lastWeek = 0
    while writer.written < options.records {
        window += 1
        let feed = feeds[writer.random.below(feeds.count)]
        let call = String(4_000_000_000 + UInt64(writer.random.below(900_000_000)))
        let ext = String(3000 + writer.random.below(900))
        let base: AuditFields = [.policy: "pci-card-capture", .feed: feed, .call: call, .window: String(window), .mode: "enforce", .extension: ext]
        writer.advance(ms: step * 6)
        writer.emit(
            .windowOpened, .notice, "pci-card-capture: window opened on call \(call)",
            base.overlaid(with: [.result: "opened", .attributes: "ivr_step=<redacted>,lang=en"]))
        let failing = writer.random.chance(0.001)
        for (action, target, undo) in [("mute", "gws-voice", "unmute"), ("pause-recording", "verba", "resume-recording")] {
            var fields = base.overlaid(with: [
                .target: target, .action: action, .idempotencyKey: "6f1c2d3e-4a5b-4c6d-8e7f-\(String(window, radix: 16))",
            ])
            fields.attempt = "1"
            writer.emit(.actionAttempt, .info, "pci-card-capture: \(action) via \(target), attempt 1", fields.overlaid(with: [.result: "sent"]))
            if writer.random.chance(0.02) {
                writer.advance(ms: 120)
                writer.emit(.actionRetry, .warning, "retrying", fields.overlaid(with: [.result: "retry", .error: "HTTP 503", .errorCode: "503"]))
                writer.emit(.actionAttempt, .info, "attempt 2", fields.overlaid(with: [.result: "sent", .attempt: "2"]))
            }
            if failing && action == "mute" {
                writer.advance(ms: 2000)
                writer.emit(
                    .actionFailed, .critical, "PCI control failure",
                    fields.overlaid(with: [.result: "failed", .error: "timed out", .errorCode: "28"]))
                writer.emit(.actionAttempt, .info, "fallback", fields.overlaid(with: [.target: "gws-backup", .result: "sent"]))
                writer.advance(ms: 150)
                writer.emit(
                    .actionConfirmed, .info, "confirmed", fields.overlaid(with: [.target: "gws-backup", .result: "confirmed", .latencyMs: "150.000"]))
            } else {
                let latency = 20 + writer.random.below(180) + (writer.random.chance(0.01) ? 900 : 0)
                writer.advance(ms: Int64(latency))
                writer.emit(
                    .actionConfirmed, .info, "confirmed after 1 attempt(s)",
                    fields.overlaid(with: [.result: "confirmed", .latencyMs: "\(latency).000"]))
            }
            if writer.random.chance(0.0005) {
                writer.emit(
                    .windowDrift, .warning, "drift",
                    base.overlaid(with: [.target: target, .action: action, .reason: "the agent is unmuted", .result: "reapplied"]))
            }
            _ = undo
        }
        writer.advance(ms: step * 4)
        if writer.random.chance(0.002) {
            writer.emit(.callExpired, .warning, "call \(call) had no event", [.feed: feed, .call: call, .result: "expired"])
            writer.emit(.windowClosed, .notice, "closed", base.overlaid(with: [.result: "call-expired"]))
            continue
        }
        writer.emit(.windowClosed, .notice, "window closed", base.overlaid(with: [.result: writer.random.chance(0.3) ? "call-ended" : "stopped"]))
        for (undo, target) in [("unmute", "gws-voice"), ("resume-recording", "verba")] {
            let fields = base.overlaid(with: [.target: target, .action: undo, .attempt: "1"])
            writer.emit(.actionAttempt, .info, "\(undo), attempt 1", fields.overlaid(with: [.result: "sent"]))
            writer.emit(.actionConfirmed, .info, "confirmed", fields.overlaid(with: [.result: "confirmed", .latencyMs: "40.000"]))
        }
        if window % 2000 == 0 {
            let down = feeds[window / 2000 % feeds.count]
            writer.emit(
                .feedDown, .error, "feed \(down) is down",
                [.feed: down, .result: "down", .reason: "connection lost", .calls: String(writer.random.below(40))])
            writer.advance(ms: 5000 + Int64(writer.random.below(60_000)))
            writer.emit(.feedUp, .notice, "feed \(down) is up", [.feed: down, .result: "up"])
            writer.emit(.feedUp, .notice, "resynchronized", [.feed: down, .result: "resynced", .calls: String(writer.random.below(40))])
        }
        let day = Int((writer.time - 1_793_491_200_000_000) / 86_400_000_000)
        if day != lastDay {
            lastDay = day
            writer.emit(.configurationLoaded, .notice, "configuration reloaded", [.result: "reloaded", .digest: digest])
            if day / 7 != lastWeek {
                lastWeek = day / 7
                writer.emit(.daemonStopping, .notice, "stopping", [.result: "stopping"])
                writer.emit(.daemonStopping, .notice, "stopped", [.result: "stopped"])
                writer.emit(.daemonStarted, .notice, "started", [.result: "started"])
                writer.emit(.configurationLoaded, .notice, "loaded", [.result: "loaded", .digest: digest])
                for feed in feeds { writer.emit(.feedUp, .notice, "feed \(feed) is up", [.feed: feed, .result: "up"]) }
            }
        }
    }
    writer.close()
    print("wrote \(writer.written) records (\(window) windows) to \(options.json!)" + (options.export.map { " and \($0)" } ?? ""))
}

func seconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

func read(_ options: Options) throws {
    let period = ReportPeriod(since: 1_793_491_200_000_000, until: 1_793_491_200_000_000 + 31 * 86_400_000_000)
    for round in 1...options.rounds {
        let start = seconds()
        let cpu = cpuSeconds()
        var aggregator = ReportAggregator(
            period: period, source: .init(kind: options.from != nil ? "export" : "journal", path: options.from ?? options.directory))
        if let from = options.from {
            try ExportReader().read(path: from, into: &aggregator, period: period)
        } else {
            try JournalReader(directory: options.directory).read(into: &aggregator, period: period)
        }
        let read = seconds()
        let report = aggregator.finish()
        let text = ReportTextRenderer.render(report)
        let json = ReportJSONRenderer.render(report, generated: 0)
        let html = ReportHTMLRenderer.render(report, generated: 0)
        let end = seconds()
        let records = report.source.records
        print(
            "round \(round): \(records) records in \(String(format: "%.2f", end - start)) s wall, "
                + "\(String(format: "%.2f", cpuSeconds() - cpu)) s CPU (read and aggregate \(String(format: "%.2f", read - start)) s, "
                + "finish and render \(String(format: "%.3f", end - read)) s); \(Int(Double(records) / (end - start))) records/s; "
                + "\(report.verdict.captures) captures, \(report.outages.count) outages, \(report.unconfirmed.count) failures, "
                + "malformed \(report.source.malformed); outputs \(text.utf8.count)/\(json.utf8.count)/\(html.utf8.count) bytes")
    }
}

let options = Options(CommandLine.arguments)
switch options.command {
case "generate" where options.json != nil: generate(options)
case "read" where options.from != nil || options.directory != nil:
    do { try read(options) } catch {
        print("error: \(error)")
        exit(66)
    }
default:
    print("usage: mutewarden-report-bench generate --records N --json FILE [--export FILE] | read (--from FILE | --directory DIR) [--rounds R]")
    exit(64)
}
