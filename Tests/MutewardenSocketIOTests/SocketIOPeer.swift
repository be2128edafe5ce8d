import Foundation
import MutewardenJSON
import MutewardenModel
import MutewardenSocketIO
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The peer tests, one at a time: each starts a server and measures real heartbeats, and the CI
/// machine has two cores.
@Suite(.serialized) struct SocketIOPeerTests {}

/// A socket.io server the test started (the test kit's SocketIOServerPeer) and its version.
final class SocketIOPeer: Sendable {
    let server: SocketIOServerPeer
    let version: EngineIOVersion
    static let token = "peer-token-9f3e71c2"

    private init(server: SocketIOServerPeer, version: EngineIOVersion) {
        self.server = server
        self.version = version
    }

    /// Starts a server of `version` on a free port of 127.0.0.1, with its heartbeat timing in
    /// seconds.
    static func start(
        _ version: EngineIOVersion, pingInterval: Double = 25, pingTimeout: Double = 20, serverTimeout: Double? = nil
    ) async throws -> SocketIOPeer {
        let server = try await SocketIOServerPeer.start(
            engineIO: version == .v3 ? 3 : 4, token: token, pingInterval: pingInterval, pingTimeout: pingTimeout,
            serverTimeout: serverTimeout)
        return SocketIOPeer(server: server, version: version)
    }

    var process: PeerProcess { server.process }
    var port: Int { server.port }
    var url: String { server.url }
    var lines: [String] { server.lines }

    func waitForLine(_ line: String, timeout: Duration = .seconds(20)) async throws {
        try await server.waitForLine(line, timeout: timeout)
    }

    func count(_ line: String) -> Int { server.count(line) }

    func stop() async { await server.stop() }
}

/// What a client reported, for the tests to check (and to check that no secret is in it).
final class Reports: Sendable {
    let lines = Locked<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func record(_ line: String) { lines.withLock { $0.append(line) } }

    func expectNoLeak(of secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for line in all {
            for secret in secrets where line.contains(secret) {
                Issue.record("a report leaked a secret: \(line)", sourceLocation: sourceLocation)
            }
        }
    }
}

func makeClient(
    _ peer: SocketIOPeer, version: SocketIOVersionChoice? = nil, token: String = SocketIOPeer.token,
    configure: (inout SocketIOConfiguration) -> Void = { _ in }
) throws -> (SocketIOClient, Reports) {
    var configuration = try SocketIOConfiguration(
        url: peer.url, query: [SocketIOQueryItem("token", token)],
        version: version ?? (peer.version == .v3 ? .v3 : .v4), connectTimeout: .seconds(5), handshakeTimeout: .seconds(5))
    configure(&configuration)
    let reports = Reports()
    let client = try SocketIOClient(name: "test", configuration: configuration, report: { reports.record($0) })
    return (client, reports)
}

/// Asks the peer to do something, through the session itself.
func please(_ session: SocketIOSession, _ request: JSONValue) throws {
    try session.emit("please", request)
}

/// The next event, within `timeout`: past it, the session is closed and the test fails.
func nextEvent(_ session: SocketIOSession, timeout: Duration = .seconds(20)) async throws -> SocketIOSessionEvent {
    // The session is not Sendable and cannot be raced against a timer; its emitter can close it.
    let emitter = session.emitter
    let expired = Locked(false)
    let timer = Task {
        try await Task.sleep(for: timeout)
        expired.withLock { $0 = true }
        await emitter.close()
    }
    defer { timer.cancel() }
    let event = await session.next()
    if expired.withLock({ $0 }) { throw TestFailure("no event within \(timeout)") }
    guard let event else { throw TestFailure("the session's events ended") }
    return event
}

/// Events until one that `predicate` picks, skipping the rest.
func firstEvent(_ session: SocketIOSession, where predicate: (SocketIOSessionEvent) -> Bool) async throws
    -> SocketIOSessionEvent
{
    while true {
        let event = try await nextEvent(session)
        if predicate(event) { return event }
        if case .ended(let end) = event { throw TestFailure("the session ended first: \(end)") }
    }
}
