import Foundation
import MutewardenTesting
import Testing

/// The demo, end to end on the built binary: windows open and close, actions are confirmed,
/// retried and alarmed, and it stops cleanly.
@Suite(.serialized) struct DemoRunTests {
    @Test func theDemoShowsTheWholeControlLoop() async throws {
        let demo = try privateDemoConfiguration()
        let result = try await BinaryRunner.run(["run", "--config", demo.config.path, "--for", "8s"], timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr.suffix(2000))")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        func count(_ kind: String) -> Int { lines.filter { $0.contains("audit=\(kind) ") }.count }
        #expect(lines.filter { $0.contains("audit=daemon.started") && $0.contains("result=started") }.count == 1)
        #expect(lines.filter { $0.contains("audit=daemon.started") && $0.contains("result=ready") }.count == 1)
        #expect(count("feed.up") == 1)
        #expect(count("window.opened") > 0)
        #expect(count("window.closed") > 0)
        #expect(count("action.attempt") > 0)
        #expect(count("action.confirmed") > 0)
        #expect(count("action.retry") > 0)
        // flaky-mute always fails: PCI control failures at CRIT, then the fallback confirms.
        let failures = lines.filter { $0.contains("audit=action.failed") && $0.contains(" CRIT ") }
        #expect(!failures.isEmpty)
        #expect(failures.allSatisfy { $0.contains("target=flaky-mute") })
        #expect(lines.contains { $0.contains("audit=action.confirmed") && $0.contains("target=backup-mute") })
        #expect(lines.last?.contains("mutewarden stopped") == true)
        // Attribute values appear only for allowlisted keys.
        #expect(lines.contains { $0.contains("PCI_STAGE=CARD") })
        // Every line is one record with a timestamp and a level.
        #expect(lines.allSatisfy { $0.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ "#, options: .regularExpression) != nil })
    }

    @Test func sigtermStopsWithinFiveSecondsAndExitsZero() async throws {
        let demo = try privateDemoConfiguration()
        let daemon = try await BinaryRunner.start(["run", "--config", demo.config.path])
        try await withPeer(daemon) { daemon in
            // Really running first.
            try await daemon.waitForLine(containing: "audit=feed.up", timeout: .seconds(30))
            let start = ContinuousClock.now
            daemon.signal(SIGTERM)
            let exit = await daemon.waitForExit(timeout: .seconds(10))
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(5))
            #expect(exit == .exited(0))
            #expect(await waitUntil { daemon.stderr.contains("mutewarden stopped") })
        }
    }
}
