import ArgumentParser
import MutewardenReport

#if canImport(Glibc)
import Glibc
#endif

extension ExitStatus {
    /// EX_NOINPUT: the journal or the export cannot be opened or read.
    static let noInput: Int32 = 66
    /// EX_CANTCREAT: the output file cannot be written.
    static let cannotCreate: Int32 = 73
}

/// `mutewarden report`: the evidence for a period, from the journal or from an export of it
/// (docs/operations.md#evidence-for-your-assessor).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Build the evidence for a period from the daemon's audit records: captures, time to protection, "
            + "control failures, feed outages, configuration changes, and a verdict.")

    @Option(help: "Start of the period, UTC: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z], or @SECONDS since the epoch.")
    var since: String

    @Option(help: "End of the period, excluded, in the same forms (default: now).")
    var until: String?

    @Option(name: .customLong("from"), help: "Read a `journalctl -o json` export instead of the journal ('-' for standard input).")
    var from: String?

    @Option(
        name: [.customLong("directory"), .customLong("journal"), .customShort("D")],
        help: "Read the journal files in this directory (as journalctl --directory) instead of the system journal.")
    var directory: String?

    @Option(help: "The daemon's SYSLOG_IDENTIFIER.")
    var identifier = "mutewarden"

    @Option(help: "text (the default, for a terminal), json (docs/report.schema.json) or html (one self-contained page).")
    var format: Format = .text

    @Option(name: [.customLong("output"), .customShort("o")], help: "Write the report to this file instead of standard output.")
    var output: String?

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, html
    }

    func validate() throws {
        guard let start = ReportTime.parse(since) else {
            throw ValidationError("--since expects a UTC time such as 2026-11-01 or 2026-11-01T08:00:00Z, not '\(since)'")
        }
        if let until {
            guard let end = ReportTime.parse(until) else {
                throw ValidationError("--until expects a UTC time such as 2026-12-01 or 2026-12-01T08:00:00Z, not '\(until)'")
            }
            guard end > start else { throw ValidationError("--until must be after --since") }
        }
        if from != nil, directory != nil {
            throw ValidationError("--from reads an export, --directory a journal: give one of them")
        }
    }

    func run() throws {
        let now = Self.now()
        let period = ReportPeriod(since: ReportTime.parse(since)!, until: until.flatMap(ReportTime.parse) ?? now)
        guard period.until > period.since else {
            printError("mutewarden report: --since is in the future")
            throw ExitCode(ExitStatus.usage)
        }
        var aggregator: ReportAggregator
        do {
            if let from {
                aggregator = ReportAggregator(period: period, source: .init(kind: "export", path: from))
                try ExportReader(identifier: identifier).read(path: from, into: &aggregator, period: period)
            } else {
                aggregator = ReportAggregator(period: period, source: .init(kind: "journal", path: directory))
                try JournalReader(directory: directory, identifier: identifier).read(into: &aggregator, period: period)
            }
        } catch {
            printError("mutewarden report: \(error)")
            throw ExitCode(ExitStatus.noInput)
        }
        let report = aggregator.finish()
        let text: String
        switch format {
        case .text: text = ReportTextRenderer.render(report)
        case .json: text = ReportJSONRenderer.render(report, generated: now)
        case .html: text = ReportHTMLRenderer.render(report, generated: now)
        }
        if let output {
            guard Self.write(text, to: output) else {
                printError("mutewarden report: cannot write \(output): \(String(cString: strerror(errno)))")
                throw ExitCode(ExitStatus.cannotCreate)
            }
        } else {
            print(text, terminator: "")
        }
        if report.source.malformed > 0 {
            printError("mutewarden report: \(report.source.malformed) malformed line(s) or entries skipped (counted in the report)")
        }
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }

    /// Writes `text` to a temporary file beside `path`, then renames it over `path`: a reader
    /// never sees half a report.
    static func write(_ text: String, to path: String) -> Bool {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return false }
        let bytes = Array(text.utf8)
        var written = 0
        let ok = bytes.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += count
            }
            return true
        }
        let synced = ok && fsync(descriptor) == 0
        let saved = errno
        close(descriptor)
        guard synced, rename(temporary, path) == 0 else {
            let failure = synced ? errno : saved
            unlink(temporary)
            errno = failure
            return false
        }
        return true
    }
}
