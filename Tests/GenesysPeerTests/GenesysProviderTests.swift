import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel
import Testing

/// The `genesys` feed and target inside the real daemon, against Faye and the fake GWS.
@Suite(.serialized) struct GenesysProviderTests {
    /// A running daemon whose feed and target point at `peer`.
    final class Running: Sendable {
        let daemon: Daemon
        let logs: InMemoryLogStore
        let task: Task<Int32, any Error>
        let stop: AsyncStream<DaemonSignal>.Continuation

        init(peer: GenesysPeer, deadline: String = "3s", transport: String = "long-polling") async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-gws-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let yaml = """
                feeds:
                  gws:
                    type: genesys
                    base_url: \(peer.baseURL)
                    username: \(GenesysPeer.user)
                    password: "${env:GWS_PASSWORD}"
                    agent_extension: "\(GenesysPeer.agentPhoneNumber)"
                    transport: \(transport)
                    reconnect_max: 1s
                targets:
                  voice:
                    type: genesys
                    base_url: \(peer.baseURL)
                    username: \(GenesysPeer.user)
                    password: "${env:GWS_PASSWORD}"
                policies:
                  pause:
                    feeds: [gws]
                    start: { attribute: PCI_STAGE, equals: CARD }
                    actions: [{ kind: pause-recording, target: voice, deadline: \(deadline) }]
                logging:
                  attributes: [PCI_STAGE]
                state:
                  directory: \(directory.path)
                """
            let configuration = try ConfigurationLoader(
                registry: BuiltInProviders.registry, environment: ["GWS_PASSWORD": GenesysPeer.password]
            ).load(yaml: yaml, file: "gws.yaml")
            let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
            logs = handler.store
            daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
            let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
            stop = continuation
            task = Task { [daemon] in try await daemon.run(signals: signals) }
        }

        func lines() -> [String] { logs.lines() }

        /// Waits (20 s at most) until a log line holds every fragment.
        func waitForLine(_ fragments: String...) async -> Bool {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if lines().contains(where: { line in fragments.allSatisfy(line.contains) }) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        func finish() async throws -> Int32 {
            stop.yield(.terminate)
            return try await task.value
        }
    }

    private static let recording = #"{"recordingState":"Recording","mute":"Off","callType":"Inbound"}"#

    @Test func aCaptureIsPausedAndResumedEachConfirmedByTheFeed() async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        let running = try await Running(peer: peer)
        try await peer.waitForSubscribers()
        #expect(await running.waitForLine("audit=feed.up", "feed=gws"))

        try await peer.createCall(id: "C1", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=C1"))
        try await peer.setUserData("C1", ["PCI_STAGE": "DONE"])
        #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=C1"))

        // Both operations carried the session cookie and the CSRF token the login handed out.
        let operations = try await peer.operations()
        #expect(operations.compactMap { $0["operationName"]?.string } == ["PauseCallRecording", "ResumeCallRecording"])
        #expect(operations.allSatisfy { $0["csrf"]?.string == "valid" && $0["session"]?.string == "valid" }, "\(operations)")
        #expect(!running.lines().contains { $0.contains(GenesysPeer.password) })
        #expect(try await running.finish() == 0)
    }

    @Test func noConfirmingEventIsAPCIControlFailure() async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        try await peer.script(operation: "PauseCallRecording", .acceptWithoutConfirming)
        let running = try await Running(peer: peer, deadline: "1s")
        try await peer.waitForSubscribers()
        try await peer.createCall(id: "C2", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await running.waitForLine("audit=action.failed", "call=C2", "PCI control failure"))
        #expect(running.lines().contains { $0.contains(" CRIT ") && $0.contains("audit=action.failed") })
        #expect(try await running.finish() == 0)
    }

    @Test func droppedBayeuxClientsLeadToAReHandshakeAResubscriptionAndAResync() async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        let running = try await Running(peer: peer)
        try await peer.waitForSubscribers()
        try await peer.createCall(id: "C3", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await running.waitForLine("audit=action.confirmed", "call=C3"))
        // The call ends while the feed is cut off: the resync after the re-handshake notices.
        _ = try await peer.dropBayeuxClients()
        try await peer.endCall("C3", notify: false)
        #expect(await running.waitForLine("feed gws resynchronized", "1 ended while it was down"))
        #expect(await running.waitForLine("audit=window.closed", "call=C3", "result=call-ended"))
        try await peer.waitForSubscribers()
        #expect(try await running.finish() == 0)
    }
}
