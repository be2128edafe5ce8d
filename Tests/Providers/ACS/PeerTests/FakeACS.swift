import Foundation
import MutewardenHTTP
import MutewardenJSON
import MutewardenTesting

#if canImport(Glibc)
import Glibc
#endif

/// The fake Call Automation (Peers/fake_acs.py): the REST API that checks HMAC signatures or the
/// Entra tokens it issued and deduplicates by `Repeatability-Request-ID`, the OpenID configuration
/// and keys it signs callbacks with, and a control API through which the test makes it post
/// callbacks. One python3 process per test on 127.0.0.1 and a port the kernel chose; a missing
/// python3, python3-jwt or python3-cryptography fails the test (`make test` installs them).
final class FakeACS: Sendable {
    static let resourceID = "a6c1e2d4-0000-4000-8000-acs000000001"
    /// base64 of 32 bytes: the access key of the connection string.
    static let accessKey = Data((0..<32).map { UInt8($0 &* 7 &+ 3) }).base64EncodedString()
    static let tenant = "fake-tenant"
    static let clientID = "fake-client"
    static let clientSecret = "entra-client-secret-value"

    static let peersDirectory: String =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    let process: PeerProcess
    let port: Int
    /// On a transport of its own: the fake is driven from outside the code under test.
    private let control: HTTPClient

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var openIDConfigurationURL: String { baseURL + "/calling/.well-known/acsopenidconfiguration" }
    var connectionString: String { "endpoint=\(baseURL)/;accesskey=\(Self.accessKey)" }

    static func start() async throws -> FakeACS {
        let process = try await PeerProcess.start(
            try locateTool("python3"),
            [
                peersDirectory + "/fake_acs.py", "--access-key", accessKey, "--resource-id", resourceID, "--tenant", tenant,
                "--client-id", clientID, "--client-secret", clientSecret, "--lifetime", "600",
            ], name: "fake_acs.py")
        do {
            let line = try await process.waitForLine(timeout: .seconds(60), "the port line") { $0.hasPrefix("port ") }
            guard let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else {
                throw process.failure("not a port line: \(line)")
            }
            return try FakeACS(process: process, port: port)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    private init(process: PeerProcess, port: Int) throws {
        self.process = process
        self.port = port
        control = try HTTPClient(configuration: HTTPClientConfiguration(name: "fake acs control", timeout: .seconds(40)))
    }

    func stop() async {
        control.close()
        await process.stop()
    }

    @discardableResult
    func control(_ method: HTTPMethod, _ path: String, _ body: JSONValue = .object([])) async throws -> JSONValue {
        let response = try await control.send(
            HTTPRequest(method, baseURL + path, headers: [HTTPHeader("Content-Type", "application/json")], text: body.serialized))
        guard response.isSuccess else { throw TestFailure("\(method) \(path) answered \(response.status): \(response.text)") }
        return try JSONValue.parse(response.body)
    }

    func configure(_ settings: [(String, JSONValue)]) async throws { try await control(.post, "/test/config", .object(settings)) }

    /// The HTTP statuses the daemons' ingresses answered to one callback, in the order of the
    /// callback URLs.
    static func statuses(_ answer: JSONValue) -> [Int] { (answer["statuses"]?.array ?? []).compactMap(\.int) }

    /// A call starts: CallConnected, the roster (agent and caller) and the recording active, in one
    /// callback.
    @discardableResult
    func startCall(_ id: String, agent: String, caller: String, recording: String, operationContext: String? = nil) async throws -> [Int] {
        var body: [(String, JSONValue)] = [
            ("id", .string(id)), ("agent", .string(agent)), ("caller", .string(caller)), ("recording", .string(recording)),
        ]
        if let operationContext { body.append(("operation_context", .string(operationContext))) }
        return Self.statuses(try await control(.post, "/test/call", .object(body)))
    }

    @discardableResult
    func tone(_ call: String, _ tone: String = "five", shape: String = "top") async throws -> [Int] {
        Self.statuses(
            try await control(.post, "/test/tone", .object([("call", .string(call)), ("tone", .string(tone)), ("shape", .string(shape))])))
    }

    @discardableResult
    func hangUp(_ call: String) async throws -> [Int] {
        Self.statuses(try await control(.post, "/test/hangup", .object([("call", .string(call))])))
    }

    /// Posts `events` with a token of `token`'s kind (good, forged, expired, wrong-audience,
    /// wrong-issuer, missing, hs256).
    func post(_ events: JSONValue, token: String = "good") async throws -> [Int] {
        Self.statuses(try await control(.post, "/test/events", .object([("events", events), ("token", .string(token))])))
    }

    /// What the fake saw: every request of its REST API, what it performed, its tokens.
    func state() async throws -> JSONValue { try await control(.get, "/test/state") }

    func requests(_ operation: String) async throws -> [JSONValue] {
        (try await state()["requests"]?.array ?? []).filter { $0["operation"]?.string == operation }
    }

    func performed(_ operation: String) async throws -> [JSONValue] {
        (try await state()["performed"]?.array ?? []).filter { $0["operation"]?.string == operation }
    }

    /// A tone event of call `call`, as `/test/events` posts it.
    static func toneEvent(_ call: String, extra: [(String, JSONValue)] = []) -> JSONValue {
        .object([
            ("id", .string(UUID().uuidString)), ("source", .string("calling/callConnections/\(call)")),
            ("type", .string("Microsoft.Communication.ContinuousDtmfRecognitionToneReceived")), ("specversion", .string("1.0")),
            ("data", .object([("callConnectionId", .string(call)), ("sequenceId", .number(1)), ("tone", .string("one"))] + extra)),
        ])
    }
}

/// Runs `body` with a started fake, and stops it however `body` ends (printing its log if it threw).
func withFakeACS<T>(_ body: (FakeACS) async throws -> T) async throws -> T {
    let fake = try await FakeACS.start()
    do {
        let value = try await body(fake)
        await fake.stop()
        return value
    } catch {
        await fake.stop()
        fake.process.recordLog(reason: "\(error)")
        throw error
    }
}
