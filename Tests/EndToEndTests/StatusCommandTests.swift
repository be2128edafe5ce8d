import Foundation
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mutewarden status` against the daemon binary, as an operator runs it: a running daemon on the
/// simulated demo, a stopped one, one that does not answer, and a user who may not ask.
@Suite struct StatusCommandTests {
    /// config/demo.yaml with its own state directory and control socket, in a directory of its
    /// own; the card value may be replaced to plant a card number in the calls' attributes.
    private func demo(captureValue: String? = nil, socketDirectory: URL? = nil) throws -> (config: URL, directory: URL, socket: String) {
        let (config, state) = try privateDemoConfiguration()
        let directory = state.deletingLastPathComponent()
        let socket = (socketDirectory ?? directory).appendingPathComponent("control.sock").path
        var text = try String(contentsOf: config, encoding: .utf8)
        if let captureValue {
            text = text.replacingOccurrences(of: "capture_value: CARD", with: "capture_value: \"\(captureValue)\"")
                .replacingOccurrences(of: "equals: CARD", with: "equals: \"\(captureValue)\"")
        }
        text += "\ncontrol:\n  socket: \(socket)\n"
        try text.write(to: config, atomically: true, encoding: .utf8)
        return (config, directory, socket)
    }

    private func status(_ socket: String, json: Bool = true, timeout: Duration = .seconds(30)) async throws -> ProgramResult {
        try await BinaryRunner.run(["status", "--socket", socket] + (json ? ["--json"] : []), timeout: timeout)
    }

    /// The `status` object of a successful `--json` answer.
    private func statusObject(_ result: ProgramResult) -> [String: Any]? {
        guard result.status == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            object["ok"] as? Bool == true
        else { return nil }
        return object["status"] as? [String: Any]
    }

    @Test func aRunningDaemonShowsItsFeedsWindowsActionsAndControlFailures() async throws {
        let (config, directory, socket) = try demo()
        defer { try? FileManager.default.removeItem(at: directory) }
        let daemon = try await BinaryRunner.start(["run", "--config", config.path])
        try await withPeer(daemon) { daemon in
            // The demo's flaky-mute fails every attempt: within seconds there are control failures
            // and enforcing mutes in progress, while the recorder's pauses are confirmed.
            var seen: [String: Any] = [:]
            let complete = await waitUntil(timeout: .seconds(60), every: .milliseconds(200)) {
                guard let result = try? await status(socket), let object = statusObject(result) else { return false }
                seen = object
                let feeds = object["feeds"] as? [[String: Any]] ?? []
                let windows = object["windows"] as? [String: Any] ?? [:]
                let listed = windows["listed"] as? [[String: Any]] ?? []
                let actions = object["actions"] as? [String: Any] ?? [:]
                let failures = object["control_failures"] as? [String: Any] ?? [:]
                let recent = failures["recent"] as? [[String: Any]] ?? []
                return feeds.contains { $0["name"] as? String == "sim" && $0["state"] as? String == "up" && $0["last_event_at"] != nil }
                    && listed.contains { window in
                        (window["actions"] as? [[String: Any]] ?? []).contains { $0["state"] as? String == "confirmed" }
                    }
                    && (actions["in_progress"] as? Int ?? 0) > 0 && !((actions["listed"] as? [Any]) ?? []).isEmpty
                    && (failures["last_hour"] as? Int ?? 0) > 0 && recent.contains { $0["target"] as? String == "flaky-mute" }
            }
            #expect(complete, "status never showed everything: \(seen)")
            // The documented top-level keys, and the engine's load.
            for key in [
                "schema", "version", "pid", "state", "started_at", "uptime_seconds", "generated_at", "configuration", "engine", "feeds",
                "windows", "actions", "control_failures",
            ] {
                #expect(seen[key] != nil, "missing \(key)")
            }
            #expect(seen["pid"] as? Int == Int(daemon.processIdentifier))
            let digest = (seen["configuration"] as? [String: Any])?["digest"] as? String ?? ""
            #expect(digest.hasPrefix("sha256:") && digest.count == 71, "configuration.digest: \(digest)")
            let engine = seen["engine"] as? [String: Any] ?? [:]
            #expect(engine["answered"] as? Bool == true)
            #expect(engine["calls_capacity"] as? Int == 100_000)
            for key in ["queue_depth", "events_processed", "calls_tracked", "attempts_in_flight"] { #expect(engine[key] != nil, "engine.\(key)") }
            let window = try #require((seen["windows"] as? [String: Any])?["listed"] as? [[String: Any]]).first ?? [:]
            for key in ["policy", "feed", "call", "window", "opened_at", "age_seconds", "confirmed", "actions"] {
                #expect(window[key] != nil, "window.\(key)")
            }

            // For people: every section, within the terminal's width.
            let text = try await BinaryRunner.run(["status", "--socket", socket], environment: ["COLUMNS": "100"])
            #expect(text.status == 0, "\(text.output)")
            for heading in ["mutewarden ", "engine: ", "feeds:", "windows open: ", "actions in progress: ", "control failures: "] {
                #expect(text.stdout.contains(heading), "no '\(heading)' in:\n\(text.stdout)")
            }
            #expect(text.stdout.contains("sim") && text.stdout.contains("up"))
            #expect(text.stdout.contains("configuration digest: \(digest)"), "\(text.stdout)")
            #expect(text.stdout.split(separator: "\n").allSatisfy { $0.count <= 100 }, "\(text.stdout)")

            // The socket: 0600, and gone once the daemon has stopped.
            var info = stat()
            #expect(stat(socket, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o777 == 0o600)
            // A generous grace: on a loaded machine the stop's own grace for actions under way runs long.
            #expect(await daemon.stop(grace: .seconds(30)) == .exited(0))
            #expect(!FileManager.default.fileExists(atPath: socket))
            #expect(daemon.stderr.contains("control socket listening on \(socket)"))
        }
    }

    /// As under the unit: no `control:` section, and systemd's `$RUNTIME_DIRECTORY` says where.
    @Test func withoutAControlSectionTheSocketIsInTheRuntimeDirectory() async throws {
        let (config, state) = try privateDemoConfiguration()
        let directory = state.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = ["RUNTIME_DIRECTORY": directory.path]
        let daemon = try await BinaryRunner.start(["run", "--config", config.path], environment: environment)
        try await withPeer(daemon) { daemon in
            #expect(
                await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) {
                    (try? await BinaryRunner.run(["status", "--json"], environment: environment))?.status == 0
                })
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("control.sock").path))
            #expect(daemon.stderr.contains("control socket listening on \(directory.path)/control.sock"))
        }
    }

    @Test func aStoppedDaemonIsReportedWithExitStatus69() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("control.sock").path

        // No socket at all.
        let missing = try await status(socket, json: false)
        #expect(missing.status == 69, "\(missing.output)")
        #expect(missing.stderr.contains("not running"))
        let missingJSON = try await status(socket)
        #expect(missingJSON.status == 69)
        #expect(missingJSON.stdout.contains(#""code":"not-running""#), "\(missingJSON.stdout)")

        // A socket file left behind by a crash, with no listener.
        let stale = try bindAndAbandon(socket)
        #expect(stale)
        let refused = try await status(socket, json: false)
        #expect(refused.status == 69, "\(refused.output)")
    }

    @Test func aDaemonThatDoesNotAnswerIsReportedWithin1SecondWithExitStatus75() async throws {
        let (config, directory, socket) = try demo()
        defer { try? FileManager.default.removeItem(at: directory) }
        let daemon = try await BinaryRunner.start(["run", "--config", config.path])
        try await withPeer(daemon) { daemon in
            #expect(await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) { (try? await status(socket))?.status == 0 })
            // Stopped, the daemon holds its socket and answers nothing: the connection is queued
            // by the kernel and the answer never comes.
            daemon.signal(SIGSTOP)
            let clock = ContinuousClock()
            let started = clock.now
            let silent = try await status(socket, json: false)
            let elapsed = clock.now - started
            daemon.signal(SIGCONT)
            #expect(silent.status == 75, "\(silent.output)")
            #expect(silent.stderr.contains("did not answer within 1s"), "\(silent.stderr)")
            // The bound is the client's one-second timeout; the rest is process start-up on a busy machine.
            #expect(elapsed < .seconds(10), "\(elapsed)")
            // Once it runs again, it answers again.
            #expect(await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) { (try? await status(socket))?.status == 0 })
        }
    }

    @Test func aStaleSocketFromACrashIsReplacedByTheNextStart() async throws {
        let (config, directory, socket) = try demo()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try bindAndAbandon(socket))
        let daemon = try await BinaryRunner.start(["run", "--config", config.path])
        try await withPeer(daemon) { daemon in
            #expect(await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) { (try? await status(socket))?.status == 0 })
        }
    }

    @Test func theControlSocketRefusesAnotherUser() async throws {
        let setpriv = try locateTool("setpriv")
        try #require(getuid() == 0, "the test switches to nobody: it runs as root, as make test does")
        // Somewhere nobody can reach whatever TMPDIR is (make test's is 0700), with a copy of the
        // binary nobody can run wherever the checkout is: only the socket's mode, then the
        // daemon, refuse.
        let open = URL(fileURLWithPath: "/tmp").appendingPathComponent("mutewarden-status-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: open) }
        #expect(chmod(open.path, 0o755) == 0)
        let binary = open.appendingPathComponent("mutewarden").path
        try FileManager.default.copyItem(atPath: BinaryRunner.binary.path, toPath: binary)
        #expect(chmod(binary, 0o755) == 0)
        let (config, directory, socket) = try demo(socketDirectory: open)
        defer { try? FileManager.default.removeItem(at: directory) }
        let daemon = try await BinaryRunner.start(["run", "--config", config.path])
        try await withPeer(daemon) { daemon in
            #expect(await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) { (try? await status(socket))?.status == 0 })
            let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "status", "--socket", socket]

            // The file mode (0600) stops nobody at connect(2).
            let byMode = try await runProgram(setpriv, asNobody, workingDirectory: URL(fileURLWithPath: "/"))
            #expect(byMode.status == 77, "\(byMode.output)")
            #expect(byMode.stderr.contains("permission denied"))

            // With the mode loosened, the daemon itself refuses (SO_PEERCRED), and logs it once.
            #expect(chmod(socket, 0o666) == 0)
            let byDaemon = try await runProgram(setpriv, asNobody + ["--json"], workingDirectory: URL(fileURLWithPath: "/"))
            #expect(byDaemon.status == 77, "\(byDaemon.output)")
            #expect(byDaemon.stdout.contains(#""code":"refused""#), "\(byDaemon.stdout)")
            #expect(!byDaemon.stdout.contains("feeds"))
            let again = try await runProgram(setpriv, asNobody, workingDirectory: URL(fileURLWithPath: "/"))
            #expect(again.status == 77)
            #expect(await waitUntil { daemon.stderr.contains("control socket: refused a client of uid 65534") })
            // Rate-limited: two refusals, one record.
            #expect(daemon.stderr.components(separatedBy: "refused a client of uid").count - 1 == 1)
            // Root still may.
            #expect(try await status(socket).status == 0)
        }
    }

    @Test func aCardNumberInTheCallsAttributesNeverAppearsInStatus() async throws {
        let pan = "4111111111111111"
        let (config, directory, socket) = try demo(captureValue: pan)
        defer { try? FileManager.default.removeItem(at: directory) }
        let daemon = try await BinaryRunner.start(["run", "--config", config.path])
        try await withPeer(daemon) { daemon in
            // PCI_STAGE is allowlisted in the demo: its (masked) value shows with an open window.
            var json = ""
            #expect(
                await waitUntil(timeout: .seconds(60), every: .milliseconds(200)) {
                    guard let result = try? await status(socket), result.status == 0 else { return false }
                    json = result.stdout
                    return json.contains("PCI_STAGE=")
                })
            let text = try await status(socket, json: false)
            for output in [json, text.stdout, text.stderr] {
                #expect(!output.contains(pan), "\(output)")
                #expect(!output.contains("4111 1111 1111 1111"))
            }
            #expect(json.contains("PCI_STAGE=411111******1111"), "\(json)")
        }
    }

    /// Leaves a socket file at `path` with nobody listening, as a killed daemon does.
    private func bindAndAbandon(_ path: String) throws -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            let bytes = Array(path.utf8)
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return bound == 0 && listen(fd, 1) == 0
    }
}
