import Foundation
import MutewardenModel
import MutewardenSupervisor
import MutewardenTesting
import Testing

@testable import MutewardenWebSocket

extension WebSocketTests {
    /// The server's certificate names wss.mutewarden.test; the resolver maps that name to 127.0.0.1,
    /// so the connection is made by address while the name is checked, as in production.
    static let tlsResolver = ScriptedResolver([TestCertificates.serverName: ["127.0.0.1"]])

    @Test func wssWithOurCAAndAClientCertificateRoundTrips() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await WebSocketPeer.python(
            certificate: certificates.serverCertificate, key: certificates.serverKey, clientCA: certificates.ca)
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("wss://\(TestCertificates.serverName):\(peer.port)/headers") {
                $0.tls = TLSOptions(
                    caBundlePath: certificates.ca, clientCertificatePath: certificates.clientCertificate,
                    clientKeyPath: certificates.clientKey)
            }, resolver: Self.tlsResolver)
        client.start()
        let first = try await eventually("the header report") { recorder.texts.first }
        // The Host header (and so SNI and the name checked) is the name, not the address.
        #expect(first.contains("\"host\": \"\(TestCertificates.serverName):\(peer.port)\""))
        let info = try #require(recorder.connections.first)
        #expect(info.address == "127.0.0.1")
        try client.send(text: "over tls", on: info.id)
        try await eventually("the echo") { recorder.texts.count == 2 ? true : nil }
        #expect(recorder.texts[1] == "over tls")
        #expect(!recorder.reports.withLock { $0.contains { $0.contains("WARNING") } })
        await client.close()
        try await peer.waitForLine("closed /headers 1000")
    }

    @Test func aServerCertificateFromAnotherCAFailsToVerifyAndIsRetried() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await WebSocketPeer.python(certificate: certificates.serverCertificate, key: certificates.serverKey)
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("wss://\(TestCertificates.serverName):\(peer.port)/echo") {
                $0.tls = TLSOptions(caBundlePath: certificates.wrongCA)
            }, resolver: Self.tlsResolver)
        client.start()
        let downs = try await expectBackingOff(recorder, count: 3)
        for down in downs {
            let error = try #require(down.lastError)
            #expect(error == ("the server certificate of wss.mutewarden.test:\(peer.port) did not verify: unable to get local issuer certificate"))
        }
        #expect(recorder.connections.isEmpty)
        await client.close()
    }

    @Test func theRightCAForTheWrongNameFailsToo() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await WebSocketPeer.python(certificate: certificates.serverCertificate, key: certificates.serverKey)
        defer { Task { await peer.stop() } }
        let resolver = ScriptedResolver(["other.mutewarden.test": ["127.0.0.1"]])
        let (client, recorder) = try makeClient(
            testConfiguration("wss://other.mutewarden.test:\(peer.port)/echo") {
                $0.tls = TLSOptions(caBundlePath: certificates.ca)
            }, resolver: resolver)
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError?.hasSuffix("did not verify: hostname mismatch") == true }, "\(downs)")
        #expect(recorder.connections.isEmpty)
        await client.close()
    }

    @Test func insecureConnectsToAnyCertificateAndSaysSoLoudly() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await WebSocketPeer.python(certificate: certificates.serverCertificate, key: certificates.serverKey)
        defer { Task { await peer.stop() } }
        let configuration = try testConfiguration("wss://\(TestCertificates.serverName):\(peer.port)/echo") {
            $0.tls = TLSOptions(caBundlePath: certificates.wrongCA, insecure: true)
        }
        #expect("\(configuration)".contains("INSECURE"))
        let (client, recorder) = try makeClient(configuration, resolver: Self.tlsResolver)
        client.start()
        let info = try await eventually("connected") { recorder.connections.first }
        try client.send(text: "unverified", on: info.id)
        try await eventually("the echo") { recorder.texts == ["unverified"] ? true : nil }
        let warnings = recorder.reports.withLock { $0.filter { $0.hasPrefix("WARNING") } }
        #expect(warnings.contains { $0.contains("TLS certificate verification is OFF") })
        #expect(warnings.contains { $0.contains("WITHOUT verifying its certificate") })
        await client.close()
    }

    @Test func aServerThatRequiresAClientCertificateRefusesAClientWithout() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let peer = try await WebSocketPeer.python(
            certificate: certificates.serverCertificate, key: certificates.serverKey, clientCA: certificates.ca)
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("wss://\(TestCertificates.serverName):\(peer.port)/echo") {
                $0.tls = TLSOptions(caBundlePath: certificates.ca)
            }, resolver: Self.tlsResolver)
        client.start()
        try await expectBackingOff(recorder, count: 2)
        #expect(recorder.connections.isEmpty)
        await client.close()
    }

    @Test func missingTLSFilesAreReportedAsSuchAndRetried() async throws {
        let peer = try await WebSocketPeer.python()
        defer { Task { await peer.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("wss://127.0.0.1:\(peer.port)/echo") {
                $0.tls = TLSOptions(caBundlePath: "/nonexistent/ca.pem")
            })
        client.start()
        let downs = try await expectBackingOff(recorder, count: 2)
        #expect(downs.allSatisfy { $0.lastError == "could not set up TLS: cannot read the CA bundle /nonexistent/ca.pem" })
        await client.close()
    }

    @Test func wssInteroperatesWithLibwebsocketsTestServer() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let server = try await WebSocketPeer.lwsTestServer(
            tls: (certificates.serverCertificate, certificates.serverKey))
        defer { Task { await server.stop() } }
        let (client, recorder) = try makeClient(
            testConfiguration("wss://\(TestCertificates.serverName):\(server.port)/") {
                $0.tls = TLSOptions(caBundlePath: certificates.ca)
                $0.subprotocols = ["lws-mirror-protocol"]
            }, resolver: Self.tlsResolver)
        client.start()
        let info = try await eventually("connected") { recorder.connections.first }
        try client.send(text: "mirrored over tls", on: info.id)
        try await eventually("the mirror") { recorder.texts == ["mirrored over tls"] ? true : nil }
        await client.close()
    }
}
