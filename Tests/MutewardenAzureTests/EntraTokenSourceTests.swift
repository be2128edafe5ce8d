import Foundation
import MutewardenAzure
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fake token endpoint (Peers/entra_token_peer.py) on 127.0.0.1.
final class EntraPeer: Sendable {
    static let tenant = "8f1c2d3e-0000-4000-8000-000000000001"
    static let clientID = "a1b2c3d4-0000-4000-8000-000000000002"
    static let secretValue = "client-secret-value~ABC.123"
    static let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    let process: PeerProcess
    let port: Int
    let http: HTTPClient
    var authority: String { "http://127.0.0.1:\(port)" }

    init(process: PeerProcess, port: Int) throws {
        self.process = process
        self.port = port
        http = try HTTPClient(configuration: HTTPClientConfiguration(name: "entra", timeout: .seconds(10)))
    }

    static func start() async throws -> EntraPeer {
        let process = try await PeerProcess.start(
            try locateTool("python3"),
            [
                peers + "/entra_token_peer.py", "--tenant", tenant, "--client-id", clientID, "--client-secret", secretValue, "--scope",
                EntraClientCredentials.acsScope,
            ], name: "entra_token_peer.py")
        let line = try await process.waitForLine(timeout: .seconds(30), "the port line") { $0.hasPrefix("port ") }
        guard let port = Int(line.dropFirst(5)) else { throw process.failure("not a port line: \(line)") }
        return try EntraPeer(process: process, port: port)
    }

    func control(_ method: HTTPMethod, _ path: String, _ body: String = "") async throws -> JSONValue {
        let response = try await http.send(HTTPRequest(method, authority + path, text: body))
        return try JSONValue.parse(response.body)
    }

    func tokenRequests() async throws -> Int { try await control(.get, "/test/stats")["token_requests"]?.int ?? -1 }

    func credentials(tenant: String = tenant, clientID: String = clientID, secret: String = secretValue) throws -> EntraClientCredentials {
        try EntraClientCredentials(
            tenant: tenant, clientID: clientID, clientSecret: Secret(reference: "credential:entra-secret", value: secret),
            scope: EntraClientCredentials.acsScope, authority: authority + "/")
    }

    func stop() async {
        http.close()
        await process.stop()
    }
}

func withEntraPeer(_ body: (EntraPeer) async throws -> Void) async throws {
    let peer = try await EntraPeer.start()
    do {
        try await body(peer)
        await peer.stop()
    } catch {
        await peer.stop()
        peer.process.recordLog(reason: "\(error)")
        throw error
    }
}

/// A wall clock the test moves: tokens expire in minutes.
final class ManualWallClock: Sendable {
    private let offset = Locked<Int64>(0)
    func advance(_ duration: Duration) { offset.withLock { $0 += duration.nanosecondsClamped } }
    var now: @Sendable () -> Int64 { { [offset] in wallClockNanoseconds() + offset.withLock { $0 } } }
}

@Suite struct EntraTokenSourceTests {
    @Test func aTokenIsFetchedOnceAndSharedByConcurrentCallers() async throws {
        try await withEntraPeer { peer in
            let source = EntraTokenSource(credentials: try peer.credentials(), http: peer.http)
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await source.token().value.reveal() } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens.count == 1)
            #expect(try await peer.tokenRequests() == 1)
            let header = try await source.authorizationHeader()
            #expect(header.isRedacted)
            #expect(header.value == "Bearer " + (tokens.first ?? ""))
            #expect(!"\(try await source.token())".contains(tokens.first ?? "-"))
        }
    }

    @Test func aTokenExpiringMidUseIsRefreshedAheadOfItsExpiry() async throws {
        try await withEntraPeer { peer in
            _ = try await peer.control(.post, "/test/config", #"{"token_life": 600}"#)
            let clock = ManualWallClock()
            let source = EntraTokenSource(credentials: try peer.credentials(), http: peer.http, wallClock: clock.now)
            let first = try await source.token()
            // Within its life, before the refresh lead: the same token, no request.
            clock.advance(.seconds(400))
            #expect(try await source.token() == first)
            #expect(try await peer.tokenRequests() == 1)
            // Inside the lead (a tenth of its life before the expiry): the old token still serves
            // while one refresh runs in the background.
            clock.advance(.seconds(150))
            #expect(try await source.token() == first)
            try await eventually("the background refresh") { try await source.token() != first ? true : nil }
            #expect(try await peer.tokenRequests() == 2)
            // Past the old one's expiry: the new token, no further request.
            clock.advance(.seconds(100))
            let second = try await source.token()
            #expect(second != first)
            #expect(second.isUsable(at: clock.now()))
            #expect(try await peer.tokenRequests() == 2)
            // A 401 from the platform: invalidated, the next call fetches.
            await source.invalidate(second)
            #expect(try await source.token() != second)
            #expect(try await peer.tokenRequests() == 3)
        }
    }

    @Test func badCredentialsGiveClearErrorsWithoutTheSecret() async throws {
        try await withEntraPeer { peer in
            let cases: [(EntraClientCredentials, String, Int)] = [
                (try peer.credentials(secret: "wrong-secret-value-XYZ"), "check the client secret", 7_000_215),
                (try peer.credentials(tenant: "contoso.onmicrosoft.com"), "check the tenant", 90002),
                (try peer.credentials(clientID: "00000000-0000-0000-0000-00000000dead"), "check the client id", 700016),
            ]
            for (credentials, hint, code) in cases {
                let source = EntraTokenSource(credentials: credentials, http: peer.http)
                do throws(EntraTokenError) {
                    _ = try await source.token()
                    Issue.record("a token for \(credentials)")
                } catch {
                    let text = "\(error)"
                    #expect(text.contains(hint), "\(text)")
                    #expect(text.contains("AADSTS\(code)"), "\(text)")
                    #expect(error.isConfigurationProblem)
                    #expect(!text.contains(credentials.clientSecret.reveal()))
                    #expect(!text.contains(EntraPeer.secretValue))
                    #expect(!text.contains("Trace ID"))
                }
                // Within the back-off, the failure is answered without a new request.
                let before = try await peer.tokenRequests()
                _ = try? await source.token()
                #expect(try await peer.tokenRequests() == before)
            }
            #expect(!"\(try peer.credentials())".contains(EntraPeer.secretValue))
        }
    }

    @Test func anUnreachableEndpointIsATransportError() async throws {
        let http = try HTTPClient(configuration: HTTPClientConfiguration(name: "entra", timeout: .seconds(5)))
        defer { http.close() }
        let credentials = try EntraClientCredentials(
            tenant: "t", clientID: "c", clientSecret: Secret(reference: "x", value: "secret-value"), scope: EntraClientCredentials.graphScope,
            authority: "http://127.0.0.1:\(try freePort())")
        await #expect(throws: EntraTokenError.self) { try await EntraTokenSource(credentials: credentials, http: http).token() }
    }

    @Test func answersAreReadStrictly() {
        let secret = Secret(reference: "x", value: "the-secret-value")
        func parse(_ status: Int, _ body: String) -> Result<AccessToken, EntraTokenError> {
            EntraTokenSource.parse(status: status, body: Array(body.utf8), obtainedAt: 0, secret: secret)
        }
        #expect((try? parse(200, #"{"token_type":"Bearer","expires_in":"3599","access_token":"t"}"#).get())?.expiresAt == 3_599_000_000_000)
        for body in [
            "", "[]", #"{"token_type":"Bearer","access_token":"t"}"#, #"{"token_type":"mac","expires_in":1,"access_token":"t"}"#,
            #"{"token_type":"Bearer","expires_in":-5,"access_token":"t"}"#, #"{"token_type":"Bearer","expires_in":1e300,"access_token":"t"}"#,
        ] {
            #expect((try? parse(200, body).get()) == nil, "\(body)")
        }
        guard
            case .failure(let error) = parse(400, #"{"error":"invalid_client","error_description":"AADSTS1: echo the-secret-value\r\nTrace ID: x"}"#)
        else {
            Issue.record("accepted")
            return
        }
        #expect(!"\(error)".contains("the-secret-value"))
        #expect(throws: EntraTokenError.self) {
            try EntraClientCredentials(tenant: "../evil", clientID: "c", clientSecret: secret, scope: "s")
        }
        #expect(throws: EntraTokenError.self) {
            try EntraClientCredentials(tenant: "t", clientID: "c", clientSecret: secret, scope: "s", authority: "http://login.example")
        }
    }
}
