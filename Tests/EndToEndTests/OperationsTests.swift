import Foundation
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon as systemd runs it: notify protocol, reload, stop, kill and restart, on the binary.
@Suite(.serialized) struct OperationsTests {
    /// Starts the daemon with a private state directory and notify socket.
    private func start(_ config: URL, notify: NotifySocket, extra: [String: String] = [:]) async throws -> PeerProcess {
        try await BinaryRunner.start(
            ["run", "--config", config.path], environment: ["NOTIFY_SOCKET": notify.path].merging(extra) { $1 })
    }

    /// Whether the daemon's log (its standard error) shows `text` within `timeout`.
    private func waitFor(_ daemon: PeerProcess, timeout: Duration = .seconds(30), _ text: String) async -> Bool {
        await waitUntil(timeout: timeout, every: .milliseconds(20)) { daemon.stderr.contains(text) }
    }

    /// One simulated call that takes a card `captureAfter` into the call and never says it is done:
    /// only the cap (`maxDuration`, `on_timeout: resume`) closes its window. State in `directory`.
    private func oneEndlessCapture(in directory: URL, captureAfter: String, maxDuration: String) throws -> URL {
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
            capture_after: \(captureAfter)
            abandon_ratio: 1
            seed: 3
        targets:
          recorder: { type: log }
        policies:
          card:
            feeds: [sim]
            start: { attribute: PCI_STAGE, equals: CARD }
            max_duration: \(maxDuration)
            on_timeout: resume
            actions: [{ kind: pause-recording, target: recorder }]
        state:
          directory: \(directory.appendingPathComponent("state").path)
        """.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    @Test func theNotifyProtocolAsSystemdSeesIt() async throws {
        let demo = try privateDemoConfiguration()
        let notify = try NotifySocket()
        // WATCHDOG_USEC as systemd sets it for WatchdogSec=1s: pings every 500 ms.
        let daemon = try await start(demo.config, notify: notify, extra: ["WATCHDOG_USEC": "1000000"])
        try await withPeer(daemon) { daemon in
            #expect(await notify.wait { $0 == "READY=1" })
            #expect(notify.lines().contains { $0.hasPrefix("STATUS=") })  // with READY, in the same message
            // Kept current: the feed's "up" shows within a second or so.
            #expect(
                await notify.wait { line in
                    line.hasPrefix("STATUS=") && line.contains("calls") && line.contains("windows open") && line.contains("sim up")
                        && line.contains("control failures in the last hour")
                })
            // READY only after the feeds started.
            #expect(await waitFor(daemon, "audit=feed.up"))
            // The pings keep coming, every 500 ms: never a second apart, or systemd would kill the
            // service.
            #expect(await waitUntil { notify.arrivals(of: "WATCHDOG=1").count >= 3 })
            let pings = notify.arrivals(of: "WATCHDOG=1")
            let gaps = zip(pings, pings.dropFirst()).map { $1 - $0 }
            #expect(gaps.allSatisfy { $0 < .seconds(1) }, "\(gaps)")

            daemon.signal(SIGHUP)
            #expect(await notify.wait { $0 == "RELOADING=1" })
            #expect(await waitFor(daemon, "configuration reloaded"))
            let afterReload = notify.lines()
            let reloading = try #require(afterReload.lastIndex(of: "RELOADING=1"))
            #expect(afterReload[reloading...].contains("READY=1"))

            daemon.signal(SIGTERM)
            #expect(await notify.wait { $0 == "STOPPING=1" })
            #expect(await daemon.waitForExit(timeout: .seconds(20)) == .exited(0))
            // Every window still open is on the record, with what it holds.
            #expect(await waitFor(daemon, "mutewarden stopped"))
            let text = daemon.stderr
            let stillOpen = text.split(separator: "\n").last { $0.contains("mutewarden stopped") }
                .flatMap { line in line.range(of: #"(\d+) window\(s\) still open"#, options: .regularExpression).map { line[$0] } }
            let leftInPlace = text.components(separatedBy: "result=left-in-place").count - 1
            #expect(stillOpen.map { $0.hasPrefix("\(leftInPlace) ") } == true, "\(String(describing: stillOpen)) vs \(leftInPlace)")
        }
    }

    @Test func aValidReloadAppliesAndAnInvalidOneIsRefusedWithTheOldConfigurationKept() async throws {
        let demo = try privateDemoConfiguration()
        let notify = try NotifySocket()
        let daemon = try await start(demo.config, notify: notify)
        try await withPeer(daemon) { daemon in
            #expect(await notify.wait { $0 == "READY=1" })
            let original = try String(contentsOf: demo.config, encoding: .utf8)

            // Valid: take Queue off the attribute allowlist.
            try original.replacingOccurrences(of: "attributes: [PCI_STAGE, Queue]", with: "attributes: [PCI_STAGE]")
                .write(to: demo.config, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            #expect(await waitFor(daemon, "audit=config.loaded"))
            #expect(await waitFor(daemon, "configuration reloaded in"))

            // Invalid: a typo. Refused with its location; the daemon goes on.
            try original.replacingOccurrences(of: "max_duration: 6s", with: "max_durashun: 6s")
                .write(to: demo.config, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            #expect(await waitFor(daemon, "reload refused"))
            let text = daemon.stderr
            #expect(text.contains("audit=config.rejected"))
            #expect(text.contains("\(demo.config.path):"))
            #expect(text.contains("unknown key 'max_durashun'"))
            #expect(daemon.isRunning)
            // The old configuration goes on working: windows keep opening.
            let eventsBefore = text.components(separatedBy: "audit=window.opened").count
            #expect(await waitUntil { daemon.stderr.components(separatedBy: "audit=window.opened").count > eventsBefore })
            #expect(await daemon.stop() == .exited(0))
        }
    }

    /// A window opened moments before a SIGKILL, before any snapshot of the state file could hold
    /// it, is in the window journal: the restart restores it and it is undone at its cap.
    @Test func aWindowOpenedJustBeforeASIGKILLComesBackFromTheJournal() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state")
        let config = try oneEndlessCapture(in: directory, captureAfter: "2s", maxDuration: "3s")
        let notify = try NotifySocket()
        let first = try await start(config, notify: notify)
        try await withPeer(first) { first in
            // Killed as soon as the journal holds the window: no snapshot had it yet (the snapshot
            // that follows a change is at least a second away).
            #expect(
                await waitUntil(timeout: .seconds(30), every: .milliseconds(1)) {
                    let segments = (try? FileManager.default.contentsOfDirectory(atPath: state.path)) ?? []
                    return segments.filter { $0.hasSuffix(".journal") }.contains { name in
                        (FileManager.default.contents(atPath: state.appendingPathComponent(name).path))
                            .map { String(decoding: $0, as: UTF8.self).contains(#""op":"open""#) } ?? false
                    }
                })
            #expect(await first.stop(SIGKILL) == .signalled(SIGKILL))
            let snapshot =
                FileManager.default.contents(atPath: state.appendingPathComponent("state.json").path)
                .map { String(decoding: $0, as: UTF8.self) } ?? ""
            let snapshotHadIt = snapshot.contains("\"policy\":\"card\"") || snapshot.contains("\"policy\" : \"card\"")

            let second = try await start(config, notify: notify)
            try await withPeer(second) { second in
                #expect(await waitFor(second, "audit=state.restored"))
                #expect(await waitFor(second, "restored 1 open window(s)"))
                if !snapshotHadIt {
                    #expect(second.stderr.contains("window(s) opened after its last snapshot"))
                }
                // Restored, it is undone at its cap like any other window.
                #expect(await waitFor(second, "result=cap-expired"))
                #expect(await waitFor(second, "resume-recording call"))
            }
        }
    }

    @Test func afterSIGKILLARestartRestoresTheWindowAndClosesItOnTheOriginalCap() async throws {
        // One call that takes a card and never says it is done: only the 4 s cap closes it.
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try oneEndlessCapture(in: directory, captureAfter: "0s", maxDuration: "4s")
        let notify = try NotifySocket()
        let first = try await start(config, notify: notify)
        try await withPeer(first) { first in
            #expect(await waitFor(first, "audit=action.confirmed"))
            // The state file is written once the window's action is confirmed; the kill comes a
            // second into the four-second cap, wherever the daemon is then.
            let openedAt = ContinuousClock.now
            try await Task.sleep(for: .seconds(1))
            #expect(await first.stop(SIGKILL) == .signalled(SIGKILL))

            let second = try await start(config, notify: notify)
            try await withPeer(second) { second in
                #expect(await waitFor(second, "audit=state.restored"))
                #expect(second.stderr.contains("restored 1 open window(s)"))
                #expect(await waitFor(second, "result=cap-expired"))
                let closedAt = ContinuousClock.now
                // The cap ran from the original open, not from the restart: it closes three seconds
                // after the restart, not four (with a second and a half's slack for a loaded machine).
                #expect(closedAt - openedAt < .seconds(5.5))
                #expect(closedAt - openedAt > .seconds(3))
                #expect(await waitFor(second, "resume-recording call"))
            }
        }
    }

    @Test func aCorruptStateFileIsMovedAsideAndTheDaemonStarts() async throws {
        let demo = try privateDemoConfiguration()
        try FileManager.default.createDirectory(at: demo.state, withIntermediateDirectories: true)
        try "{ this is not state".write(to: demo.state.appendingPathComponent("state.json"), atomically: true, encoding: .utf8)
        let notify = try NotifySocket()
        let daemon = try await start(demo.config, notify: notify)
        try await withPeer(daemon) { daemon in
            #expect(await notify.wait { $0 == "READY=1" })
            #expect(await waitFor(daemon, "is corrupt"))
            let files = try FileManager.default.contentsOfDirectory(atPath: demo.state.path)
            #expect(files.contains { $0.hasPrefix("state.json.corrupt-") })
        }
    }
}
