import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenGenesys
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

/// A reload applies what changed, secrets included: the platform password is rotated behind the
/// same `${file:…}` reference, SIGHUP is sent, the platform forgets every session, and the next
/// action logs in with the new password and is confirmed. A reload that changes nothing keeps the
/// feed's connection and the target's session.
@Suite(.serialized) struct CredentialRotationTests {
    private static let recording = #"{"recordingState":"Recording","mute":"Off","callType":"Inbound"}"#
    private static let rotated = "rotated-secret-4417"

    @Test(arguments: GenesysProviderTests.transports)
    func aRotatedPasswordTakesEffectAtReload(_ transport: String) async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-rotate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let passwordFile = directory.appendingPathComponent("gws-password").path
        try GenesysPeer.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        // Read from the file on each load, as the real daemon does.
        let text = GenesysProviderTests.yaml(
            peer: peer, deadline: "5s", transport: transport, password: "${file:\(passwordFile)}",
            stateDirectory: directory.appendingPathComponent("state").path)
        let loader = GenesysProviderTests.loader
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        let daemon = try Daemon(
            configuration: try loader.load(yaml: text, file: "gws.yaml"), logger: Logger(label: "mutewarden") { _ in handler },
            reloader: { () throws(ConfigurationError) in try loader.load(yaml: text, file: "gws.yaml") })
        let (signals, control) = AsyncStream<DaemonSignal>.makeStream()
        let run = Task { try await daemon.run(signals: signals) }
        func lines() -> [String] { handler.store.lines() }
        func waitForLine(_ fragments: String..., after count: Int = 0) async -> Bool {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if lines().dropFirst(count).contains(where: { line in fragments.allSatisfy(line.contains) }) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        try await peer.waitForSubscribers()
        try await peer.createCall(id: "R1", userData: ["PCI_STAGE": "CARD"], fields: Self.recording)
        #expect(await waitForLine("audit=action.confirmed", "action=pause-recording", "call=R1"))

        // Nothing changed: the feed keeps its connection, the target its session.
        let beforeQuiet = lines().count
        control.yield(.reload)
        #expect(await waitForLine("configuration reloaded", after: beforeQuiet))
        let quietReload = lines().dropFirst(beforeQuiet).first { $0.contains("configuration reloaded") } ?? ""
        #expect(!quietReload.contains("feeds restarted") && !quietReload.contains("targets rebuilt"), "\(quietReload)")

        // The password is rotated on the platform and in the file, then SIGHUP.
        try await peer.configure(password: Self.rotated)
        try Self.rotated.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let beforeRotation = lines().count
        control.yield(.reload)
        #expect(await waitForLine("configuration reloaded", "feeds restarted: gws", "targets rebuilt: voice", after: beforeRotation))
        let rotationReload = lines().dropFirst(beforeRotation).first { $0.contains("configuration reloaded") } ?? ""
        #expect(rotationReload.contains("closed: genesys session \(peer.baseURL) as \(GenesysPeer.user)"), "\(rotationReload)")
        try await peer.waitForSubscribers()

        // The platform forgets every session: the next action must log in, with the new password.
        try await peer.expireSessions()
        try await peer.clearRequests()
        try await peer.setUserData("R1", ["PCI_STAGE": "DONE"])
        #expect(await waitForLine("audit=action.confirmed", "action=resume-recording", "call=R1", after: beforeRotation))
        let requests = try await peer.requests()
        let resumes = requests.filter { $0["operationName"]?.string == "ResumeCallRecording" }
        #expect(resumes.last?["httpStatus"]?.int == 200, "\(resumes)")
        // Every request since the rotation that carried credentials (the resume, and any login)
        // carried the new password; none the old one.
        let authenticated = requests.filter { $0["basicAuth"]?.string != "none" }
        #expect(resumes.contains { $0["basicAuth"]?.string == "valid" && $0["httpStatus"]?.int == 200 }, "\(resumes)")
        #expect(authenticated.allSatisfy { $0["basicAuth"]?.string == "valid" }, "\(authenticated)")
        #expect(!lines().contains { $0.contains("PCI control failure") })
        #expect(!lines().contains { $0.contains(GenesysPeer.password) || $0.contains(Self.rotated) })

        control.yield(.terminate)
        #expect(try await run.value == 0)
        await peer.stop()
    }
}
