import Foundation
import MutewardenHTTP
import MutewardenTesting
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// A peer that cannot be started fails the test: a missing python3, openssl or nghttpd in CI is a
// broken set-up (`make test` installs them through TEST_PACKAGES), not a reason to skip.

/// Runs openssl in `directory` to completion and fails on a non-zero exit.
private func openssl(_ arguments: [String], in directory: String) async throws {
    let result = try await runProgram(
        try locateTool("openssl"), arguments, workingDirectory: URL(fileURLWithPath: directory))
    guard result.status == 0 else {
        throw TestFailure("openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)")
    }
}

/// A throw-away PKI made with the openssl CLI: a CA, a server certificate for localhost and
/// 127.0.0.1, a client certificate with an encrypted key, and an unrelated CA.
struct TestPKI: Sendable {
    let directory: String
    var caCertificate: String { directory + "/ca.crt" }
    var otherCACertificate: String { directory + "/other-ca.crt" }
    var serverCertificate: String { directory + "/server.crt" }
    var serverKey: String { directory + "/server.key" }
    var clientCertificate: String { directory + "/client.crt" }
    var clientKey: String { directory + "/client-encrypted.key" }
    let clientKeyPassword = "peer-key-passphrase"

    /// Made once per test process, by whichever test asks first: key generation is the slow part.
    private static let making = Task { try await TestPKI.generate() }

    static func shared() async throws -> TestPKI { try await making.value }

    /// The directory to remove when the test process exits.
    private static let made = Mutex<String?>(nil)

    private static func generate() async throws -> TestPKI {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-http-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // The keys are throw-away, but a temporary directory per test run still adds up.
        made.withLock { $0 = directory }
        atexit {
            if let directory = TestPKI.made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
        }
        let pki = TestPKI(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "/CN=mutewarden test CA"), ("other-ca", "/CN=some other CA")] {
            try await openssl(
                ["req", "-x509"] + ec + [
                    "-keyout", "\(name).key", "-out", "\(name).crt", "-days", "2", "-subj", subject,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ], in: directory)
        }
        let leaves = [
            ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
            ("client", "/CN=mutewarden-client", "extendedKeyUsage=clientAuth\n"),
        ]
        for (name, subject, extensions) in leaves {
            try extensions.write(toFile: "\(directory)/\(name).ext", atomically: true, encoding: .utf8)
            try await openssl(
                ["req", "-new"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject],
                in: directory)
            try await openssl(
                [
                    "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext",
                ], in: directory)
        }
        try await openssl(
            ["pkey", "-in", "client.key", "-aes256", "-passout", "pass:\(pki.clientKeyPassword)", "-out", "client-encrypted.key"],
            in: directory)
        return pki
    }
}

/// The Python peer (Peers/http_peer.py) in a process of its own, on ephemeral ports. It exits when
/// its standard input closes (the kit's peer holds it), so it cannot outlive a crashed test run;
/// this object going away stops it.
final class PythonPeer {
    let process: PeerProcess
    let httpPort: Int
    let httpsPort: Int?
    let mtlsPort: Int?

    private struct Ports: Decodable {
        var http: Int
        var https: Int?
        var mtls: Int?
    }

    static func start(tls pki: TestPKI? = nil) async throws -> PythonPeer {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Peers/http_peer.py").path
        let portFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-http-peer-\(UUID().uuidString).json").path
        var arguments = [script, "--port-file", portFile, "--lifetime", "300"]
        if let pki {
            arguments += [
                "--tls-cert", pki.serverCertificate, "--tls-key", pki.serverKey, "--client-ca", pki.caCertificate,
            ]
        }
        let process = try await PeerProcess.start(try locateTool("python3"), arguments, name: "http_peer.py")
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        do {
            let ports = try await process.eventually(what: "the Python peer's ports", timeout: .seconds(30)) {
                FileManager.default.contents(atPath: portFile).flatMap { try? JSONDecoder().decode(Ports.self, from: $0) }
            }
            return PythonPeer(process: process, ports: ports)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    private init(process: PeerProcess, ports: Ports) {
        self.process = process
        httpPort = ports.http
        httpsPort = ports.https
        mtlsPort = ports.mtls
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(httpPort)\(path)" }
    func httpsURL(_ path: String, host: String = "127.0.0.1") -> String { "https://\(host):\(httpsPort ?? 0)\(path)" }
    func mtlsURL(_ path: String) -> String { "https://127.0.0.1:\(mtlsPort ?? 0)\(path)" }

    struct Stats: Decodable {
        var connections: [String: Int]
        var requests: [String: Int]
    }

    func stats(using client: HTTPClient) async throws -> Stats {
        let response = try await client.send(HTTPRequest(.get, url("/stats")))
        return try JSONDecoder().decode(Stats.self, from: Data(response.body))
    }

    /// Waits (bounded) until the peer has received `count` requests `key` ("GET /slow"): they
    /// are in flight, held by the peer if it is slow to answer them. Asks through a client of its
    /// own, on a connection of its own.
    func waitForRequests(_ key: String, count: Int = 1, timeout: Duration = .seconds(20)) async throws {
        let observer = try makeClient("observer")
        defer { observer.close() }
        try await process.eventually(what: "\(count) request(s) \(key) at the peer", timeout: timeout) {
            try await stats(using: observer).requests[key, default: 0] >= count ? true : nil
        }
    }
}

/// nghttpd (Debian nghttp2-server): a real HTTP/2 server over TLS, serving files from a folder.
final class HTTP2Peer {
    let process: PeerProcess
    let port: Int
    private let documentRoot: TemporaryDirectory

    static func start(pki: TestPKI) async throws -> HTTP2Peer {
        let root = try TemporaryDirectory("mutewarden-h2")
        try "hello over h2".write(toFile: root.appending("hello.txt"), atomically: true, encoding: .utf8)
        let tool = try locateTool("nghttpd")
        // nghttpd wants a port number: take a free one, and another should a process take it first
        // (nghttpd then exits).
        var lastError: (any Error)?
        for _ in 0..<3 {
            let port = try freePort()
            let process = try await PeerProcess.start(
                tool, ["--address=127.0.0.1", "--htdocs=\(root.path)", "\(port)", pki.serverKey, pki.serverCertificate])
            do {
                try await process.eventually(what: "nghttpd to listen on \(port)") { canConnect(port: port) ? true : nil }
                return HTTP2Peer(process: process, port: port, documentRoot: root)
            } catch {
                lastError = error
                await process.stop(SIGKILL)
            }
        }
        throw lastError ?? TestFailure("nghttpd did not start listening")
    }

    private init(process: PeerProcess, port: Int, documentRoot: TemporaryDirectory) {
        self.process = process
        self.port = port
        self.documentRoot = documentRoot
    }
}
