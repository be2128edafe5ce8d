import Foundation
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenGraph

#if canImport(Glibc)
import Glibc
#endif

/// The fake of Graph (Peers/graph_peer.py): calls API, token endpoint, OpenID configuration and
/// keys, and the notifications it signs and posts to the daemon's ingress.
final class GraphPeer: Sendable {
    static let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path
    static let secret = "graph-client-secret-never-logged"
    let process: PeerProcess
    let port: Int
    let control: HTTPClient

    var base: String { "http://127.0.0.1:\(port)" }

    private init(process: PeerProcess, port: Int) throws {
        self.process = process
        self.port = port
        control = try HTTPClient(configuration: HTTPClientConfiguration(name: "graph peer control", timeout: .seconds(20)))
    }

    static func start() async throws -> GraphPeer {
        let process = try await PeerProcess.start(
            try locateTool("python3"), [peersDirectory + "/graph_peer.py", "--lifetime", "600"], name: "graph_peer.py")
        do {
            let line = try await process.waitForLine(timeout: .seconds(60), "the port line") { $0.hasPrefix("port ") }
            guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port line: \(line)") }
            let peer = try GraphPeer(process: process, port: port)
            try await peer.post("/test/config", .object([("client_secret", .string(secret))]))
            return peer
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    @discardableResult
    func post(_ path: String, _ body: JSONValue) async throws -> JSONValue {
        let response = try await control.send(
            HTTPRequest(.post, base + path, headers: [HTTPHeader("Content-Type", "application/json")], text: body.serialized))
        guard response.isSuccess else { throw TestFailure("\(path) answered \(response.status): \(response.text)") }
        return try JSONValue.parse(response.body)
    }

    func stats() async throws -> JSONValue {
        try JSONValue.parse(try await control.send(HTTPRequest(.get, base + "/test/stats")).body)
    }

    /// Signs `body` as told and posts it to the ingress; the ingress's status.
    func notify(_ body: String, token: String = "valid") async throws -> Int {
        let answer = try await post("/test/notify", .object([("body", try JSONValue.parse(Array(body.utf8))), ("token", .string(token))]))
        return answer["status"]?.int ?? -1
    }

    func requests() async throws -> [JSONValue] { try await stats()["requests"]?.array ?? [] }

    func stop() async {
        control.close()
        await process.stop()
    }
}

func established(_ call: String) -> String {
    ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/\##(call)","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established"}}]}"##
}

func tone(_ call: String, _ tone: String = "tone4") -> String {
    ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/\##(call)","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established","toneInfo":{"sequenceId":1,"tone":"\##(tone)"}}}]}"##
}

/// The daemon with a `graph` feed and target on the fake, its ingress on a free loopback port.
final class RunningGraphDaemon: Sendable {
    let daemon: Daemon
    let logs: InMemoryLogStore
    let task: Task<Int32, any Error>
    let stop: AsyncStream<DaemonSignal>.Continuation
    let directory: URL

    init(peer: GraphPeer, kind: String = "pause-recording", secret: String = GraphPeer.secret, quiet: String = "1s") async throws {
        let port = try freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mw-graph-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await peer.post("/test/config", .object([("ingress", .string("http://127.0.0.1:\(port)/callbacks/graph"))]))
        let loader = ConfigurationLoader(
            registry: ProviderRegistry(feeds: [GraphFeedSettings.feedProvider], targets: [GraphTargetSettings.targetProvider]),
            environment: ["GRAPH_SECRET": secret])
        let configuration = try loader.load(
            yaml: """
                ingress: { address: 127.0.0.1, port: \(port), tls: false }
                feeds:
                  graph:
                    type: graph
                    path: /callbacks/graph
                    app_id: app-1
                    tenant: tenant-1
                    openid_configuration: \(peer.base)/oidc
                    keying_quiet_period: \(quiet)
                targets:
                  graph:
                    type: graph
                    tenant: tenant-1
                    client_id: app-1
                    client_secret: "${env:GRAPH_SECRET}"
                    graph_url: \(peer.base)/v1.0
                    authority_url: \(peer.base)
                policies:
                  card:
                    feeds: [graph]
                    start: { attribute: dtmf, equals: keying }
                    stop: { attribute: dtmf, absent: true }
                    actions: [{ kind: \(kind), target: graph, by: call, deadline: 3s }]
                state:
                  directory: \(directory.path)
                """, file: "graph.yaml")
        let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
        logs = handler.store
        daemon = try Daemon(configuration: configuration, logger: Logger(label: "mutewarden") { _ in handler })
        let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
        stop = continuation
        task = Task { [daemon] in try await daemon.run(signals: signals) }
    }

    func lines() -> [String] { logs.lines() }

    func waitForLine(_ fragments: String...) async -> Bool {
        await waitUntil { self.lines().contains { line in fragments.allSatisfy(line.contains) } }
    }

    func count(_ fragments: String...) -> Int { lines().filter { line in fragments.allSatisfy(line.contains) }.count }

    func finish() async throws -> Int32 {
        stop.yield(.terminate)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await task.value
    }
}

func withGraph(
    kind: String = "pause-recording", secret: String = GraphPeer.secret, _ body: (GraphPeer, RunningGraphDaemon) async throws -> Void
) async throws {
    let peer = try await GraphPeer.start()
    do {
        let running = try await RunningGraphDaemon(peer: peer, kind: kind, secret: secret)
        do {
            #expect(await running.waitForLine("audit=feed.up", "feed=graph"))
            try await body(peer, running)
            #expect(!running.lines().contains { $0.contains(GraphPeer.secret) || $0.contains("graph-token-") })
            #expect(try await running.finish() == 0)
        } catch {
            _ = try? await running.finish()
            throw error
        }
        await peer.stop()
    } catch {
        peer.process.recordLog(reason: "\(error)")
        await peer.stop()
        throw error
    }
}

@Suite(.serialized) struct GraphDaemonTests {
    @Test func tonesPauseTheBotsRecordingStatusAndItResumesConfirmedByTheOperations() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            #expect(try await peer.notify(established("call-1")) == 202)
            #expect(try await peer.notify(tone("call-1")) == 202)
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-1"))
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-1"))
            let sent = try await peer.requests()
            #expect(sent.map { $0["body"]?["status"]?.string } == ["notRecording", "recording"])
            #expect(sent.allSatisfy { $0["action"]?.string == "updateRecordingStatus" && $0["authorized"] == .bool(true) })
            // The idempotency keys travel as clientContext, one per direction.
            #expect(Set(sent.compactMap { $0["body"]?["clientContext"]?.string }).count == 2)
            #expect(!running.lines().contains { $0.contains("tone4") })
        }
    }

    @Test func theBotMutesItselfConfirmedByTheRosterAndUnmutes() async throws {
        try await withGraph(kind: "mute") { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            #expect(try await peer.notify(established("call-2")) == 202)
            #expect(try await peer.notify(tone("call-2")) == 202)
            #expect(await running.waitForLine("audit=action.confirmed", "action=mute", "call=call-2"))
            #expect(await running.waitForLine("audit=action.confirmed", "action=unmute", "call=call-2"))
            #expect(try await peer.requests().map { $0["action"]?.string } == ["mute", "unmute"])
        }
    }

    @Test func aRunningOperationIsFollowedUntilItsOutcomeIsNotified() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            try await peer.post("/test/config", .object([("mode", .string("running"))]))
            #expect(try await peer.notify(established("call-3")) == 202)
            #expect(try await peer.notify(tone("call-3")) == 202)
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-3"))
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-3"))
        }
    }

    @Test func aFailedOperationIsAControlFailureWithItsResultInfo() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            try await peer.post("/test/config", .object([("mode", .string("failed"))]))
            #expect(try await peer.notify(established("call-4")) == 202)
            #expect(try await peer.notify(tone("call-4")) == 202)
            #expect(await running.waitForLine("audit=action.failed", "call=call-4", "subcode 8522"))
            #expect(try await peer.requests().count == 1)
        }
    }

    @Test func aTokenThatExpiresMidWindowIsRenewedAndTheUndoGoesThrough() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            #expect(try await peer.notify(established("call-5")) == 202)
            #expect(try await peer.notify(tone("call-5")) == 202)
            #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-5"))
            try await peer.post("/test/revoke", .object([]))
            #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-5"))
            let sent = try await peer.requests()
            #expect(sent.map { $0["authorized"]?.bool } == [true, false, true])
            #expect(try await peer.stats()["token_requests"]?.int == 2)
        }
    }

    @Test func aCallGraphNoLongerKnowsIsGoneOnceTheFeedSaysItEnded() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            try await peer.post("/test/config", .object([("gone", .array([.string("call-6")]))]))
            #expect(try await peer.notify(established("call-6")) == 202)
            #expect(try await peer.notify(tone("call-6")) == 202)
            #expect(await running.waitForLine("audit=action.retry", "call=call-6", "ItemNotFound"))
            let terminated =
                ##"{"value":[{"changeType":"deleted","resourceUrl":"/communications/calls/call-6","resourceData":{"@odata.type":"#microsoft.graph.call","state":"terminated","resultInfo":{"code":"200","subcode":"5001","message":"bye"}}}]}"##
            #expect(try await peer.notify(terminated) == 202)
            #expect(await running.waitForLine("audit=window.closed", "call=call-6", "result=call-ended"))
        }
    }

    @Test func forgedExpiredAndOtherTenantsCallbacksAreRefusedAndChangeNothing() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            for token in ["forged", "expired", "wrong-tenant", "none"] {
                #expect(try await peer.notify(established("call-7"), token: token) == 401, "\(token)")
                #expect(try await peer.notify(tone("call-7"), token: token) == 401, "\(token)")
            }
            #expect(await running.waitForLine("ingress", "bad-signature"))
            #expect(try await peer.requests().isEmpty)
            #expect(running.count("call-7") == 0)
            #expect(running.count("audit=window.opened") == 0)
        }
    }

    @Test func aLegacyIncomingCallIsAnswered204AndAMalformedOneIsSkippedWithoutItsContent() async throws {
        try await withGraph { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            let legacy =
                ##"{"id":"c","participants":[{"identity":"29:x","originator":true}],"isMultiparty":false,"presentedModalityTypes":["audio"],"callState":"incoming","links":{"callback":"https://x"}}"##
            #expect(try await peer.notify(legacy) == 204)
            #expect(await running.waitForLine("legacy-format"))
            let pan = "4111111111111111"
            let withPAN =
                ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/call-8","resourceData":{"@odata.type":"#microsoft.graph.call","state":"established","toneInfo":{"tone":"\##(pan)"}}},"##
                + ##"{"changeType":"updated","resourceUrl":"/communications/calls/call-8/participants","resourceData":[{"id":"p-1","info":{"identity":{"user":{"id":"u-1","displayName":"\##(pan)"}}},"isMuted":false,"note":"\##(pan)"}]}]}"##
            #expect(try await peer.notify(withPAN) == 202)
            #expect(await running.waitForLine("graph notification skipped", "call=call-8"))
            #expect(try await peer.notify(#"{"what":"\#(pan)"}"#) == 400)
            #expect(await running.waitForLine("graph callback refused"))
            #expect(!running.lines().contains { $0.contains(pan) || $0.contains("411111") })
        }
    }

    @Test func aWrongClientSecretIsReportedWithItsAADSTSCodeAndNeverShown() async throws {
        let wrong = "a-wrong-secret-never-logged"
        try await withGraph(secret: wrong) { (peer: GraphPeer, running: RunningGraphDaemon) async throws in
            #expect(try await peer.notify(established("call-9")) == 202)
            #expect(try await peer.notify(tone("call-9")) == 202)
            #expect(await running.waitForLine("audit=action.failed", "call=call-9", "AADSTS7000215"))
            #expect(!running.lines().contains { $0.contains(wrong) })
            #expect(try await peer.requests().isEmpty)
        }
    }
}
