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

let socketIOPeersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

/// python-socketio 4.6.1 on python-engineio 3.14.2, the last to speak Engine.IO v3, as Voicenter's
/// servers do; aiohttp 3.8, the line Debian bookworm ships for the v4 peer.
let engineIOv3Requirements = ["python-socketio==4.6.1", "python-engineio==3.14.2", "aiohttp==3.8.6"]

/// A socket.io server the test started (Peers/sio_peer.py) and the port it listens on.
final class SocketIOPeer: Sendable {
    let process: PeerProcess
    let port: Int
    let version: EngineIOVersion
    static let token = "peer-token-9f3e71c2"

    private init(process: PeerProcess, port: Int, version: EngineIOVersion) {
        self.process = process
        self.port = port
        self.version = version
    }

    /// The interpreter that runs a server of `version`: Debian's python3 with python3-socketio
    /// (5.x) for v4, a venv made from PyPI for v3.
    static func python(for version: EngineIOVersion) async throws -> String {
        switch version {
        case .v4: try locateTool("python3")
        case .v3: try await PythonEnvironment.interpreter(name: "socketio-4.6", requirements: engineIOv3Requirements)
        }
    }

    /// Starts a server of `version` on a free port of 127.0.0.1, with its heartbeat timing in
    /// seconds.
    static func start(_ version: EngineIOVersion, pingInterval: Double = 25, pingTimeout: Double = 20) async throws
        -> SocketIOPeer
    {
        let python = try await python(for: version)
        let arguments = [
            socketIOPeersDirectory.appendingPathComponent("sio_peer.py").path, "--port", "0", "--token", token,
            "--ping-interval", String(pingInterval), "--ping-timeout", String(pingTimeout),
        ]
        let process = try await PeerProcess.start(python, arguments, name: "sio_peer.py (Engine.IO v\(version.rawValue))")
        do {
            let line = try await process.waitForLine(
                timeout: .seconds(30), "the peer's port (is python3-socketio installed?)"
            ) { $0.hasPrefix("PORT ") }
            guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port: \(line)") }
            guard process.lines.contains(where: { $0.hasSuffix("EIO \(version.rawValue)") }) else {
                throw process.failure("the peer does not speak Engine.IO v\(version.rawValue)")
            }
            return SocketIOPeer(process: process, port: port, version: version)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    var lines: [String] { process.stdoutLines }

    func waitForLine(_ line: String, timeout: Duration = .seconds(20)) async throws {
        try await process.waitForLine(timeout: timeout, "the line \"\(line)\"") { $0 == line }
    }

    func count(_ line: String) -> Int { lines.filter { $0 == line }.count }

    func stop() async { await process.stop() }
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
