import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A python-socketio server (Peers/sio_peer.py) on 127.0.0.1, for the socket.io client's tests
/// and the Voicenter provider's: Debian's python3-socketio 5.x for Engine.IO v4, python-socketio
/// 4.6 in a venv made from PyPI (``PythonEnvironment``) for v3, the version Voicenter's servers
/// speak. A peer that cannot start fails the test.
public final class SocketIOServerPeer: Sendable {
    public let process: PeerProcess
    public let port: Int
    /// 3 or 4.
    public let engineIO: Int

    /// python-socketio 4.6.1 on python-engineio 3.14.2, the last to speak Engine.IO v3; aiohttp
    /// 3.8, the line Debian bookworm ships for the v4 peer.
    public static let engineIOv3Requirements = ["python-socketio==4.6.1", "python-engineio==3.14.2", "aiohttp==3.8.6"]

    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Peers/sio_peer.py").path

    private init(process: PeerProcess, port: Int, engineIO: Int) {
        self.process = process
        self.port = port
        self.engineIO = engineIO
    }

    /// The interpreter that runs a server of Engine.IO `version` (3 or 4).
    public static func python(engineIO version: Int) async throws -> String {
        version == 3
            ? try await PythonEnvironment.interpreter(name: "socketio-4.6", requirements: engineIOv3Requirements)
            : try locateTool("python3")
    }

    /// Starts a server of Engine.IO `version` on a free port. `token` is the one it accepts
    /// (`*`: any, until `/test/refuse`); the heartbeat timing is in seconds. `serverTimeout`, once
    /// a session is connected, replaces `pingTimeout` in the server's own waits: the server then
    /// outlasts a client that stops hearing from it, and the client's deadline is what ends it.
    public static func start(
        engineIO version: Int, token: String, pingInterval: Double = 25, pingTimeout: Double = 20,
        serverTimeout: Double? = nil
    ) async throws -> SocketIOServerPeer {
        let python = try await python(engineIO: version)
        let arguments =
            [
                script, "--port", "0", "--token", token, "--ping-interval", String(pingInterval), "--ping-timeout",
                String(pingTimeout),
            ] + (serverTimeout.map { ["--server-timeout", String($0)] } ?? [])
        let process = try await PeerProcess.start(python, arguments, name: "sio_peer.py (Engine.IO v\(version))")
        do {
            let line = try await process.waitForLine(
                timeout: .seconds(30), "the peer's port (is python3-socketio installed?)"
            ) { $0.hasPrefix("PORT ") }
            guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port: \(line)") }
            guard process.stdoutLines.contains(where: { $0.hasSuffix("EIO \(version)") }) else {
                throw process.failure("the peer does not speak Engine.IO v\(version)")
            }
            return SocketIOServerPeer(process: process, port: port, engineIO: version)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public var lines: [String] { process.stdoutLines }

    public func waitForLine(_ line: String, timeout: Duration = .seconds(20)) async throws {
        try await process.waitForLine(timeout: timeout, "the line \"\(line)\"") { $0 == line }
    }

    public func count(_ line: String) -> Int { lines.filter { $0 == line }.count }

    public func stop() async { await process.stop() }
}
