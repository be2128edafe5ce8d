import Foundation
import MutewardenHTTP
import MutewardenJSON
import MutewardenTesting

#if canImport(Glibc)
import Glibc
#endif

/// The fake Voicenter REST APIs (Peers/voicenter_rest_peer.py: login, refresh, MuteUnmuteCalls
/// and a control API), one python3 process per test on 127.0.0.1 and a port the kernel chose.
/// A missing python3 fails the test: `make test` installs it (TEST_PACKAGES).
final class VoicenterRESTPeer: Sendable {
    static let token = "monitor-token-value"
    static let email = "agent@example.com"
    static let pin = "pin-4821"
    static let username = "ops"
    static let password = "account-password-value"

    static let peersDirectory: String =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    let process: PeerProcess
    let port: Int
    /// For the control API, on a transport of its own: the peer is driven from outside the code
    /// under test.
    private let control: HTTPClient

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var loginURL: String { baseURL + "/monitorAPI" }
    var monitorURL: String { baseURL }

    static func start() async throws -> VoicenterRESTPeer {
        let process = try await PeerProcess.start(
            try locateTool("python3"),
            [
                peersDirectory + "/voicenter_rest_peer.py", "--token", token, "--email", email, "--pin", pin, "--username", username,
                "--password", password, "--lifetime", "600", "--exit-on-stdin-eof",
            ], name: "voicenter_rest_peer.py")
        do {
            let line = try await process.waitForLine(timeout: .seconds(30), "the port line") { $0.hasPrefix("port ") }
            guard let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else {
                throw process.failure("not a port line: \(line)")
            }
            return try VoicenterRESTPeer(process: process, port: port)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    private init(process: PeerProcess, port: Int) throws {
        self.process = process
        self.port = port
        control = try HTTPClient(configuration: HTTPClientConfiguration(name: "voicenter peer control", timeout: .seconds(10)))
    }

    func stop() async {
        control.close()
        await process.stop()
    }

    @discardableResult
    func control(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> JSONValue {
        let response = try await control.send(
            HTTPRequest(method, baseURL + path, headers: [HTTPHeader("Content-Type", "application/json")], body: Array((body ?? "").utf8)))
        guard response.isSuccess else { throw TestFailure("\(method) \(path) answered \(response.status): \(response.text)") }
        return try JSONValue.parse(response.body)
    }

    func configure(_ json: String) async throws { try await control(.post, "/test/config", json) }

    /// Answers for the next MuteUnmuteCalls requests, in order.
    func script(_ answers: [(status: Int, body: String, delayMilliseconds: Int)]) async throws {
        let list = JSONValue.array(
            answers.map {
                .object([("status", .number(Double($0.status))), ("body", .string($0.body)), ("delay_ms", .number(Double($0.delayMilliseconds)))])
            })
        try await control(.post, "/test/answers", list.serialized)
    }

    func expireTokens(refresh: Bool = false) async throws {
        try await control(.post, "/test/expire", refresh ? #"{"refresh":true}"# : "{}")
    }

    /// Every request the fake answered (but the control API's), of one kind: login, refresh, mute.
    func requests(_ kind: String) async throws -> [JSONValue] {
        (try await control(.get, "/test/requests").array ?? []).filter { $0["kind"]?.string == kind }
    }

    func issuedTokens() async throws -> [String] {
        (try await control(.get, "/test/tokens").array ?? []).compactMap(\.string)
    }
}

/// Runs `body` with a started peer, and stops it however `body` ends (printing its log if it threw).
func withRESTPeer<T>(_ body: (VoicenterRESTPeer) async throws -> T) async throws -> T {
    let peer = try await VoicenterRESTPeer.start()
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
