import CryptoExtras
import Foundation
import JWTKit
import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenModel
import MutewardenTesting

#if canImport(Glibc)
import Glibc
#endif

/// A monotonic clock the test moves by hand: key refreshes are rate-limited over minutes.
final class ManualClock: MonotonicClock {
    private let instant = Locked(MonotonicInstant(nanoseconds: 1_000_000_000_000))
    func now() -> MonotonicInstant { instant.withLock { $0 } }
    func advance(_ duration: Duration) { instant.withLock { $0 = $0 + duration } }
}

/// RSA signing keys made for the tests, once per test process (key generation is the slow part).
struct TestKey: Sendable {
    let kid: String
    let privateKey: JWTKit.Insecure.RSA.PrivateKey

    static let shared = Task { () throws -> [TestKey] in
        try (0..<4).map { index in
            TestKey(kid: "test-key-\(index)", privateKey: try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048)))
        }
    }

    static func all() async throws -> [TestKey] { try await shared.value }

    /// The public half as a JWKS entry, as Microsoft publishes them (no `alg`).
    var jwk: [String: String] {
        let (modulus, exponent) = try! privateKey.publicKey.getKeyPrimitives()
        return ["kty": "RSA", "use": "sig", "kid": kid, "n": Self.base64URL(modulus), "e": Self.base64URL(exponent)]
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A token with `claims`, signed with this key, naming `kid` (this key's unless told).
    func sign(_ claims: CallbackClaims, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(rsa: privateKey, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid ?? self.kid))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid ?? self.kid))
    }
}

/// The issuer the tests play: its OpenID configuration and key set, served by Peers/keys_peer.py
/// on 127.0.0.1, from files the test rewrites to rotate keys.
final class KeysPeer: Sendable {
    static let issuer = "https://acscallautomation.test.example"
    static let audience = "c1d2e3f4-acs-resource-id"
    static let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    let process: PeerProcess
    let port: Int
    let directory: TemporaryDirectory
    let http: HTTPClient

    var configurationURL: String { "http://127.0.0.1:\(port)/openid-configuration" }

    private init(process: PeerProcess, port: Int, directory: TemporaryDirectory) throws {
        self.process = process
        self.port = port
        self.directory = directory
        http = try HTTPClient(configuration: HTTPClientConfiguration(name: "keys", timeout: .seconds(10)))
    }

    static func start(publishing keys: [TestKey]) async throws -> KeysPeer {
        let directory = try TemporaryDirectory("mutewarden-keys")
        let process = try await PeerProcess.start(
            try locateTool("python3"), [peersDirectory + "/keys_peer.py", "--directory", directory.path, "--lifetime", "600"],
            name: "keys_peer.py")
        do {
            let line = try await process.waitForLine(timeout: .seconds(30), "the port line") { $0.hasPrefix("port ") }
            guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port line: \(line)") }
            let peer = try KeysPeer(process: process, port: port, directory: directory)
            try peer.write("openid-configuration", ["issuer": issuer, "jwks_uri": "http://127.0.0.1:\(port)/jwks"])
            try peer.publish(keys)
            return peer
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    func publish(_ keys: [TestKey]) throws {
        try write("jwks", ["keys": keys.map(\.jwk)])
    }

    func write(_ name: String, _ document: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: document)
        let temporary = directory.appending(".\(name).tmp")
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, directory.appending(name)) == 0 else { throw TestFailure("rename: \(errno)") }
    }

    /// Requests per path so far.
    func requests(_ path: String) async throws -> Int {
        let response = try await http.send(HTTPRequest(.get, "http://127.0.0.1:\(port)/test/stats"))
        let stats = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Int]
        return stats?[path] ?? 0
    }

    func stop() async {
        http.close()
        await process.stop()
    }
}

func withKeysPeer<T>(publishing keys: [TestKey], _ body: (KeysPeer) async throws -> T) async throws -> T {
    let peer = try await KeysPeer.start(publishing: keys)
    do {
        let value = try await body(peer)
        await peer.stop()
        return value
    } catch {
        await peer.stop()
        peer.process.recordLog(reason: "\(error)")
        throw error
    }
}

/// Wall-clock seconds now, as token claims carry them.
func nowSeconds() -> Double { Double(wallClockNanoseconds()) / 1e9 }

func validClaims(audience: String = KeysPeer.audience, issuer: String = KeysPeer.issuer) -> CallbackClaims {
    CallbackClaims(
        issuer: issuer, audiences: [audience], subject: "acs-callbacks", expiration: nowSeconds() + 300, notBefore: nowSeconds() - 10,
        issuedAt: nowSeconds() - 10)
}
