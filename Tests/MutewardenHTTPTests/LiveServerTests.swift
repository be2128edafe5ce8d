import CMutewardenShims
import Foundation
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenHTTP

/// Collects what clients report, for assertions.
final class ReportLog: Sendable {
    private let reports = Mutex<[HTTPReport]>([])
    var all: [HTTPReport] { reports.withLock { $0 } }
    var sink: @Sendable (HTTPReport) -> Void { { report in self.reports.withLock { $0.append(report) } } }
}

/// Runs `body` and returns the HTTPError it threw, failing the test if it threw nothing or
/// something else. (Closures do not infer typed throws yet, hence the cast.)
func expectHTTPError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> HTTPResponse
) async -> HTTPError? {
    do {
        let response = try await body()
        Issue.record("expected an HTTPError, got \(response)", sourceLocation: sourceLocation)
        return nil
    } catch let error as HTTPError {
        return error
    } catch {
        Issue.record("expected an HTTPError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func makeClient(
    _ name: String = "test", timeout: Duration = .seconds(10), cap: Int = 1 << 20, cookies: Bool = false,
    tls: TLSOptions = TLSOptions(), proxy: HTTPProxy = .none, transport: HTTPTransport? = nil,
    report: (@Sendable (HTTPReport) -> Void)? = nil
) throws(HTTPError) -> HTTPClient {
    let configuration = HTTPClientConfiguration(
        name: name, timeout: timeout, connectTimeout: .seconds(5), maxResponseBytes: cap, tls: tls, proxy: proxy,
        cookieSession: cookies)
    if let transport { return try HTTPClient(configuration: configuration, transport: transport, report: report ?? { _ in }) }
    return try HTTPClient(configuration: configuration, report: report ?? { _ in })
}

private struct Echo: Decodable {
    var method: String
    var path: String
    var headers: [String: String]
    var body: String
}

@Suite(.timeLimit(.minutes(2)))
struct LiveServerTests {
    @Test func postRoundTripAndKeepAlive() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient()
        defer { client.close() }
        let first = try await client.send(
            HTTPRequest(
                .post, peer.url("/echo?x=1"),
                headers: [HTTPHeader("Content-Type", "application/json"), HTTPHeader("Authorization", "Bearer t")],
                text: "{\"op\":\"mute\"}"))
        #expect(first.status == 200)
        #expect(first.version == .http1_1)
        #expect(first.connectionsOpened == 1)
        #expect(first.header("content-type") == "application/json")
        let echo = try JSONDecoder().decode(Echo.self, from: Data(first.body))
        #expect(echo.method == "POST")
        #expect(echo.path == "/echo?x=1")
        #expect(echo.body == "{\"op\":\"mute\"}")
        #expect(echo.headers["authorization"] == "Bearer t")
        #expect(echo.headers["content-type"] == "application/json")
        #expect(echo.headers["expect"] == nil)

        // Unlabelled bodies go without libcurl's made-up form Content-Type; PUT/DELETE keep their verb.
        let put = try await client.send(HTTPRequest(.put, peer.url("/echo"), body: [1, 2, 3]))
        let putEcho = try JSONDecoder().decode(Echo.self, from: Data(put.body))
        #expect(putEcho.method == "PUT")
        #expect(putEcho.headers["content-type"] == nil)
        #expect(putEcho.headers["content-length"] == "3")
        let delete = try await client.send(HTTPRequest(.delete, peer.url("/echo")))
        #expect(try JSONDecoder().decode(Echo.self, from: Data(delete.body)).method == "DELETE")
        let head = try await client.send(HTTPRequest(.head, peer.url("/echo")))
        #expect(head.status == 200 && head.body.isEmpty)

        // Every later exchange rode the first connection.
        #expect(put.connectionsOpened == 0 && delete.connectionsOpened == 0 && head.connectionsOpened == 0)
        #expect(try await peer.stats(using: client).connections["http"] == 1)
        #expect(client.transport.statistics.connectionsOpened == 1)
    }

    @Test func aSlowAnswerTimesOut() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient()
        defer { client.close() }
        let started = ContinuousClock.now
        let error = await expectHTTPError {
            try await client.send(HTTPRequest(.post, peer.url("/slow?ms=5000"), text: "{}", timeout: .milliseconds(300)))
        }
        let elapsed = ContinuousClock.now - started
        #expect(error?.kind == .timeout)
        // libcurl's timer normally fires first (28); the client's own deadline, 100 ms later,
        // only when the loop is slow (ThreadSanitizer).
        #expect(error?.curlCode == 28 || error?.curlCode == nil)
        #expect(error?.disposition == .retryable)
        #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(3))
    }

    @Test func serverErrorsAreResultsClassifiedRetryable() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient()
        defer { client.close() }
        let unavailable = try await client.send(HTTPRequest(.post, peer.url("/status/503"), text: "{}"))
        #expect(unavailable.status == 503)
        #expect(unavailable.disposition == .retryable)
        let result = Result<HTTPResponse, HTTPError>.success(unavailable).actionResult("mute call 1")
        guard case .failed(let failure) = result else {
            Issue.record("a 503 must be a failed attempt")
            return
        }
        #expect(failure.disposition == .retryable && failure.code == "http 503")
        let forbidden = try await client.send(HTTPRequest(.post, peer.url("/status/403"), text: "{}"))
        #expect(forbidden.disposition == .permanent)
    }

    @Test func aResetConnectionIsReportedAsReset() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient()
        defer { client.close() }
        let error = await expectHTTPError { try await client.send(HTTPRequest(.post, peer.url("/reset"), text: "{}")) }
        #expect(error?.kind == .connectionReset)
        #expect(error?.curlCode == 56)
        #expect(error?.disposition == .retryable)
        // The client is still fine afterwards.
        #expect(try await client.send(HTTPRequest(.get, peer.url("/echo"))).status == 200)
    }

    @Test(arguments: [false, true])
    func anOversizedBodyIsAbandoned(chunked: Bool) async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient(cap: 1 << 20)
        defer { client.close() }
        let flag = chunked ? "1" : "0"
        let error = await expectHTTPError {
            try await client.send(HTTPRequest(.get, peer.url("/big?bytes=\(10 << 20)&chunked=\(flag)")))
        }
        #expect(error?.kind == .responseTooLarge)
        #expect(error?.httpStatus == 200)
        #expect(error?.disposition == .permanent)
        // A body just under the cap, chunked or not, arrives whole.
        let fits = try await client.send(HTTPRequest(.get, peer.url("/big?bytes=\((1 << 20) - 1)&chunked=\(flag)")))
        #expect(fits.body.count == (1 << 20) - 1)
    }

    @Test func theCookieSessionIsKeptPerClient() async throws {
        let peer = try await PythonPeer.start()
        let transport = try HTTPTransport()
        defer { transport.close() }
        let gws = try makeClient("gws", cookies: true, transport: transport)
        let other = try makeClient("other", cookies: true, transport: transport)
        let noSession = try makeClient("plain", cookies: false, transport: transport)

        #expect(try await gws.send(HTTPRequest(.get, peer.url("/protected"))).status == 403)
        let login = try await gws.send(HTTPRequest(.get, peer.url("/login")))
        #expect(login.status == 200 && login.header("set-cookie")?.hasPrefix("JSESSIONID=") == true)
        #expect(try await gws.send(HTTPRequest(.get, peer.url("/protected"))).status == 200)
        #expect(try await gws.send(HTTPRequest(.post, peer.url("/protected"), text: "{}")).status == 200)
        // Same transport, same connections, but not the same cookie jar.
        #expect(try await other.send(HTTPRequest(.get, peer.url("/protected"))).status == 403)
        _ = try await noSession.send(HTTPRequest(.get, peer.url("/login")))
        #expect(try await noSession.send(HTTPRequest(.get, peer.url("/protected"))).status == 403)
        // Closing a client forgets its session; the others are untouched.
        other.close()
        #expect(try await gws.send(HTTPRequest(.get, peer.url("/protected"))).status == 200)
        gws.close()
        noSession.close()
    }

    /// libcurl 7.88 appends each CURLOPT_COOKIEFILE to a list that curl_easy_reset keeps: a
    /// recycled handle grew by 64 bytes a request until the client emptied the list (the soak's
    /// leak, about 290 KiB for 3,000 requests). Measured as the process's heap in use, which any
    /// other test running at the same time moves too (plain `swift test` runs them side by side):
    /// so the test runs itself again, alone, in a process of its own (this test bundle, filtered
    /// to it), and that run measures.
    @Test func aCookieSessionDoesNotGrowWithEachRequest() async throws {
        let alone = "MUTEWARDEN_HEAP_TEST_ALONE"
        guard ProcessInfo.processInfo.environment[alone] != nil else {
            let name = "aCookieSessionDoesNotGrowWithEachRequest"
            let bundle = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let run = try await runProgram(
                bundle, ["--testing-library", "swift-testing", "--filter", "LiveServerTests/\(name)"],
                environment: [alone: "1", "NO_COLOR": "1"], timeout: .seconds(180))
            #expect(run.status == 0 && run.output.contains("\(name)() passed"), "\(run.output.suffix(4000))")
            return
        }
        let peer = try await PythonPeer.start()
        let client = try makeClient("gws", cookies: true)
        defer { client.close() }
        _ = try await client.send(HTTPRequest(.get, peer.url("/login")))
        func requests(_ count: Int) async throws {
            for _ in 0..<count {
                #expect(try await client.send(HTTPRequest(.get, peer.url("/protected"))).status == 200)
            }
        }
        // The first thousand fill the caches of libdispatch and the Swift runtime (about 90 KiB).
        try await requests(1_000)
        let before = mw_malloc_bytes_in_use()
        try await requests(3_000)
        let grown = Int(mw_malloc_bytes_in_use()) - Int(before)
        #expect(grown < 64 << 10, "the heap grew by \(grown) bytes over 3,000 requests")
    }

    @Test func aRedirectIsFollowedForGETButNeverForPOST() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient()
        defer { client.close() }
        for code in [302, 307, 308] {
            let post = try await client.send(
                HTTPRequest(.post, peer.url("/redirect?to=/echo&code=\(code)"), text: "{\"op\":\"mute\"}"))
            #expect(post.status == code)
            #expect(post.header("location") == "/echo")
        }
        let get = try await client.send(HTTPRequest(.get, peer.url("/redirect?to=/echo")))
        #expect(get.status == 200)
        let stats = try await peer.stats(using: client)
        #expect(stats.requests["POST /echo"] == nil)
        #expect(stats.requests["GET /echo"] == 1)
    }

    @Test func aRefusedConnectionSaysSo() async throws {
        let port = try freePort()
        let client = try makeClient()
        defer { client.close() }
        let error = await expectHTTPError { try await client.send(HTTPRequest(.get, "http://127.0.0.1:\(port)/")) }
        #expect(error?.kind == .connectionRefused)
        #expect(error?.curlCode == 7)
        #expect(error?.disposition == .retryable)
    }

    @Test func anExplicitProxyCarriesRequestsExceptNoProxyHosts() async throws {
        let peer = try await PythonPeer.start()
        let reports = ReportLog()
        let client = try makeClient(
            proxy: .url("http://127.0.0.1:\(peer.httpPort)", noProxy: "direct.invalid,127.0.0.1"), report: reports.sink)
        defer { client.close() }
        // mutewarden.invalid cannot resolve: only the proxy can have answered.
        let proxied = try await client.send(HTTPRequest(.get, "http://mutewarden.invalid/via-proxy"))
        #expect(proxied.status == 200)
        #expect(proxied.header("x-proxied") == "yes")
        let direct = try await client.send(HTTPRequest(.get, peer.url("/echo")))
        #expect(direct.header("x-proxied") == nil)
        #expect(reports.all.contains { $0.severity == .info && $0.message.contains("proxy") })
    }

    @Test func badRequestsAndConfigurationsFailBeforeAnyTraffic() async throws {
        let client = try makeClient()
        defer { client.close() }
        let injected = await expectHTTPError {
            try await client.send(HTTPRequest(.get, "http://127.0.0.1:1/", headers: [HTTPHeader("X-A", "a\r\nX-B: b")]))
        }
        #expect(injected?.kind == .invalidRequest)
        let scheme = await expectHTTPError { try await client.send(HTTPRequest(.get, "file:///etc/passwd")) }
        #expect(scheme?.kind == .invalidRequest)
        let noTime = await expectHTTPError { try await client.send(HTTPRequest(.get, "http://127.0.0.1:1/", timeout: .zero)) }
        #expect(noTime?.kind == .invalidRequest)
        // An absurd timeout is capped, not wrapped around into an instant timeout.
        let refused = await expectHTTPError {
            try await client.send(HTTPRequest(.get, "http://127.0.0.1:\(try freePort())/", timeout: .seconds(Int64.max)))
        }
        #expect(refused?.kind == .connectionRefused)
        #expect(throws: HTTPError.self) {
            try makeClient(tls: TLSOptions(caBundlePath: "/nonexistent/ca.pem"))
        }
        do {
            _ = try makeClient(tls: TLSOptions(caBundlePath: "/nonexistent/ca.pem"))
        } catch {
            #expect(error.kind == .invalidConfiguration)
            #expect(error.description.contains("/nonexistent/ca.pem"))
        }
    }

    @Test func cancellingTheCallerAbandonsTheTransfer() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient(timeout: .seconds(60))
        defer { client.close() }
        let slow = peer.url("/slow?ms=30000")
        let echo = peer.url("/echo")
        let task = Task { () async throws(HTTPError) -> HTTPResponse in
            try await client.send(HTTPRequest(.get, slow))
        }
        try await peer.waitForRequests("GET /slow")
        let started = ContinuousClock.now
        task.cancel()
        let error = await expectHTTPError { try await task.value }
        #expect(error?.kind == .cancelled)
        #expect(ContinuousClock.now - started < .seconds(2))
        // Cancelled before it starts: never sent.
        let early = Task { () async throws(HTTPError) -> HTTPResponse in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.send(HTTPRequest(.post, echo, text: "{}"))
        }
        #expect(await expectHTTPError { try await early.value }?.kind == .cancelled)
        #expect(client.transport.statistics.inFlight == 0)
        #expect(try await peer.stats(using: client).requests["POST /echo"] == nil)
    }

    @Test func closingFailsPendingRequestsClearly() async throws {
        let peer = try await PythonPeer.start()
        let transport = try HTTPTransport()
        let client = try makeClient(timeout: .seconds(60), transport: transport)
        let other = try makeClient("other", timeout: .seconds(60), transport: transport)
        let slow = peer.url("/slow?ms=30000")
        let pending = (0..<3).map { _ in
            Task { () async throws(HTTPError) -> HTTPResponse in
                try await client.send(HTTPRequest(.get, slow))
            }
        }
        let otherPending = Task { () async throws(HTTPError) -> HTTPResponse in
            try await other.send(HTTPRequest(.get, slow))
        }
        try await peer.waitForRequests("GET /slow", count: 4)
        client.close()
        for task in pending {
            #expect(await expectHTTPError { try await task.value }?.kind == .closed)
        }
        #expect(await expectHTTPError { try await client.send(HTTPRequest(.get, peer.url("/echo"))) }?.kind == .closed)
        // The transport and its other clients carry on, until the transport itself closes.
        #expect(try await other.send(HTTPRequest(.get, peer.url("/echo"))).status == 200)
        transport.close()
        let error = await expectHTTPError { try await otherPending.value }
        #expect(error?.kind == .closed)
        #expect(error?.disposition == .permanent)
        #expect(await expectHTTPError { try await other.send(HTTPRequest(.get, peer.url("/echo"))) }?.kind == .closed)
        #expect(throws: HTTPError.self) { try makeClient(transport: transport) }
    }
}
