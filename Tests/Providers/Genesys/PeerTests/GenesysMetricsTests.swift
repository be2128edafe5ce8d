import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel
import MutewardenTesting
import Testing

/// The daemon's metrics with a real feed: Faye and the fake GWS, scraped by the reference
/// Prometheus client.
@Suite(.serialized) struct GenesysMetricsTests {
    private static let recording = #"{"recordingState":"Recording","mute":"Off","callType":"Inbound"}"#

    /// A capture protected, then the platform killed: the feed shows down. A card number in the
    /// call's user data and in the platform's error message never reaches the scrape.
    @Test func aProtectedCaptureThenThePlatformGoneAreInTheScrape() async throws {
        let pan = "4111111111111111"
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        // The first pause is refused with the card number in the message; the retry confirms.
        try await peer.script(operation: "PauseCallRecording", .status(4, message: "Internal error for card \(pan)"))
        var configuration = try GenesysProviderTests.configuration(peer: peer)
        configuration.metrics = .loopback(port: try freePort())
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        let daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
        let (signals, stop) = AsyncStream<DaemonSignal>.makeStream()
        let task = Task { try await daemon.run(signals: signals) }
        defer { stop.yield(.terminate) }

        let port = try await eventually("the metrics listener", timeout: .seconds(30)) { daemon.metricsPort }
        let url = "http://127.0.0.1:\(port)/metrics"
        try await peer.waitForSubscribers()
        try await eventually("the feed to show as up", timeout: .seconds(30), every: .milliseconds(100)) { () async throws -> Bool? in
            try await PrometheusScrape.fetch(url).value("mutewarden_feed_up", ["feed": "gws"]) == 1 ? true : nil
        }
        try await peer.createCall(id: "M1", userData: ["PCI_STAGE": "CARD", "CardNumber": pan], fields: Self.recording)
        let protected = try await eventually("the pause to be confirmed", timeout: .seconds(30), every: .milliseconds(100)) {
            () async throws -> PrometheusScrape? in
            let scrape = try await PrometheusScrape.fetch(url)
            return scrape.value("mutewarden_time_to_protection_seconds_count", ["policy": "pause", "target": "voice"]) == 1 ? scrape : nil
        }
        #expect(protected.value("mutewarden_events_total", ["feed": "gws"]) >= 1)
        #expect(protected.value("mutewarden_windows_opened_total", ["policy": "pause", "feed": "gws"]) == 1)
        #expect(protected.value("mutewarden_actions_total", ["target": "voice", "action": "pause-recording", "result": "retried"]) == 1)
        #expect(protected.value("mutewarden_actions_total", ["target": "voice", "action": "pause-recording", "result": "confirmed"]) == 1)
        #expect(protected.value("mutewarden_control_failures_total") == 0)
        #expect(await waitUntil { handler.store.lines().contains { $0.contains("audit=action.retry") && $0.contains("Internal error") } })

        await peer.stop()
        let down = try await eventually("the feed to show as down", timeout: .seconds(30), every: .milliseconds(100)) {
            () async throws -> PrometheusScrape? in
            let scrape = try await PrometheusScrape.fetch(url)
            return scrape.value("mutewarden_feed_up", ["feed": "gws"]) == 0 ? scrape : nil
        }
        for scrape in [protected, down] {
            #expect(!scrape.text.contains(pan))
            #expect(!scrape.text.contains("M1"))
            #expect(!scrape.text.contains("Internal error"))
            #expect(!PANMasker.containsPAN(scrape.text))
        }
        stop.yield(.terminate)
        #expect(try await task.value == 0)
    }
}
