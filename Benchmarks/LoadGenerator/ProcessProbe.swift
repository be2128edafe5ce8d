import Foundation

/// Reads another process's CPU time and memory from /proc, as `top` and `ps` would.
struct ProcessProbe: Sendable {
    let pid: Int32

    /// User + system CPU seconds (utime and stime of /proc/PID/stat), all threads.
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state is field 3; utime 14 and stime 15 (1-based, proc(5)).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    struct Memory: Sendable {
        /// Resident set now (VmRSS) and at its highest (VmHWM), in KiB.
        var rssKiB: Int
        var peakKiB: Int
    }

    func memory() -> Memory? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var rss: Int?
        var peak: Int?
        for line in status.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") { rss = kibibytes(line) }
            if line.hasPrefix("VmHWM:") { peak = kibibytes(line) }
        }
        guard let rss, let peak else { return nil }
        return Memory(rssKiB: rss, peakKiB: peak)
    }

    private func kibibytes(_ line: Substring) -> Int? {
        line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
    }

    static var current: ProcessProbe { ProcessProbe(pid: getpid()) }
}
