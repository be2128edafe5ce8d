import Foundation
import MutewardenHTTP
import MutewardenJSON
import MutewardenTesting
import Testing

/// The callback ingress as the daemon runs it: opened by the feed that registers a route, its
/// `/healthz` reading the daemon's engine and feeds, kept across a reload that leaves `ingress:`
/// alone and moved by one that changes it.
@Suite(.serialized) struct IngressInDaemonTests {
    func healthz(_ http: HTTPClient, port: Int) async throws -> (status: Int, body: JSONValue?) {
        let response = try await http.send(HTTPRequest(.get, "http://127.0.0.1:\(port)/healthz"))
        return (response.status, try? JSONValue.parse(response.body))
    }

    @Test func theFeedOpensTheIngressWhoseHealthzAnswersAndAReloadKeepsOrMovesIt() async throws {
        try await withFakeACS { fake in
            let http = try HTTPClient(configuration: HTTPClientConfiguration(name: "healthz client", timeout: .seconds(10)))
            defer { http.close() }
            try await withACSDaemon(fake) { running in
                let first = try await healthz(http, port: running.port)
                #expect(first.status == 200)
                #expect(first.body?["status"]?.string == "ok")
                #expect(first.body?["checks"]?["engine"]?.string == "up")
                #expect(first.body?["checks"]?["feed acs"]?.string == "up")
                #expect(running.count("callback ingress listening", "http://127.0.0.1:\(running.port)") == 1)

                // Unchanged settings: the same listener, nothing restarted.
                running.signals.yield(.reload)
                #expect(await running.waitForLine("configuration reloaded"))
                #expect(try await healthz(http, port: running.port).status == 200)
                #expect(running.count("callback ingress listening") == 1)
                #expect(running.count("callback ingress restarted") == 0)
                try await fake.startCall("call-h", agent: ACSDaemonTests.agent, caller: ACSDaemonTests.caller, recording: "rec-h")
                #expect(try await fake.tone("call-h") == [200])
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-h"))

                // Another port: a new listener serves the same route, the old port closes.
                let moved = try freePort()
                running.text.withLock { $0 = $0.replacingOccurrences(of: "port: \(running.port)\n", with: "port: \(moved)\n") }
                running.signals.yield(.reload)
                #expect(await running.waitForLine("callback ingress restarted with new settings"))
                #expect(try await healthz(http, port: moved).status == 200)
                #expect(await waitUntil { !canConnect(port: running.port) })
                try await fake.configure([("callbacks", .array([.string("http://127.0.0.1:\(moved)/callbacks/acs")]))])
                #expect(try await fake.tone("call-h") == [200])
                #expect(await waitUntil { running.count("audit=window.opened", "call=call-h") == 2 })
                try await fake.hangUp("call-h")
            }
        }
    }
}
