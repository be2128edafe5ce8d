import Foundation
import MutewardenTesting
import Testing

@Suite(.enabled(if: Peers.analyzeRuns)) struct UnitFileTests {
    static let unitPath = packageRoot.appendingPathComponent("systemd/mutewarden.service").path

    /// The unit with `ExecStart=` pointing at a binary that exists, under the same file name.
    ///
    /// `systemd-analyze verify` checks that the ExecStart binary exists and is executable, and
    /// `/usr/local/bin/mutewarden` is not installed where the tests run. Only that path changes:
    /// the arguments and every other line are verified as shipped.
    static func verifiableCopy(in directory: TemporaryDirectory) throws -> String {
        let text = try String(contentsOfFile: unitPath, encoding: .utf8)
        let replaced = text.replacingOccurrences(
            of: "\nExecStart=/usr/local/bin/mutewarden ", with: "\nExecStart=/bin/true ")
        #expect(replaced != text, "ExecStart no longer starts /usr/local/bin/mutewarden")
        let path = directory.path + "/mutewarden.service"
        try replaced.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func verifyIsClean() async throws {
        guard Peers.require(Peers.missingForUnit) else { return }
        let directory = try TemporaryDirectory()
        let unit = try Self.verifiableCopy(in: directory)
        let result = try await runProgram(Peers.systemdAnalyze!, ["verify", unit])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)")
    }

    @Test func securityExposureIsAtMostTwo() async throws {
        guard Peers.require(Peers.missingForUnit) else { return }
        let score = try await Self.exposure(of: Self.unitPath)
        #expect(score.map { $0 <= 2.0 } == true, "exposure \(String(describing: score))")
    }

    /// The drop-in operations.md gives for the callback ingress and the metrics listener (their
    /// ports allowed past `SocketBindDeny=any`) leaves the rating as it was.
    @Test func thePortDropInOfTheOperationsGuideKeepsTheExposure() async throws {
        guard Peers.require(Peers.missingForUnit) else { return }
        let guide = try String(contentsOf: packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let dropIn = try #require(guide.components(separatedBy: "```ini\n").dropFirst().first?.components(separatedBy: "```").first)
        #expect(dropIn.contains("SocketBindAllow=tcp:9464"))
        let directory = try TemporaryDirectory()
        let text = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
        let allowed = text.replacingOccurrences(
            of: "\n[Install]", with: "\n" + dropIn.replacingOccurrences(of: "[Service]\n", with: "") + "\n[Install]")
        #expect(allowed != text)
        let path = directory.path + "/mutewarden.service"
        try allowed.write(toFile: path, atomically: true, encoding: .utf8)
        let shipped = try await Self.exposure(of: Self.unitPath)
        let withDropIn = try await Self.exposure(of: path)
        #expect(withDropIn != nil && withDropIn == shipped, "\(String(describing: withDropIn)) vs \(String(describing: shipped))")
    }

    /// "→ Overall exposure level for mutewarden.service: 1.2 OK 🙂"
    static func exposure(of unit: String) async throws -> Double? {
        let result = try await runProgram(Peers.systemdAnalyze!, ["security", "--offline=true", "--no-pager", unit])
        #expect(result.status == 0, "\(result.output)")
        let line = result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        if score == nil { Issue.record("no overall exposure in: \(result.output)") }
        return score
    }

    @Test func keepsWhatTheDaemonRelieson() throws {
        let text = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for required in [
            "Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure",
            "RestartPreventExitStatus=78",
            "ExecStart=/usr/local/bin/mutewarden run --config /etc/mutewarden/mutewarden.yaml",
            "ExecReload=/bin/kill -HUP $MAINPID", "ConfigurationDirectory=mutewarden",
            "StateDirectory=mutewarden", "DynamicUser=yes", "TimeoutStopSec=10s",
            "RuntimeDirectory=mutewarden", "RuntimeDirectoryMode=0700",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
            "# LoadCredential=gws-password:/etc/mutewarden/credentials/gws-password",
        ] {
            #expect(lines.contains(required), "missing line: \(required)")
        }
    }
}
