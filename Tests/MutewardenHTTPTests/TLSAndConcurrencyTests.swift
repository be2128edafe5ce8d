import Foundation
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenHTTP

@Suite(.timeLimit(.minutes(2)))
struct TLSTests {
    let pki: TestPKI

    init() async throws { pki = try await TestPKI.shared() }

    @Test func aCustomCAIsTrusted() async throws {
        let peer = try await PythonPeer.start(tls: pki)
        let client = try makeClient(tls: TLSOptions(caBundlePath: pki.caCertificate))
        defer { client.close() }
        for host in ["127.0.0.1", "localhost"] {
            let response = try await client.send(HTTPRequest(.post, peer.httpsURL("/echo", host: host), text: "{}"))
            #expect(response.status == 200)
        }
    }

    @Test func aWrongCAFailsVerification() async throws {
        let peer = try await PythonPeer.start(tls: pki)
        for tls in [TLSOptions(caBundlePath: pki.otherCACertificate), TLSOptions()] {
            // The second row is the default: the system store does not know the test CA either.
            let client = try makeClient(tls: tls)
            let error = await expectHTTPError { try await client.send(HTTPRequest(.post, peer.httpsURL("/echo"), text: "{}")) }
            #expect(error?.kind == .tlsVerificationFailed)
            #expect(error?.curlCode == 60)
            #expect(error?.disposition == .permanent)
            client.close()
        }
        let stats = try await peer.stats(using: try makeClient())
        #expect(stats.requests["POST /echo"] == nil)
    }

    @Test func insecureAcceptsAnyCertificateAndIsReportedLoudly() async throws {
        let peer = try await PythonPeer.start(tls: pki)
        let reports = ReportLog()
        let client = try makeClient(
            "lab-gws", tls: TLSOptions(caBundlePath: pki.otherCACertificate, insecure: true), report: reports.sink)
        defer { client.close() }
        let critical = reports.all.filter { $0.severity == .critical }
        #expect(critical.count == 1)
        #expect(critical.first?.client == "lab-gws")
        #expect(critical.first?.message.contains("TLS verification is OFF") == true)
        #expect(try await client.send(HTTPRequest(.get, peer.httpsURL("/echo"))).status == 200)
        // A verifying client is not reported.
        let quiet = ReportLog()
        try makeClient(tls: TLSOptions(caBundlePath: pki.caCertificate), report: quiet.sink).close()
        #expect(quiet.all.isEmpty)
    }

    @Test func aClientCertificateWithAnEncryptedKeyIsPresented() async throws {
        let peer = try await PythonPeer.start(tls: pki)
        let mutual = try makeClient(
            tls: TLSOptions(
                caBundlePath: pki.caCertificate, clientCertificatePath: pki.clientCertificate,
                clientKeyPath: pki.clientKey, clientKeyPassword: pki.clientKeyPassword))
        defer { mutual.close() }
        let response = try await mutual.send(HTTPRequest(.get, peer.mtlsURL("/whoami")))
        #expect(response.status == 200)
        #expect(response.text == "mutewarden-client")

        let anonymous = try makeClient(tls: TLSOptions(caBundlePath: pki.caCertificate))
        defer { anonymous.close() }
        let error = await expectHTTPError { try await anonymous.send(HTTPRequest(.get, peer.mtlsURL("/whoami"))) }
        #expect(error?.kind == .tlsHandshakeFailed || error?.kind == .connectionReset)

        let wrongPassphrase = try makeClient(
            tls: TLSOptions(
                caBundlePath: pki.caCertificate, clientCertificatePath: pki.clientCertificate,
                clientKeyPath: pki.clientKey, clientKeyPassword: "not-the-passphrase"))
        defer { wrongPassphrase.close() }
        let keyError = await expectHTTPError { try await wrongPassphrase.send(HTTPRequest(.get, peer.mtlsURL("/whoami"))) }
        #expect(keyError?.kind == .tlsConfiguration)
        #expect(keyError?.description.contains("not-the-passphrase") == false)
    }

    @Test func http2IsNegotiatedAndMultiplexedOnOneConnection() async throws {
        let peer = try await HTTP2Peer.start(pki: pki)
        let client = try makeClient(tls: TLSOptions(caBundlePath: pki.caCertificate))
        defer { client.close() }
        let url = "https://127.0.0.1:\(peer.port)/hello.txt"
        let responses = try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            for _ in 0..<50 { group.addTask { try await client.send(HTTPRequest(.get, url)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(responses.count == 50)
        #expect(responses.allSatisfy { $0.status == 200 && $0.version == .http2 && $0.text == "hello over h2" })
        // PIPEWAIT: the burst waited for the first connection to say it multiplexes.
        #expect(responses.map(\.connectionsOpened).reduce(0, +) == 1)
    }
}

@Suite(.timeLimit(.minutes(3)))
struct ConcurrencyTests {
    /// A long poll or a stalled platform must not hold up a mute to the same host.
    @Test(arguments: [false, true])
    func aStalledRequestDoesNotHoldUpOthersToTheSameHost(tls: Bool) async throws {
        let pki = try await TestPKI.shared()
        let peer = try await PythonPeer.start(tls: pki)
        let client = try makeClient(timeout: .seconds(60), tls: TLSOptions(caBundlePath: pki.caCertificate))
        defer { client.close() }
        let slow = tls ? peer.httpsURL("/slow?ms=30000") : peer.url("/slow?ms=30000")
        let fast = tls ? peer.httpsURL("/echo") : peer.url("/echo")
        let stalled = Task { () async throws(HTTPError) -> HTTPResponse in try await client.send(HTTPRequest(.get, slow)) }
        try await peer.waitForRequests("GET /slow")
        let started = ContinuousClock.now
        let response = try await client.send(HTTPRequest(.post, fast, text: "{}", timeout: .seconds(5)))
        #expect(response.status == 200)
        #expect(ContinuousClock.now - started < .seconds(3))
        stalled.cancel()
        _ = await stalled.result
    }

    /// libcurl 7.88 does not time a transfer that waits for a free connection (this one failed
    /// with "deadline kept by the client", no curl code): the loop's own deadline must.
    @Test func aRequestQueuedForAFreeConnectionStillTimesOut() async throws {
        let peer = try await PythonPeer.start()
        let transport = try HTTPTransport(options: .init(maxConnectionsPerHost: 1))
        defer { transport.close() }
        let client = try makeClient(timeout: .seconds(60), transport: transport)
        let slow = peer.url("/slow?ms=30000")
        let occupying = Task { () async throws(HTTPError) -> HTTPResponse in try await client.send(HTTPRequest(.get, slow)) }
        try await peer.waitForRequests("GET /slow")
        let started = ContinuousClock.now
        let error = await expectHTTPError {
            try await client.send(HTTPRequest(.post, peer.url("/echo"), text: "{}", timeout: .milliseconds(500)))
        }
        #expect(error?.kind == .timeout)
        #expect(ContinuousClock.now - started < .seconds(3))
        occupying.cancel()
        _ = await occupying.result
    }

    /// Beyond four transfers per connection, a host's requests wait in the transport's queue
    /// (HostAdmission), not in libcurl: there, each would hold a 16 KiB handle. The queue is per
    /// host, so a platform that hangs holds back its own requests only; and a request that waits
    /// there still times out, or is cancelled, on time.
    @Test func requestsBeyondAHostsPlacesWaitWithoutHoldingBackAnotherHost() async throws {
        let stuck = try await PythonPeer.start()
        let other = try await PythonPeer.start()
        let transport = try HTTPTransport(options: .init(maxConnectionsPerHost: 1))
        defer { transport.close() }
        let client = try makeClient(timeout: .seconds(60), transport: transport)
        // Four places in libcurl (one connection), six more waiting.
        let slow = stuck.url("/slow?ms=30000")
        var hanging: [Task<HTTPResponse, any Error>] = []
        for _ in 0..<10 {
            hanging.append(Task { try await client.send(HTTPRequest(.get, slow)) })
        }
        // The connection's four places taken (one request at the peer: HTTP/1.1 sends one at a
        // time), the other six queued.
        try await stuck.waitForRequests("GET /slow")
        #expect(await waitUntil { transport.statistics.started >= 4 })
        let started = ContinuousClock.now
        let response = try await client.send(HTTPRequest(.post, other.url("/echo"), text: "{}", timeout: .seconds(5)))
        #expect(response.status == 200)
        #expect(ContinuousClock.now - started < .seconds(3))

        let timedOut = await expectHTTPError {
            try await client.send(HTTPRequest(.get, stuck.url("/echo"), timeout: .milliseconds(500)))
        }
        #expect(timedOut?.kind == .timeout)
        #expect(timedOut?.detail.contains("still queued") == true)
        #expect(ContinuousClock.now - started < .seconds(4))

        let waiting = hanging[9]
        waiting.cancel()
        let cancelled: HTTPError?
        do {
            _ = try await waiting.value
            cancelled = nil
        } catch {
            cancelled = error as? HTTPError
        }
        #expect(cancelled?.kind == .cancelled)
        for task in hanging { task.cancel() }
        for task in hanging { _ = await task.result }
        #expect(transport.statistics.inFlight == 0)
    }

    @Test func aThousandRequestsInFlightThroughOneClientReuseConnections() async throws {
        let peer = try await PythonPeer.start()
        let client = try makeClient(timeout: .seconds(60))
        defer { client.close() }
        let count = 1000
        let url = peer.url("/echo")
        let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for index in 0..<count {
                group.addTask {
                    let response = try await client.send(
                        HTTPRequest(.post, url, headers: [HTTPHeader("X-Index", "\(index)")], text: "\(index)"))
                    let echo = try JSONDecoder().decode([String: AnyDecodable].self, from: Data(response.body))
                    #expect(echo["body"]?.text == "\(index)")
                    return (index, response.status)
                }
            }
            return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
        }
        #expect(statuses.count == count)
        #expect(statuses.values.allSatisfy { $0 == 200 })
        let stats = try await peer.stats(using: client)
        #expect(stats.requests["POST /echo"] == count)
        let connections = stats.connections["http"] ?? .max
        // At most maxConnectionsPerHost (16) plus the odd reconnect: far below one per request.
        #expect(connections <= 20, "opened \(connections) connections for \(count) requests")
        let statistics = client.transport.statistics
        #expect(statistics.succeeded == count + 1)
        #expect(statistics.inFlight == 0)
    }
}

/// Just enough JSON decoding to read one string field of the echo.
struct AnyDecodable: Decodable {
    var text: String?
    init(from decoder: any Decoder) throws {
        text = try? decoder.singleValueContainer().decode(String.self)
    }
}
