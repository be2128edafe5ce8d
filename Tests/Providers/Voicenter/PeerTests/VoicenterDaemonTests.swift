import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenJSON
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVoicenter

/// A Voicenter account played by the test: extensions and their calls, told to the feed through
/// the in-process socket.io stand-in, with `MuteUnmuteCalls` (received by the fake REST API)
/// applied to the calls' `recording.IsMuted` and announced by an ExtensionEvent, as the platform
/// does.
private final class FakeAccount: Sendable {
    struct Call: Sendable {
        var ivrid: String
        var stage: String
        var muted = false
        var direction = "Incoming"
    }
    private let calls = Locked<[String: [Call]]>([:])
    private let handled = Locked(0)
    let peer: VoicenterRESTPeer
    let connector: FakeConnector

    init(peer: VoicenterRESTPeer, connector: FakeConnector) {
        self.peer = peer
        self.connector = connector
    }

    private func payload(_ sipID: String) -> JSONValue {
        .array(
            (calls.withLock { $0[sipID] } ?? []).map { call in
                .object([
                    ("ivrid", .string(call.ivrid)), ("callstatus", .string("Talking")), ("direction", .string(call.direction)),
                    ("recording", .object([("IsMuted", .number(call.muted ? 1 : 0))])),
                    ("customdata", .object([("PCI_STAGE", .string(call.stage))])),
                ])
            })
    }

    /// Sets an extension's calls without telling the feed (what a snapshot will list).
    func set(_ sipID: String, _ list: [Call]) { calls.withLock { $0[sipID] = list } }

    /// The current connection's `AllExtensionsStatus`.
    func sendSnapshot() async throws {
        let session = try await connector.waitForSession(max(connector.sessions.count, 1))
        let extensions = calls.withLock { $0.keys.sorted() }
        session.push(
            "AllExtensionsStatus",
            .object([
                ("servertime", .number(1_717_000_000)), ("servertimeoffset", .number(120)),
                ("extensions", .array(extensions.map { .object([("extenUser", .string($0)), ("calls", payload($0))]) })),
            ]))
    }

    /// Changes the account, then tells the feed with an ExtensionEvent for the extension.
    func change(_ sipID: String, reason: String, ended: String? = nil, _ edit: (inout [Call]) -> Void) throws {
        calls.withLock { edit(&$0[sipID, default: []]) }
        guard let session = connector.sessions.last else { throw TestFailure("no connection to tell") }
        var data: [(String, JSONValue)] = [("extenUser", .string(sipID)), ("calls", payload(sipID))]
        if let ended { data.append(("currentCall", .object([("ivrid", .string(ended)), ("direction", .string("Incoming"))]))) }
        session.push(
            "ExtensionEvent",
            .object([
                ("reason", .string(reason)), ("data", .object(data)), ("servertime", .number(1_717_000_100)),
                ("servertimeoffset", .number(120)),
            ]))
    }

    /// Applies the MuteUnmuteCalls requests not yet applied; returns how many there were.
    func applyRequests() async throws -> Int {
        let requests = try await peer.requests("mute")
        let new = handled.withLock { done -> ArraySlice<JSONValue> in
            defer { done = requests.count }
            return requests.dropFirst(done)
        }
        for request in new {
            guard let parameters = request["body"], let state = parameters["state"]?.string else { continue }
            let muted = state == "1"
            if let ivrid = parameters["ivrid"]?.string,
                let sipID = calls.withLock({ $0.first { $0.value.contains { $0.ivrid == ivrid } }?.key })
            {
                try change(sipID, reason: "userStatusUpdate") { calls in
                    for index in calls.indices where calls[index].ivrid == ivrid { calls[index].muted = muted }
                }
            } else if let sipID = parameters["extension"]?.string {
                // By extension: the calls the extension has now, and no later one.
                try change(sipID, reason: "userStatusUpdate") { calls in
                    for index in calls.indices { calls[index].muted = muted }
                }
            }
        }
        return new.count
    }
}

/// The daemon with a `voicenter` feed (on the stand-in) and target (on the fake REST API), and
/// the account applying what it is sent, until `finish()`.
private final class RunningDaemon: Sendable {
    let daemon: Daemon
    let logs: InMemoryLogStore
    let task: Task<Int32, any Error>
    let stop: AsyncStream<DaemonSignal>.Continuation
    let account: FakeAccount
    let platform: Task<Void, Never>
    let directory: URL

    init(peer: VoicenterRESTPeer, scope: String, by: String) async throws {
        let connector = FakeConnector()
        account = FakeAccount(peer: peer, connector: connector)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-vc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let loader = ConfigurationLoader(
            registry: ProviderRegistry(
                feeds: [VoicenterFeedSettings.feedProvider(connector: VoicenterConnectorChoice(name: "fake", connector: connector))],
                targets: [VoicenterTargetSettings.targetProvider]),
            environment: ["VC_TOKEN": VoicenterRESTPeer.token])
        let configuration = try loader.load(
            yaml: """
                feeds:
                  vc:
                    type: voicenter
                    token: "${env:VC_TOKEN}"
                    login_url: \(peer.loginURL)
                    servers: ["http://127.0.0.1:1"]
                    reconnect_max: 1s
                targets:
                  rec:
                    type: voicenter
                    monitor_url: \(peer.monitorURL)
                policies:
                  card:
                    feeds: [vc]
                    scope: \(scope)
                    start: { attribute: PCI_STAGE, equals: CARD }
                    stop: { attribute: PCI_STAGE, equals: DONE }
                    actions: [{ kind: pause-recording, target: rec, by: \(by), deadline: 5s }]
                logging:
                  attributes: [PCI_STAGE]
                state:
                  directory: \(directory.path)
                """, file: "vc.yaml")
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        logs = handler.store
        daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
        let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
        stop = continuation
        task = Task { [daemon] in try await daemon.run(signals: signals) }
        platform = Task { [account] in
            while !Task.isCancelled {
                _ = try? await account.applyRequests()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func lines() -> [String] { logs.lines() }

    func waitForLine(_ fragments: String...) async -> Bool {
        await waitUntil { self.lines().contains { line in fragments.allSatisfy(line.contains) } }
    }

    func count(_ fragments: String...) -> Int { lines().filter { line in fragments.allSatisfy(line.contains) }.count }

    func finish() async throws -> Int32 {
        platform.cancel()
        stop.yield(.terminate)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await task.value
    }
}

/// The feed and the target in the real daemon, everything but the socket.io wire: what the
/// socket.io wiring will run again over python-socketio.
@Suite(.serialized) struct VoicenterDaemonTests {
    @Test func aCaptureByIvridPausesAndResumesTheRecordingEachConfirmedByIsMuted() async throws {
        try await withRESTPeer { peer in
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call")
            running.account.set("KGpK4iWq", [])
            try await running.account.sendSnapshot()
            #expect(await running.waitForLine("audit=feed.up", "feed=vc"))
            try running.account.change("KGpK4iWq", reason: "ANSWER") { $0 = [.init(ivrid: "4509123456789012343", stage: "CARD")] }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=4509123456789012343"))
            try running.account.change("KGpK4iWq", reason: "ANSWER") { $0[0].stage = "DONE" }
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=4509123456789012343"))
            let sent = try await peer.requests("mute").compactMap(\.["body"])
            #expect(
                sent == [
                    try JSONValue.parse(#"{"ivrid":"4509123456789012343","state":"1"}"#),
                    try JSONValue.parse(#"{"ivrid":"4509123456789012343","state":"0"}"#),
                ])
            #expect(!running.lines().contains { $0.contains(VoicenterRESTPeer.token) })
            #expect(try await running.finish() == 0)
        }
    }

    @Test func aCaptureByExtensionCoversACallMadeDuringTheWindowAndUndoesBoth() async throws {
        try await withRESTPeer { peer in
            let running = try await RunningDaemon(peer: peer, scope: "extension", by: "extension")
            running.account.set("KGpK4iWq", [.init(ivrid: "C-1", stage: "NONE")])
            try await running.account.sendSnapshot()
            #expect(await running.waitForLine("audit=feed.up", "feed=vc"))
            try running.account.change("KGpK4iWq", reason: "ANSWER") { $0[0].stage = "CARD" }
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording"))
            // The agent calls out during the capture: the extension's earlier pause does not cover
            // the new call, so the daemon sends it again, and the new call is confirmed paused.
            try running.account.change("KGpK4iWq", reason: "NEWCALL") {
                $0.append(.init(ivrid: "C-2", stage: "NONE", direction: "Outgoing"))
            }
            #expect(await running.waitForLine("audit=window.opened", "result=extended"))
            #expect(await waitUntil { running.count("audit=action.confirmed", "action=pause-recording") >= 2 })
            try running.account.change("KGpK4iWq", reason: "ANSWER") { $0[0].stage = "DONE" }
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording"))
            let sent = try await peer.requests("mute").compactMap(\.["body"])
            #expect(
                sent == [
                    try JSONValue.parse(#"{"extension":"KGpK4iWq","state":"1"}"#),
                    try JSONValue.parse(#"{"extension":"KGpK4iWq","state":"1"}"#),
                    try JSONValue.parse(#"{"extension":"KGpK4iWq","state":"0"}"#),
                ])
            #expect(try await running.finish() == 0)
        }
    }

    @Test func anIvridThePlatformNoLongerKnowsIsAbandonedOnceTheFeedSaysTheCallEnded() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"gone":["G-1"]}"#)
            let running = try await RunningDaemon(peer: peer, scope: "call", by: "call")
            running.account.set("A", [])
            try await running.account.sendSnapshot()
            #expect(await running.waitForLine("audit=feed.up", "feed=vc"))
            try running.account.change("A", reason: "ANSWER") { $0 = [.init(ivrid: "G-1", stage: "CARD")] }
            // Live on the feed: "not found" is not believed, and is retried.
            #expect(await running.waitForLine("audit=action.retry", "call=G-1", "UniqueIvrID not found"))
            try running.account.change("A", reason: "HANGUP", ended: "G-1") { $0 = [] }
            #expect(await running.waitForLine("audit=window.closed", "call=G-1", "result=call-ended"))
            #expect(!running.lines().contains { $0.contains("audit=action.failed") })
            #expect(try await running.finish() == 0)
        }
    }
}
