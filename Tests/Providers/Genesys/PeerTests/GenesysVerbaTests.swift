import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenGenesys
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import MutewardenVerba
import Testing

/// Cross-platform policies (issue 21): the `genesys` feed (Faye and the fake GWS) drives a
/// `verba` target (the fake Media Repository) by the agent's extension, in the real daemon, with
/// the configuration of config/examples/genesys-verba.yaml.
@Suite(.serialized) struct GenesysVerbaTests {
    final class Running: Sendable {
        let daemon: Daemon
        let logs: InMemoryLogStore
        let task: Task<Int32, any Error>
        let stop: AsyncStream<DaemonSignal>.Continuation

        init(gws: GenesysPeer, verba: VerbaPeer, deadline: String = "3s") async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-gws-verba-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let configuration = try GenesysVerbaTests.loader.load(
                yaml: GenesysVerbaTests.yaml(gws: gws, verba: verba, deadline: deadline, stateDirectory: directory.path),
                file: "genesys-verba.yaml")
            let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
            logs = handler.store
            daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
            let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
            stop = continuation
            task = Task { [daemon] in try await daemon.run(signals: signals) }
        }

        func lines() -> [String] { logs.lines() }

        func waitForLine(_ fragments: String...) async -> Bool {
            await waitUntil(every: .milliseconds(20)) { lines().contains { line in fragments.allSatisfy(line.contains) } }
        }

        func finish() async throws -> Int32 {
            stop.yield(.terminate)
            return try await task.value
        }
    }

    /// The example's shape: the GWS feed names the agent's extension, the Verba target is
    /// addressed by it; the credentials come from the environment.
    static func yaml(gws: GenesysPeer, verba: VerbaPeer, deadline: String, stateDirectory: String) -> String {
        """
        feeds:
          gws:
            type: genesys
            base_url: \(gws.baseURL)
            username: \(GenesysPeer.user)
            password: "${env:GWS_PASSWORD}"
            agent_extension: "\(GenesysPeer.agentPhoneNumber)"
            reconnect_max: 1s
        targets:
          verba:
            type: verba
            base_url: \(verba.baseURL)
            api_key: "${env:VERBA_API_KEY}"
            username: \(VerbaPeer.user)
            password: "${env:VERBA_PASSWORD}"
            timeout: 2s
        policies:
          card-capture:
            feeds: [gws]
            start: { attribute: PCI_STAGE, equals: CARD }
            actions: [{ kind: pause-recording, target: verba, by: extension, deadline: \(deadline) }]
        logging:
          attributes: [PCI_STAGE, CardNumber]
        state:
          directory: \(stateDirectory)
        """
    }

    static let loader = ConfigurationLoader(
        registry: ProviderRegistry(feeds: [GWSSettings.feedProvider], targets: [VerbaTargetSettings.targetProvider]),
        environment: ["GWS_PASSWORD": GenesysPeer.password, "VERBA_API_KEY": VerbaPeer.apiKey, "VERBA_PASSWORD": VerbaPeer.password])

    private static let recording = #"{"recordingState":"Recording","mute":"Off","callType":"Inbound"}"#
    private static let pan = "4111 1111 1111 1111"

    private func secretsAbsent(_ running: Running) -> Bool {
        let forbidden = [GenesysPeer.password, VerbaPeer.apiKey, VerbaPeer.password, Self.pan, "4111111111111111"]
        return !running.lines().contains { line in forbidden.contains { line.contains($0) } }
    }

    @Test func aGenesysCapturePausesTheVerbaRecordingByExtensionThenResumesIt() async throws {
        let gws = try await GenesysPeer.start(connectTimeout: 2)
        try await withVerbaPeer { verba in
            let running = try await Running(gws: gws, verba: verba)
            try await gws.waitForSubscribers()
            // The card number travels in an attribute too: it must reach no log line.
            try await gws.createCall(id: "GC1", userData: ["PCI_STAGE": "CARD", "CardNumber": Self.pan], fields: Self.recording)
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=GC1", "extension=3001"))
            try await gws.setUserData("GC1", ["PCI_STAGE": "DONE"])
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=GC1", "extension=3001"))
            let mutes = try await verba.waitForRequests("MuteRecording", count: 2)
            #expect(
                mutes.map(\.description) == [
                    "GET MuteRecording action=MuteRecording&extension=3001&mute=3&status=ongoing",
                    "GET MuteRecording action=MuteRecording&extension=3001&mute=0&status=ongoing",
                ])
            #expect(try await verba.requests("RequestToken").count == 1)
            // No GWS voice operation: the recording is Verba's.
            #expect(try await gws.operations().isEmpty)
            #expect(secretsAbsent(running))
            #expect(try await running.finish() == 0)
        }
        await gws.stop()
    }

    @Test func moreThanOneMatchingCallIsNotRetriedAndFailsTheControlAtTheDeadline() async throws {
        let gws = try await GenesysPeer.start(connectTimeout: 2)
        try await withVerbaPeer { verba in
            try await verba.configure(several: [GenesysPeer.agentPhoneNumber])
            let running = try await Running(gws: gws, verba: verba, deadline: "1s")
            try await gws.waitForSubscribers()
            try await gws.createCall(id: "GC2", userData: ["PCI_STAGE": "CARD", "CardNumber": Self.pan], fields: Self.recording)
            #expect(await running.waitForLine("audit=action.failed", "call=GC2", "extension=3001", "more than one call matches"))
            #expect(running.lines().contains { $0.contains(" CRIT ") && $0.contains("audit=action.failed") })
            #expect(!running.lines().contains { $0.contains("audit=action.retry") })
            #expect(try await verba.requests("MuteRecording").count == 1)
            #expect(secretsAbsent(running))
            #expect(try await running.finish() == 0)
        }
        await gws.stop()
    }

    @Test func aTokenExpiredMidWindowAndAServerErrorAreRetriedWithinTheDeadline() async throws {
        let gws = try await GenesysPeer.start(connectTimeout: 2)
        try await withVerbaPeer { verba in
            let running = try await Running(gws: gws, verba: verba, deadline: "5s")
            try await gws.waitForSubscribers()
            try await gws.createCall(id: "GC3", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=GC3"))
            // Mid-window the token expires and the Media Repository has a bad moment: the undo
            // fails with a 503, then is refused for its token, then goes through with a new one.
            try await verba.expireTokens()
            try await verba.script([(503, "")])
            try await gws.setUserData("GC3", ["PCI_STAGE": "DONE"])
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=GC3"))
            #expect(running.lines().contains { $0.contains("audit=action.retry") && $0.contains("error_code=\"http 401\"") })
            #expect(running.lines().contains { $0.contains("audit=action.retry") && $0.contains("error_code=\"http 503\"") })
            #expect(try await verba.requests("RequestToken").count == 2)
            #expect(secretsAbsent(running))
            #expect(try await running.finish() == 0)
        }
        await gws.stop()
    }

    @Test func aCallVerbaCannotFindWhileTheFeedShowsItLiveIsAControlFailure() async throws {
        let gws = try await GenesysPeer.start(connectTimeout: 2)
        try await withVerbaPeer { verba in
            try await verba.configure(gone: [GenesysPeer.agentPhoneNumber])
            let running = try await Running(gws: gws, verba: verba, deadline: "1s")
            try await gws.waitForSubscribers()
            try await gws.createCall(id: "GC4", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
            // The feed still shows the call live: "cannot be found" is a failure like any other.
            #expect(await running.waitForLine("audit=action.retry", "call=GC4", "Call cannot be found", #"error_code="code 2""#))
            #expect(await running.waitForLine("audit=action.failed", "call=GC4"))
            #expect(try await running.finish() == 0)
        }
        await gws.stop()
    }
}
