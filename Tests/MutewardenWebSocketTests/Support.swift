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

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls `check` until it returns a value, at most `timeout`: every wait in these tests is bounded.
@discardableResult
func eventually<T>(
    _ what: String, timeout: Duration = .seconds(10), _ check: () throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if let value = try check() { return value }
        guard clock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

/// A server process the test started: its stdout lines are kept for the test to check.
final class PeerProcess: Sendable {
    private let process: Process
    private let output = Locked<[String]>([])
    private let partial = Locked<String>("")
    let port: Int

    /// Whether SIGTERM stops it cleanly. The test process starts children from threads that
    /// block SIGTERM, and they inherit that: peer.py unblocks it, libwebsockets-test-server does not.
    private let graceful: Bool

    private init(process: Process, port: Int, graceful: Bool) {
        self.process = process
        self.port = port
        self.graceful = graceful
    }

    var lines: [String] { output.withLock { $0 } }

    /// Starts `executable`; a missing executable fails the test (CI must have every peer).
    private static func launch(_ executable: String, _ arguments: [String]) throws -> (Process, PeerProcess.Box) {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure("\(executable) is missing: install the Makefile's TEST_PACKAGES")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let box = Box()
        _ = ChildOutput(pipe) { box.append(String(decoding: $0, as: UTF8.self)) }
        try process.run()
        return (process, box)
    }

    /// Collects output before the PeerProcess exists (the port line comes first).
    final class Box: Sendable {
        let text = Locked("")
        let target = Locked<PeerProcess?>(nil)
        func append(_ chunk: String) {
            if let peer = target.withLock({ $0 }) {
                peer.receive(chunk)
            } else {
                text.withLock { $0 += chunk }
            }
        }
    }

    private func receive(_ chunk: String) {
        let complete = partial.withLock { partial -> [String] in
            partial += chunk
            var lines = partial.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            partial = lines.removeLast()
            return lines
        }
        output.withLock { $0 += complete }
    }

    /// The Python `websockets` peer (Peers/peer.py), on `port` (0: any free one).
    static func python(port: Int = 0, certificate: String? = nil, key: String? = nil, clientCA: String? = nil)
        async throws -> PeerProcess
    {
        var arguments = [peersDirectory.appendingPathComponent("peer.py").path, "--port", String(port)]
        if let certificate, let key { arguments += ["--cert", certificate, "--key", key] }
        if let clientCA { arguments += ["--client-ca", clientCA] }
        let (process, box) = try launch("/usr/bin/python3", arguments)
        let first = try await eventually("the peer's port", timeout: .seconds(15)) { () -> Int? in
            if !process.isRunning { throw TestFailure("peer.py exited (is python3-websockets installed?)") }
            let text = box.text.withLock { $0 }
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }) else { return nil }
            return Int(line.dropFirst(5))
        }
        let peer = PeerProcess(process: process, port: first, graceful: true)
        let early = box.text.withLock { text -> String in
            defer { text = "" }
            return text
        }
        box.target.withLock { $0 = peer }
        peer.receive(early + box.text.withLock { $0 })
        return peer
    }

    /// libwebsockets-test-server (a second implementation), on a free port of 127.0.0.1.
    static func lwsTestServer(tls: (certificate: String, key: String)? = nil) async throws -> PeerProcess {
        var lastError: (any Error)?
        for _ in 0..<3 {
            let port = try freePort()
            var arguments = ["-p", String(port), "-i", "lo", "-d", "0"]
            if let tls { arguments += ["-s", "-C", tls.certificate, "-K", tls.key] }
            let (process, box) = try launch("/usr/bin/libwebsockets-test-server", arguments)
            let peer = PeerProcess(process: process, port: port, graceful: false)
            box.target.withLock { $0 = peer }
            do {
                try await eventually("libwebsockets-test-server to listen", timeout: .seconds(10)) { () -> Bool? in
                    if !process.isRunning { throw TestFailure("libwebsockets-test-server exited") }
                    return canConnect(port: port) ? true : nil
                }
                return peer
            } catch {
                lastError = error
                await peer.stop()
            }
        }
        throw lastError ?? TestFailure("libwebsockets-test-server did not start")
    }

    func waitForLine(_ line: String, timeout: Duration = .seconds(10)) async throws {
        try await eventually("the peer to print \"\(line)\"", timeout: timeout) {
            lines.contains(line) ? true : nil
        }
    }

    /// SIGTERM (the Python peer closes its connections with 1001), then SIGKILL if it lingers.
    func stop() async {
        guard process.isRunning else { return }
        if graceful { process.terminate() } else { kill(process.processIdentifier, SIGKILL) }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while process.isRunning && clock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// A port nobody listens on right now (the kernel's pick), for servers that cannot report theirs.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
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

    static func make() throws -> TestCertificates {
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
            try certificates.openssl(
                ["req", "-x509"] + ec + ["-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", subject])
        }
        for (name, subject) in [("server", "/CN=\(serverName)"), ("client", "/CN=mutewarden test client")] {
            try certificates.openssl(["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try certificates.openssl([
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

    private func openssl(_ arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            throw TestFailure("/usr/bin/openssl is missing: install the Makefile's TEST_PACKAGES")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("openssl \(arguments.prefix(2).joined(separator: " ")) failed")
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
        if delay > .zero { usleep(UInt32(delay.nanosecondsClamped / 1000)) }
        guard let found = addresses[host] else { throw WebSocketError.connection("could not resolve \(host)") }
        return found
    }
}
