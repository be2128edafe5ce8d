import Foundation
import MutewardenHTTP
import MutewardenModel
import MutewardenTesting
import Testing

@testable import MutewardenIngress

@Suite(.timeLimit(.minutes(2)))
struct IngressRequestTests {
    @Test func anAuthenticatedCallbackReachesItsHandler() async throws {
        let fixture = try IngressFixture()
        let answer = try await curl([
            "-H", "Authorization: Bearer \(testToken)", "-H", "Content-Type: application/json", "-H", "X-Ms-Custom: yes",
            "--data-binary", "[{\"type\":\"Microsoft.Communication.CallConnected\"}]", fixture.url + "?secret=a%20b&flag",
        ])
        #expect(answer.status == 200)
        #expect(answer.body == "{\"received\":50}")
        let request = try #require(fixture.observed.requests.first)
        #expect(String(decoding: request.body, as: UTF8.self) == "[{\"type\":\"Microsoft.Communication.CallConnected\"}]")
        #expect(request.head.method == "POST")
        #expect(request.head.path == callbackPath)
        #expect(request.head.queryValue("secret") == "a b")
        #expect(request.head.query.contains(IngressField("flag", "")))
        #expect(request.head.header("content-type") == "application/json")
        #expect(request.head.peer == "127.0.0.1")
        #expect(fixture.server.statistics[.handled] == 1)
        #expect(fixture.observed.reports.isEmpty)
    }

    @Test func keptAliveConnectionsCarryManyCallbacks() async throws {
        let fixture = try IngressFixture()
        let client = try HTTPClient(configuration: HTTPClientConfiguration(name: "ingress-test", proxy: .none), report: { _ in })
        defer { client.close() }
        var opened = 0
        for index in 0..<50 {
            let response = try await client.send(
                HTTPRequest(
                    .post, fixture.url, headers: [HTTPHeader("Authorization", "Bearer \(testToken)", secret: true)],
                    text: "{\"n\":\(index)}"))
            #expect(response.status == 200)
            opened += response.connectionsOpened
        }
        #expect(fixture.observed.requests.count == 50)
        #expect(opened == 1)
    }

    @Test func aRefusedCallbackGets401AndItsBodyIsNeverRead() async throws {
        let fixture = try IngressFixture { $0.refusalRecordInterval = .seconds(3600) }
        #expect(try await curl(["--data-binary", "{\"body-marker\":1}", fixture.url]).status == 401)
        #expect(
            try await curl(["-H", "Authorization: Bearer wrong-token-marker", "--data-binary", "{\"body-marker\":1}", fixture.url]).status == 401)
        // Headers only, then silence: the answer comes without the body ever being sent.
        #expect(try await abuse(["headers-only", "\(fixture.port)", callbackPath, "100", "wrong-token-marker"]) == ["STATUS 401"])
        #expect(try await abuse(["headers-only", "\(fixture.port)", callbackPath, "100", "-"]) == ["STATUS 401"])
        #expect(fixture.observed.requests.isEmpty)
        #expect(fixture.server.statistics[.unauthorized] == 4)
        // One record per reason (missing, wrong), later ones counted into the next.
        let reasons = fixture.observed.reports.compactMap(\.fields.reason)
        #expect(reasons == ["missing-token", "wrong-token"])
        #expect(fixture.observed.reports.allSatisfy { $0.fields.peer == "127.0.0.1" && $0.fields.errorCode == "401" })
        let text = fixture.observed.everything
        for secret in ["wrong-token-marker", testToken, "body-marker"] { #expect(!text.contains(secret)) }
    }

    @Test func aDeferredRefusalAnswersBeforeTheBodyIsSent() async throws {
        let gate = GatedAuthenticator()
        let fixture = try IngressFixture(authenticator: gate)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/abuse.py").path
        let client = try await PeerProcess.start(
            try locateTool("python3"), [script, "headers-then-body", "\(fixture.port)", callbackPath, "64", "-", "30"],
            readyLine: "HEADERS-SENT")
        try await withPeer(client) { client in
            try #require(await waitUntil { gate.asked == 1 })
            #expect(fixture.observed.requests.isEmpty)
            gate.decide(.refuse(IngressRefusal(reason: "unknown-key")))
            try await client.waitForLine(containing: "STATUS 401 BEFORE-BODY")
        }
        #expect(fixture.observed.requests.isEmpty)
        #expect(fixture.observed.reports.map(\.fields.reason) == ["unknown-key"])
    }

    @Test func aDeferredAcceptanceThenReadsTheBody() async throws {
        let gate = GatedAuthenticator()
        let fixture = try IngressFixture(authenticator: gate)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/abuse.py").path
        let client = try await PeerProcess.start(
            try locateTool("python3"), [script, "headers-then-body", "\(fixture.port)", callbackPath, "64", "-", "1"],
            readyLine: "HEADERS-SENT")
        try await withPeer(client) { client in
            try #require(await waitUntil { gate.asked == 1 })
            gate.decide(.accept(principal: "acs"))
            try await client.waitForLine(containing: "STATUS 200 AFTER-BODY")
        }
        let request = try #require(fixture.observed.requests.first)
        #expect(request.body == Array(repeating: UInt8(ascii: "x"), count: 64))
        #expect(request.principal == "acs")
    }

    @Test func anOversizedBodyGets413BeforeItIsRead() async throws {
        let fixture = try IngressFixture { $0.maximumBodySize = 1024 }
        let big = String(repeating: "a", count: 4096)
        #expect(try await curl(["-H", "Authorization: Bearer \(testToken)", "--data-binary", big, fixture.url]).status == 413)
        #expect(try await abuse(["headers-only", "\(fixture.port)", callbackPath, "\(64 << 20)", testToken]) == ["STATUS 413"])
        #expect(fixture.observed.requests.isEmpty)
        #expect(fixture.server.statistics[.tooLarge] == 2)
        #expect(fixture.observed.reports.first?.fields.reason == "body-too-large")
        // At the cap is fine.
        let exact = String(repeating: "b", count: 1024)
        #expect(try await curl(["-H", "Authorization: Bearer \(testToken)", "--data-binary", exact, fixture.url]).status == 200)
    }

    @Test func aBodyThatStallsGets408() async throws {
        let fixture = try IngressFixture { $0.bodyTimeout = .milliseconds(500) }
        // Authenticated, then the body never comes.
        #expect(try await abuse(["headers-only", "\(fixture.port)", callbackPath, "100", testToken]) == ["STATUS 408"])
        #expect(fixture.server.statistics[.bodyTimeout] == 1)
        #expect(fixture.observed.requests.isEmpty)
    }

    @Test func unknownPathsAndMethodsAreRefusedWithoutAuthentication() async throws {
        let fixture = try IngressFixture()
        #expect(try await curl(["--data-binary", "{}", "http://127.0.0.1:\(fixture.port)/nowhere"]).status == 404)
        #expect(try await curl(["-X", "PUT", "--data-binary", "{}", fixture.url]).status == 405)
        #expect(
            try await curl(["-H", "Authorization: Bearer \(testToken)", "-H", "Transfer-Encoding: chunked", "--data-binary", "{}", fixture.url])
                .status == 411)
        #expect(fixture.observed.requests.isEmpty)
    }

    @Test func healthzAnswersWhatTheClosureSays() async throws {
        let up = Locked(true)
        let fixture = try IngressFixture(health: { IngressHealth(checks: [(name: "engine", ok: true), (name: "feed acs", ok: up.withLock { $0 })]) })
        let healthy = try await curl(["http://127.0.0.1:\(fixture.port)/healthz"])
        #expect(healthy.status == 200)
        #expect(healthy.body == "{\"status\":\"ok\",\"checks\":{\"engine\":\"up\",\"feed acs\":\"up\"}}")
        up.withLock { $0 = false }
        let down = try await curl(["http://127.0.0.1:\(fixture.port)/healthz"])
        #expect(down.status == 503)
        #expect(down.body.contains("\"feed acs\":\"down\""))
    }
}

@Suite(.timeLimit(.minutes(3)))
struct IngressAbuseTests {
    @Test func aSlowLorisIsCutOffWhileOthersAreServed() async throws {
        let fixture = try IngressFixture { $0.headerTimeout = .seconds(1) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/abuse.py").path
        let slow = try await PeerProcess.start(try locateTool("python3"), [script, "slowloris", "\(fixture.port)", "0.1", "20"])
        try await withPeer(slow) { slow in
            // Served meanwhile, one after another, while the slow client trickles.
            for _ in 0..<5 {
                #expect(try await curl(["-H", "Authorization: Bearer \(testToken)", "--data-binary", "{}", fixture.url]).status == 200)
            }
            let line = try await slow.waitForLine(containing: "CUT-OFF")
            let seconds = Double(line.split(separator: " ")[2]) ?? 99
            #expect(seconds < 10)
        }
        #expect(fixture.observed.requests.count == 5)
        #expect(fixture.server.statistics[.headerTimeout] == 1)
    }

    @Test func aFloodOfForgedCallbacksDoesNotStopRealOnes() async throws {
        let fixture = try IngressFixture()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/abuse.py").path
        let flood = try await PeerProcess.start(try locateTool("python3"), [script, "flood", "\(fixture.port)", callbackPath, "600", "8"])
        let client = try HTTPClient(configuration: HTTPClientConfiguration(name: "ingress-test", proxy: .none), report: { _ in })
        defer { client.close() }
        try await withPeer(flood) { flood in
            for index in 0..<100 {
                let response = try await client.send(
                    HTTPRequest(
                        .post, fixture.url, headers: [HTTPHeader("Authorization", "Bearer \(testToken)", secret: true)],
                        text: "{\"real\":\(index)}"))
                #expect(response.status == 200)
            }
            try await flood.waitForLine(containing: "RESULT 401 600", timeout: .seconds(60))
        }
        #expect(fixture.observed.requests.count == 100)
        #expect(fixture.observed.requests.allSatisfy { String(decoding: $0.body, as: UTF8.self).hasPrefix("{\"real\":") })
        #expect(fixture.server.statistics[.unauthorized] == 600)
        // Rate-limited: one record for the reason, not six hundred.
        #expect(fixture.observed.reports.count == 1)
        let text = fixture.observed.everything
        for secret in ["forged-token-marker", "payload-body-marker", testToken] { #expect(!text.contains(secret)) }
    }

    @Test func theConnectionCapClosesConnectionsBeyondIt() async throws {
        let fixture = try IngressFixture { $0.maximumConnections = 4 }
        let lines = try await abuse(["cap", "\(fixture.port)", "4"])
        #expect(lines == ["EXTRA closed", "HELD 200"])
        #expect(fixture.server.statistics[.overCapacity] >= 1)
        // Once they are gone, callbacks are served again.
        try #require(await waitUntil { fixture.server.statistics.openConnections.load(ordering: .relaxed) == 0 })
        #expect(try await curl(["-H", "Authorization: Bearer \(testToken)", "--data-binary", "{}", fixture.url]).status == 200)
    }

    @Test func refusalRecordsCountWhatTheySuppressed() {
        let observed = Observed()
        let recorder = RefusalRecorder(interval: .seconds(60), report: observed.report)
        let start = MonotonicInstant(nanoseconds: 1_000_000_000)
        for offset in [0, 1, 2, 59] {
            recorder.refused(
                status: 401, reason: "wrong-token", detail: nil, peer: "192.0.2.7", path: "/cb", owner: "feed acs", now: start + .seconds(offset))
        }
        recorder.refused(status: 413, reason: "body-too-large", detail: nil, peer: "192.0.2.8", path: "/cb", owner: nil, now: start + .seconds(3))
        #expect(observed.reports.count == 2)
        recorder.refused(
            status: 401, reason: "wrong-token", detail: nil, peer: "192.0.2.9", path: "/cb", owner: "feed acs", now: start + .seconds(61))
        let reports = observed.reports
        #expect(reports.count == 3)
        #expect(reports.map(\.fields.peer) == ["192.0.2.7", "192.0.2.8", "192.0.2.9"])
        #expect(reports.last?.message.hasSuffix("3 more refused for this reason since the last record") == true)
        #expect(reports.last?.fields.attempt == "4")
        #expect(reports.first?.fields.feed == "feed acs")
        #expect(reports.allSatisfy { $0.severity == .warning && $0.fields.result == "refused" })
    }
}

@Suite(.timeLimit(.minutes(2)))
struct IngressSecurityTests {
    @Test func tlsWithACertificateMadeByTheTest() async throws {
        let directory = try TemporaryDirectory()
        let certificate = directory.appending("cert.pem")
        let key = directory.appending("key.pem")
        let made = try await runProgram(
            try locateTool("openssl"),
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
            ])
        try #require(made.status == 0, "\(made.output)")
        let fixture = try IngressFixture { $0.security = .tls(certificate: certificate, key: key) }
        let answer = try await curl([
            "--cacert", certificate, "-H", "Authorization: Bearer \(testToken)", "--data-binary", "{\"tls\":true}", fixture.url,
        ])
        #expect(answer.status == 200)
        #expect(try await curl(["--cacert", certificate, "--data-binary", "{}", fixture.url]).status == 401)
        // The project's client, verifying against the test certificate.
        let client = try HTTPClient(
            configuration: HTTPClientConfiguration(name: "ingress-tls", tls: TLSOptions(caBundlePath: certificate), proxy: .none),
            report: { _ in })
        defer { client.close() }
        let response = try await client.send(
            HTTPRequest(.post, fixture.url, headers: [HTTPHeader("Authorization", "Bearer \(testToken)", secret: true)], text: "{}"))
        #expect(response.status == 200)
        // Plain HTTP to the TLS listener gets nothing.
        let plain = try await runProgram(
            try locateTool("curl"), ["--silent", "--max-time", "5", "--data-binary", "{}", "http://127.0.0.1:\(fixture.port)\(callbackPath)"])
        #expect(plain.status != 0)
        #expect(fixture.observed.requests.count == 2)
    }

    @Test func plainHTTPIsRefusedOffLoopbackUnlessBehindAProxy() throws {
        let exposed = IngressConfiguration(address: "0.0.0.0", port: 0, security: .plain(behindProxy: false))
        #expect(exposed.problems.count == 1)
        #expect(throws: IngressError.self) { try IngressServer(configuration: exposed, report: { _, _, _ in }) }
        #expect(IngressConfiguration(address: "0.0.0.0", port: 0, security: .plain(behindProxy: true)).problems.isEmpty)
        #expect(IngressConfiguration(address: "127.0.0.1", port: 0, security: .plain(behindProxy: false)).problems.isEmpty)
        #expect(IngressConfiguration(address: "::1", port: 0, security: .plain(behindProxy: false)).problems.isEmpty)
        let missing = IngressConfiguration(
            address: "127.0.0.1", port: 0, security: .tls(certificate: "/nonexistent/cert.pem", key: "/nonexistent/key.pem"))
        #expect(throws: IngressError.self) { try IngressServer(configuration: missing, report: { _, _, _ in }) }
    }

    @Test func theBearerTokenIsComparedExactly() {
        let authenticator = BearerTokenAuthenticator(token: "abc")
        func decision(_ header: String?) -> IngressDecision? {
            let head = IngressRequestHead(
                method: "POST", path: "/", headers: header.map { [IngressField("authorization", $0)] } ?? [], peer: "127.0.0.1")
            if case .decided(let decision) = authenticator.authenticate(head) { return decision }
            return nil
        }
        #expect(decision("Bearer abc") == .accept(principal: nil))
        #expect(decision("bearer abc") == .accept(principal: nil))
        #expect(decision("Bearer abcd") == .refuse(IngressRefusal(reason: "wrong-token")))
        #expect(decision("Bearer ab") == .refuse(IngressRefusal(reason: "wrong-token")))
        #expect(decision("Basic abc") == .refuse(IngressRefusal(reason: "not-a-bearer-token")))
        #expect(decision(nil) == .refuse(IngressRefusal(reason: "missing-token")))
        #expect(ConstantTime.equals([], []))
        #expect(!ConstantTime.equals([1], [1, 0]))
    }

    @Test func aStoppedIngressNoLongerListens() async throws {
        let fixture = try IngressFixture()
        let port = fixture.port
        fixture.server.stop()
        let result = try await runProgram(try locateTool("curl"), ["--silent", "--max-time", "5", "http://127.0.0.1:\(port)/healthz"])
        #expect(result.status == 7)  // couldn't connect
    }
}

/// A listener that cannot bind says why, rather than lws's bare failure.
struct IngressBindFailureTests {
    @Test func aPortInUseIsNamedAsSuch() throws {
        let fixture = try IngressFixture()
        let taken = IngressConfiguration(address: "127.0.0.1", port: fixture.port, security: .plain(behindProxy: false))
        #expect(IngressBindProbe.problem(address: "127.0.0.1", port: fixture.port) == "port \(fixture.port) is in use by another socket")
        do {
            _ = try IngressServer(configuration: taken, report: { _, _, _ in })
            Issue.record("a second listener bound a port in use")
        } catch {
            #expect(
                "\(error)" == "callback ingress: cannot listen on http://127.0.0.1:\(fixture.port): port \(fixture.port) is in use by another socket")
        }
    }

    @Test func anAddressNotOfThisMachineIsNamedAsSuch() {
        // TEST-NET-1 (RFC 5737): never assigned to a machine.
        #expect(IngressBindProbe.problem(address: "192.0.2.1", port: 9464) == "192.0.2.1 is not an address of this machine")
        #expect(IngressBindProbe.problem(address: "127.0.0.1", port: 0) == nil)
        #expect(IngressBindProbe.problem(address: "not-an-address", port: 9464) == nil)
    }
}
