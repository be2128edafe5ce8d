import Foundation
import MutewardenTesting
import Testing

/// The metrics listener of the built binary, seen from outside: the sockets the process listens
/// on, read from /proc, and a scrape.
@Suite(.serialized) struct MetricsEndToEndTests {
    @Test func theDemoListensOnNoPortByDefault() async throws {
        let demo = try privateDemoConfiguration()
        let daemon = try await BinaryRunner.start(["run", "--config", demo.config.path])
        try await withPeer(daemon) { daemon in
            try await daemon.waitForLine(containing: "audit=window.opened", timeout: .seconds(30))
            #expect(try listeningSockets(of: daemon.processIdentifier) == [])
            #expect(!daemon.stderr.contains("metrics listener"))
        }
    }

    @Test func enabledMetricsListenOnLoopbackOnlyAndAreScraped() async throws {
        let demo = try privateDemoConfiguration()
        let port = try freePort()
        let dropIns = demo.config.deletingLastPathComponent().appendingPathComponent("conf.d")
        try FileManager.default.createDirectory(at: dropIns, withIntermediateDirectories: true)
        try "metrics:\n  enabled: true\n  port: \(port)\n".write(
            to: dropIns.appendingPathComponent("metrics.yaml"), atomically: true, encoding: .utf8)
        let daemon = try await BinaryRunner.start(["run", "--config", demo.config.path])
        try await withPeer(daemon) { daemon in
            try await daemon.waitForLine(containing: "metrics listener serving http://127.0.0.1:\(port)/metrics", timeout: .seconds(30))
            #expect(try listeningSockets(of: daemon.processIdentifier) == ["127.0.0.1:\(port)"])
            try await eventually("events in the scrape", timeout: .seconds(30), every: .milliseconds(200)) { () async throws -> Bool? in
                try await PrometheusScrape.fetch("http://127.0.0.1:\(port)/metrics").value("mutewarden_events_total", ["feed": "sim"]) > 0
                    ? true : nil
            }
        }
    }
}

/// The TCP sockets `pid` listens on, as "address:port": its descriptors' socket inodes matched
/// with the LISTEN entries of its network namespace's /proc/net/tcp and tcp6.
func listeningSockets(of pid: Int32) throws -> [String] {
    let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
    let inodes = Set(
        descriptors.compactMap { descriptor -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)"),
                target.hasPrefix("socket:[")
            else { return nil }
            return String(target.dropFirst("socket:[".count).dropLast())
        })
    var found: [String] = []
    for table in ["tcp", "tcp6"] {
        let text = try String(contentsOfFile: "/proc/\(pid)/net/\(table)", encoding: .utf8)
        for line in text.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: " ")
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            guard columns.count > 9, columns[3] == "0A", inodes.contains(String(columns[9])) else { continue }
            found.append(decode(String(columns[1])))
        }
    }
    return found.sorted()
}

/// "0100007F:1F90" → "127.0.0.1:8080"; IPv6 addresses are left in the kernel's hex.
private func decode(_ address: String) -> String {
    let parts = address.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1], radix: 16) else { return address }
    guard parts[0].count == 8, let raw = UInt32(parts[0], radix: 16) else { return "[\(parts[0])]:\(port)" }
    let bytes = [raw & 0xff, (raw >> 8) & 0xff, (raw >> 16) & 0xff, raw >> 24]
    return bytes.map(String.init).joined(separator: ".") + ":\(port)"
}
