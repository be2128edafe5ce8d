import Foundation
import MutewardenHTTP
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A peer that cannot be started. It fails the test: a missing python3 or openssl in CI is a
/// broken set-up (`make test` installs them through TEST_PACKAGES), not a reason to skip.
struct PeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An executable from the Debian paths first (what TEST_PACKAGES installs), then from PATH.
func locateTool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in ["/usr/bin", "/usr/sbin", "/bin"] + path.split(separator: ":").map(String.init) {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw PeerError("\(name) is not installed; the HTTP tests need it (make test installs it)")
}

/// Runs a tool to completion, killing it after 60 s, and fails on a non-zero exit.
func runTool(_ name: String, _ arguments: [String], in directory: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try locateTool(name))
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let killer = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: killer)
    let output = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    guard process.terminationStatus == 0 else {
        throw PeerError("\(name) \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
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

    /// Made once per test process: key generation is the slow part.
    static let shared: Result<TestPKI, any Error> = Result { try TestPKI.generate() }

    static func generate() throws -> TestPKI {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-http-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // The keys are throw-away, but a temporary directory per test run still adds up.
        atexit {
            if case .success(let pki) = TestPKI.shared { try? FileManager.default.removeItem(atPath: pki.directory) }
        }
        let pki = TestPKI(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "/CN=mutewarden test CA"), ("other-ca", "/CN=some other CA")] {
            try runTool(
                "openssl",
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
            try runTool(
                "openssl", ["req", "-new"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject],
                in: directory)
            try runTool(
                "openssl",
                [
                    "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext",
                ], in: directory)
        }
        try runTool(
            "openssl",
            ["pkey", "-in", "client.key", "-aes256", "-passout", "pass:\(pki.clientKeyPassword)", "-out", "client-encrypted.key"],
            in: directory)
        return pki
    }
}

/// The Python peer (Peers/http_peer.py) in a process of its own, on ephemeral ports.
final class PythonPeer {
    private let process: Process
    private let input: Pipe
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try locateTool("python3"))
        process.arguments = arguments
        // The peer exits when this pipe closes, so it cannot outlive a crashed test run.
        let input = Pipe()
        process.standardInput = input
        try process.run()
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        for _ in 0..<750 {  // 15 s at most
            if let data = FileManager.default.contents(atPath: portFile),
                let ports = try? JSONDecoder().decode(Ports.self, from: data)
            {
                return PythonPeer(process: process, input: input, ports: ports)
            }
            if !process.isRunning {
                throw PeerError("the Python peer exited with status \(process.terminationStatus) before listening")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        stop(process)
        throw PeerError("the Python peer did not report its ports within 15 s")
    }

    private init(process: Process, input: Pipe, ports: Ports) {
        self.process = process
        self.input = input
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

    deinit {
        try? input.fileHandleForWriting.close()
        stop(process)
    }
}

/// nghttpd (Debian nghttp2-server): a real HTTP/2 server over TLS, serving files from a folder.
final class HTTP2Peer {
    private let process: Process
    let port: Int
    let documentRoot: String

    static func start(pki: TestPKI) async throws -> HTTP2Peer {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-h2-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "hello over h2".write(toFile: root + "/hello.txt", atomically: true, encoding: .utf8)
        let tool = try locateTool("nghttpd")
        // nghttpd wants a port number: take a free one and retry if another process takes it first.
        for _ in 0..<3 {
            let port = try freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["--address=127.0.0.1", "--htdocs=\(root)", "\(port)", pki.serverKey, pki.serverCertificate]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<250 {  // 5 s at most
                if canConnect(port: port) { return HTTP2Peer(process: process, port: port, documentRoot: root) }
                if !process.isRunning { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            stop(process)
        }
        throw PeerError("nghttpd did not start listening")
    }

    private init(process: Process, port: Int, documentRoot: String) {
        self.process = process
        self.port = port
        self.documentRoot = documentRoot
    }

    deinit {
        stop(process)
        try? FileManager.default.removeItem(atPath: documentRoot)
    }
}

/// SIGKILL, not terminate(): a child started from a dispatch thread inherits its blocked signal
/// mask, so nghttpd never sees SIGTERM and waitUntilExit would wait forever.
func stop(_ process: Process) {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// A port nothing listens on right now (bound, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw PeerError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
            bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
        }
    }
    guard bound else { throw PeerError("bind() failed") }
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
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
