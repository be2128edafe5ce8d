import Foundation

/// What one run measured; written as JSON (snake_case keys) for the sweep, and printed.
struct Report: Codable, Sendable {
    struct Daemon: Codable, Sendable {
        var cpuSeconds: Double
        /// CPU seconds per second of measurement: 1.0 is one core fully used.
        var cpuCores: Double
        var peakRssMib: Double
        var rssBeforeCallsMib: Double?
        var rssWithCallsMib: Double
        var memoryPerCallBytes: Double?
        /// [seconds since the daemon started, RSS MiB], one sample per --sample-every.
        var rssCurve: [[Double]]
        var exitStatus: Int32?
    }

    struct Loadgen: Codable, Sendable {
        var cpuSeconds: Double
        var cpuCores: Double
        var confirmations: Int
        var ignoredConfirmations: Int
        var shortfall: Int
    }

    var transport: String
    /// Set on Voicenter runs only, so that a Genesys report keeps the shape its history has.
    var platform: String?
    /// Voicenter: the extensions the calls run on, and the daemon's `socketio_version`.
    var extensions: Int?
    var socketioVersion: String?
    var sink: Bool
    var reflex = false
    var targetRate: Double
    var calls: Int
    var capturePercent: Int
    var warmupSeconds: Double
    var durationSeconds: Double
    var eventsWritten = 0
    var eventsPerSecond = 0.0
    var latencyMs: LatencySummary?
    /// From the generator rendering the event, including its wait in the server's queue for the
    /// client's next long poll: what the platform's own queueing would add.
    var latencyFromGenerationMs: LatencySummary?
    /// Voicenter: from writing the NEWCALL of a call made inside an open extension window to its
    /// MuteUnmuteCalls request; apart from `latencyMs`, which times the windows' edges.
    var newCallLatencyMs: LatencySummary?
    var actions: Ledger.Counts?
    var daemon: Daemon?
    var loadgen: Loadgen?
    var server: ServerStatus.Counters?
    var error: String?

    func json() -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    var summary: String {
        let name = platform.map { "\($0) \(transport)" } ?? transport
        var lines = ["\(name)\(sink ? " (sink)" : reflex ? " (reflex)" : ""): target \(Int(targetRate)) events/s, \(calls) calls"]
        if let extensions { lines[0] += " on \(extensions) extensions" + (socketioVersion.map { ", Engine.IO \($0)" } ?? "") }
        if let error { lines.append("  error: \(error)") }
        lines.append(String(format: "  events/s achieved: %.0f (%d written in %.0f s)", eventsPerSecond, eventsWritten, durationSeconds))
        if let latency = latencyMs {
            lines.append(
                String(
                    format: "  event→request ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%d actions)",
                    latency.p50, latency.p90, latency.p99, latency.p999, latency.max, latency.count))
        }
        if let latency = newCallLatencyMs {
            lines.append(
                String(
                    format: "  new call in a window→request ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%d calls)",
                    latency.p50, latency.p90, latency.p99, latency.p999, latency.max, latency.count))
        }
        if let latency = latencyFromGenerationMs {
            lines.append(
                String(format: "  generated→request ms: p50 %.3f  p99 %.3f  max %.3f", latency.p50, latency.p99, latency.max))
        }
        if let actions {
            lines.append(
                "  actions: expected \(actions.expected), received \(actions.received), missed \(actions.missed), "
                    + "duplicated \(actions.duplicated), unexpected \(actions.unexpected)")
        }
        if let daemon {
            lines.append(
                String(
                    format: "  daemon: %.2f CPU s (%.2f cores), peak RSS %.1f MiB, RSS with calls %.1f MiB",
                    daemon.cpuSeconds, daemon.cpuCores, daemon.peakRssMib, daemon.rssWithCallsMib)
                    + (daemon.memoryPerCallBytes.map { String(format: ", %.0f bytes per call", $0) } ?? ""))
        }
        if let loadgen {
            lines.append(
                String(
                    format: "  loadgen: %.2f CPU s (%.2f cores), %d confirmations, shortfall %d events",
                    loadgen.cpuSeconds, loadgen.cpuCores, loadgen.confirmations, loadgen.shortfall))
        }
        return lines.joined(separator: "\n")
    }
}
