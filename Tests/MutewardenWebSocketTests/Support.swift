import Foundation
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenWebSocket

#if canImport(Glibc)
import Glibc
#endif

/// Every test of the module, one at a time: they start real servers and measure real timeouts, and
/// the CI machine has two cores.
@Suite(.serialized) struct WebSocketTests {}

let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

/// A WebSocket server the test started (the kit's ``PeerProcess``) and the port it listens on.
final class WebSocketPeer: Sendable {
    let process: PeerProcess
    let port: Int

    private init(process: PeerProcess, port: Int) {
        self.process = process
        self.port = port
    }

    /// What the peer printed on its standard output, one line each.
    var lines: [String] { process.stdoutLines }

    /// The Python `websockets` peer (Peers/peer.py), on `port` (0: any free one).
    static func python(port: Int = 0, certificate: String? = nil, key: String? = nil, clientCA: String? = nil)
        async throws -> WebSocketPeer
    {
        var arguments = [peersDirectory.appendingPathComponent("peer.py").path, "--port", String(port)]
        if let certificate, let key { arguments += ["--cert", certificate, "--key", key] }
        if let clientCA { arguments += ["--client-ca", clientCA] }
        let process = try await PeerProcess.start(try locateTool("python3"), arguments, name: "peer.py")
        do {
            let line = try await process.waitForLine("the peer's port (is python3-websockets installed?)") {
                $0.hasPrefix("PORT ")
            }
            guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port: \(line)") }
            return WebSocketPeer(process: process, port: port)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    /// libwebsockets-test-server (a second implementation), on a free port of 127.0.0.1. It cannot
    /// report its port, so it gets a free one; should another process take that port first, the
    /// server exits and the next attempt takes another.
    static func lwsTestServer(tls: (certificate: String, key: String)? = nil) async throws -> WebSocketPeer {
        var lastError: (any Error)?
        for _ in 0..<3 {
            let port = try freePort()
            var arguments = ["-p", String(port), "-i", "lo", "-d", "0"]
            if let tls { arguments += ["-s", "-C", tls.certificate, "-K", tls.key] }
            let process = try await PeerProcess.start(try locateTool("libwebsockets-test-server"), arguments)
            do {
                try await process.eventually(what: "libwebsockets-test-server to listen", timeout: .seconds(20)) {
                    canConnect(port: port) ? true : nil
                }
                return WebSocketPeer(process: process, port: port)
            } catch {
                lastError = error
                await process.stop(SIGKILL)
            }
        }
        throw lastError ?? TestFailure("libwebsockets-test-server did not start")
    }

    func waitForLine(_ line: String, timeout: Duration = .seconds(20)) async throws {
        try await process.waitForLine(timeout: timeout, "the line \"\(line)\"") { $0 == line }
    }

    /// SIGTERM (the Python peer closes its connections with 1001), then SIGKILL if it lingers.
    func stop() async { await process.stop() }
}

/// What one client did: its events, its status changes and its reports.
final class Recorder: Sendable {
    let events = Locked<[WebSocketEvent]>([])
    let statuses = Locked<[ConnectionStatus]>([])
    let reports = Locked<[String]>([])
    private let consumer = Locked<Task<Void, Never>?>(nil)

    func consume(_ client: WebSocketClient) {
        let task = Task {
            for await event in client.events { self.events.withLock { $0.append(event) } }
        }
        consumer.withLock { $0 = task }
    }

    /// Waits until the events stream has finished (after close()).
    func finished() async {
        await consumer.withLock { $0 }?.value
    }

    var texts: [String] {
        events.withLock { events in
            events.compactMap { if case .text(let text) = $0 { text } else { nil } }
        }
    }

    var connections: [WebSocketConnectionInfo] {
        events.withLock { events in
            events.compactMap { if case .connected(let info) = $0 { info } else { nil } }
        }
    }

    var disconnections: [String] {
        events.withLock { events in
            events.compactMap { if case .disconnected(_, let reason) = $0 { reason } else { nil } }
        }
    }

    var downs: [ConnectionStatus] { statuses.withLock { $0.filter { $0.phase == .down } } }
    var ups: Int { statuses.withLock { $0.filter { $0.phase == .up }.count } }

    /// No report or event may ever carry one of `secrets`.
    func expectNoLeak(of secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let texts =
            reports.withLock { $0 } + statuses.withLock { $0.map(\.description) }
            + disconnections
        for secret in secrets {
            for text in texts where text.contains(secret) {
                Issue.record("a report leaked a secret: \(text)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// Fast reconnects so that tests see several attempts in a second or two.
let testReconnect = ReconnectPolicy(
    initialDelay: .milliseconds(50), maximumDelay: .milliseconds(400), stableAfter: .seconds(2))

func testConfiguration(_ url: String, _ configure: (inout WebSocketConfiguration) -> Void = { _ in }) throws
    -> WebSocketConfiguration
{
    var configuration = WebSocketConfiguration(
        url: try WebSocketURL(url), pingInterval: .seconds(5), pongTimeout: .seconds(3), idleTimeout: nil,
        connectTimeout: .seconds(5), closeTimeout: .seconds(2), reconnect: testReconnect)
    configure(&configuration)
    return configuration
}

func makeClient(
    _ configuration: WebSocketConfiguration, service: WebSocketService? = nil,
    resolver: any HostResolver = SystemResolver(), name: String = "test"
) throws -> (WebSocketClient, Recorder) {
    let recorder = Recorder()
    let client = try WebSocketClient(
        name: name, configuration: configuration, service: service, resolver: resolver, randomSeed: 7,
        report: { line in recorder.reports.withLock { $0.append(line) } },
        onStatus: { status in recorder.statuses.withLock { $0.append(status) } })
    recorder.consume(client)
    return (client, recorder)
}

/// A CA, a server certificate for `wss.mutewarden.test` and 127.0.0.1, a client certificate, and an
/// unrelated CA, made with openssl in a temporary directory.
struct TestCertificates {
    let directory: URL
    var ca: String { path("ca.pem") }
    var serverCertificate: String { path("server.pem") }
    var serverKey: String { path("server.key") }
    var clientCertificate: String { path("client.pem") }
    var clientKey: String { path("client.key") }
    var wrongCA: String { path("wrong-ca.pem") }
    static let serverName = "wss.mutewarden.test"

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mutewarden-ws-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try certificates.write(
            "server.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                + "subjectAltName=DNS:\(serverName),IP:127.0.0.1\n")
        try certificates.write(
            "client.ext", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
        for (name, subject) in [("ca", "/CN=mutewarden test CA"), ("wrong-ca", "/CN=some other CA")] {
            try await certificates.openssl(
                ["req", "-x509"] + ec + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", subject])
        }
        for (name, subject) in [("server", "/CN=\(serverName)"), ("client", "/CN=mutewarden test client")] {
            try await certificates.openssl(["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try await certificates.openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return certificates
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    private func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) async throws {
        let result = try await runProgram(try locateTool("openssl"), arguments, workingDirectory: directory)
        guard result.status == 0 else {
            throw TestFailure("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.stderr)")
        }
    }
}

/// A resolver whose answers the test decides, blocking like a slow DNS server would.
final class ScriptedResolver: HostResolver {
    let delay: Duration
    let addresses: [String: [String]]
    let calls = Locked<Int>(0)

    init(delay: Duration = .zero, _ addresses: [String: [String]]) {
        self.delay = delay
        self.addresses = addresses
    }

    func resolve(host: String, port: Int) throws -> [String] {
        calls.withLock { $0 += 1 }
        // The client calls this on a resolver thread of its own (mw-resolve), never on the
        // cooperative pool: blocking it is what a slow DNS server does.
        if delay > .zero { usleep(UInt32(delay.nanosecondsClamped / 1000)) }
        guard let found = addresses[host] else { throw WebSocketError.connection("could not resolve \(host)") }
        return found
    }
}
