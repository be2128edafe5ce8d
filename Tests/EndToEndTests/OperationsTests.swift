import Foundation
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon as systemd runs it: notify protocol, reload, stop, kill and restart, on the binary.
@Suite(.serialized) struct OperationsTests {
    /// Starts the daemon with a private state directory and notify socket.
    private func start(_ config: URL, notify: NotifySocket, extra: [String: String] = [:]) throws -> (Process, ChildOutput) {
        let (process, _, err) = try BinaryRunner.start(
            ["run", "--config", config.path], environment: ["NOTIFY_SOCKET": notify.path].merging(extra) { $1 })
        return (process, ChildOutput(err))
    }

    private func waitFor(_ reader: ChildOutput, timeout: Duration = .seconds(20), _ text: String) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if reader.snapshot().contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    private func stop(_ process: Process) {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    @Test func theNotifyProtocolAsSystemdSeesIt() throws {
        let demo = try privateDemoConfiguration()
        let notify = try NotifySocket()
        // WATCHDOG_USEC as systemd sets it for WatchdogSec=1s: pings every 500 ms.
        let (process, stderr) = try start(demo.config, notify: notify, extra: ["WATCHDOG_USEC": "1000000"])
        defer { stop(process) }
        #expect(notify.wait { $0 == "READY=1" })
        #expect(notify.lines().contains { $0.hasPrefix("STATUS=") })  // with READY, in the same message
        // Kept current: the feed's "up" shows within a second or so.
        #expect(
            notify.wait { line in
                line.hasPrefix("STATUS=") && line.contains("calls") && line.contains("windows open") && line.contains("sim up")
                    && line.contains("control failures in the last hour")
            })
        // READY only after the feeds started.
        #expect(stderr.snapshot().contains("audit=feed.up") || waitFor(stderr, "audit=feed.up"))
        #expect(notify.wait { $0 == "WATCHDOG=1" })
        Thread.sleep(forTimeInterval: 1.2)
        #expect(notify.lines().filter { $0 == "WATCHDOG=1" }.count >= 2)

        kill(process.processIdentifier, SIGHUP)
        #expect(notify.wait { $0 == "RELOADING=1" })
        #expect(waitFor(stderr, "configuration reloaded"))
        let afterReload = notify.lines()
        let reloading = afterReload.lastIndex(of: "RELOADING=1")!
        #expect(afterReload[reloading...].contains("READY=1"))

        process.terminate()
        #expect(notify.wait { $0 == "STOPPING=1" })
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // Every window still open is on the record, with what it holds.
        let text = stderr.text()
        let stillOpen = text.split(separator: "\n").last { $0.contains("mutewarden stopped") }
            .flatMap { line in line.range(of: #"(\d+) window\(s\) still open"#, options: .regularExpression).map { line[$0] } }
        let leftInPlace = text.components(separatedBy: "result=left-in-place").count - 1
        #expect(stillOpen.map { $0.hasPrefix("\(leftInPlace) ") } == true, "\(String(describing: stillOpen)) vs \(leftInPlace)")
    }

    @Test func aValidReloadAppliesAndAnInvalidOneIsRefusedWithTheOldConfigurationKept() throws {
        let demo = try privateDemoConfiguration()
        let notify = try NotifySocket()
        let (process, stderr) = try start(demo.config, notify: notify)
        defer { stop(process) }
        #expect(notify.wait { $0 == "READY=1" })
        let original = try String(contentsOf: demo.config, encoding: .utf8)

        // Valid: take Queue off the attribute allowlist.
        try original.replacingOccurrences(of: "attributes: [PCI_STAGE, Queue]", with: "attributes: [PCI_STAGE]")
            .write(to: demo.config, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        #expect(waitFor(stderr, "audit=config.loaded"))
        #expect(stderr.snapshot().contains("configuration reloaded in"))

        // Invalid: a typo. Refused with its location; the daemon goes on.
        try original.replacingOccurrences(of: "max_duration: 6s", with: "max_durashun: 6s")
            .write(to: demo.config, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        #expect(waitFor(stderr, "reload refused"))
        let text = stderr.snapshot()
        #expect(text.contains("audit=config.rejected"))
        #expect(text.contains("\(demo.config.path):"))
        #expect(text.contains("unknown key 'max_durashun'"))
        #expect(process.isRunning)
        let eventsBefore = text.components(separatedBy: "audit=window.opened").count
        Thread.sleep(forTimeInterval: 4)
        #expect(stderr.snapshot().components(separatedBy: "audit=window.opened").count > eventsBefore)
        stop(process)
        #expect(process.terminationStatus == 0)
    }

    @Test func afterSIGKILLARestartRestoresTheWindowAndClosesItOnTheOriginalCap() throws {
        // One call that takes a card and never says it is done: only the 4 s cap closes it.
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("mutewarden.yaml")
        try """
        feeds:
          sim:
            type: simulator
            agents: 1
            call_rate: 100
            max_calls: 1
            call_duration: 1h
            capture_ratio: 1
            capture_after: 0s
            abandon_ratio: 1
            seed: 3
        targets:
          recorder: { type: log }
        policies:
          card:
            feeds: [sim]
            start: { attribute: PCI_STAGE, equals: CARD }
            max_duration: 4s
            on_timeout: resume
            actions: [{ kind: pause-recording, target: recorder }]
        state:
          directory: \(directory.appendingPathComponent("state").path)
        """.write(to: config, atomically: true, encoding: .utf8)
        let notify = try NotifySocket()
        let (first, firstLog) = try start(config, notify: notify)
        #expect(waitFor(firstLog, "audit=action.confirmed"))
        let openedAt = ContinuousClock.now
        Thread.sleep(forTimeInterval: 1)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal)

        let (second, secondLog) = try start(config, notify: notify)
        defer { stop(second) }
        #expect(waitFor(secondLog, "audit=state.restored"))
        #expect(secondLog.snapshot().contains("restored 1 open window(s)"))
        #expect(waitFor(secondLog, timeout: .seconds(15), "result=cap-expired"))
        let closedAt = ContinuousClock.now
        // The cap ran from the original open, not from the restart.
        #expect(closedAt - openedAt < .seconds(5.5))
        #expect(closedAt - openedAt > .seconds(3))
        #expect(waitFor(secondLog, "resume-recording call"))
    }

    @Test func aCorruptStateFileIsMovedAsideAndTheDaemonStarts() throws {
        let demo = try privateDemoConfiguration()
        try FileManager.default.createDirectory(at: demo.state, withIntermediateDirectories: true)
        try "{ this is not state".write(to: demo.state.appendingPathComponent("state.json"), atomically: true, encoding: .utf8)
        let notify = try NotifySocket()
        let (process, stderr) = try start(demo.config, notify: notify)
        defer { stop(process) }
        #expect(notify.wait { $0 == "READY=1" })
        #expect(stderr.snapshot().contains("is corrupt"))
        let files = try FileManager.default.contentsOfDirectory(atPath: demo.state.path)
        #expect(files.contains { $0.hasPrefix("state.json.corrupt-") })
    }
}
