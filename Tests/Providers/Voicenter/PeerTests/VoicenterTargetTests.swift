import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVoicenter

private func target(_ peer: VoicenterRESTPeer, logged: LoggedContext, method: VoicenterMuteMethod = .postJSON) throws -> any ActionTarget {
    var settings = VoicenterTargetSettings(muteURL: peer.monitorURL + VoicenterTargetSettings.apiPath)
    settings.method = method
    settings.timeout = .seconds(5)
    return try settings.makeTarget(name: "rec", context: logged.context)
}

private func request(_ address: ActionAddress, _ verb: ActionVerb = .apply, timeLeft: Duration? = nil) -> ActionRequest {
    var request = ActionRequest(
        kind: .pauseRecording, verb: verb, target: "rec", address: address, feed: "vc", call: CallIdentifiers(primary: "4509123456789012343"),
        agentExtension: "KGpK4iWq", idempotencyKey: "k", attempt: 1, policy: "card")
    request.timeLeft = timeLeft
    return request
}

@Suite struct VoicenterTargetTests {
    @Test(arguments: ["string", "number"])
    func aPauseByCallPostsTheIvridAndErrorCode200IsAccepted(_ type: String) async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"error_code_type":"\#(type)"}"#)
            let logged = try LoggedContext()
            defer { logged.close() }
            let target = try target(peer, logged: logged)
            #expect(target.descriptor.confirmsByEvent)
            #expect(await target.perform(request(.call(id: "4509123456789012343"))) == .accepted)
            #expect(await target.perform(request(.call(id: "4509123456789012343"), .undo)) == .accepted)
            let sent = try await peer.requests("mute")
            #expect(sent.map { $0["method"]?.string } == ["POST", "POST"])
            #expect(sent.map { $0["content_type"]?.string } == ["application/json", "application/json"])
            #expect(
                sent.map(\.["body"]) == [
                    try JSONValue.parse(#"{"ivrid":"4509123456789012343","state":"1"}"#),
                    try JSONValue.parse(#"{"ivrid":"4509123456789012343","state":"0"}"#),
                ])
        }
    }

    @Test func aPauseByExtensionCanGoByGET() async throws {
        try await withRESTPeer { peer in
            let logged = try LoggedContext()
            defer { logged.close() }
            let target = try target(peer, logged: logged, method: .get)
            #expect(await target.perform(request(.agentExtension("KGpK4iWq"))) == .accepted)
            let sent = try #require(try await peer.requests("mute").first)
            #expect(sent["method"]?.string == "GET")
            #expect(sent["query"] == (try JSONValue.parse(#"{"extension":"KGpK4iWq","state":"1"}"#)))
        }
    }

    @Test func anIvridThePlatformDoesNotKnowIsACallGone() async throws {
        try await withRESTPeer { peer in
            try await peer.configure(#"{"gone":["C-gone"]}"#)
            let logged = try LoggedContext()
            defer { logged.close() }
            let result = try await target(peer, logged: logged).perform(request(.call(id: "C-gone")))
            guard case .failed(let failure) = result else {
                Issue.record("expected a failure")
                return
            }
            #expect(failure.disposition == .callGone)
            #expect(failure.message.contains("'UniqueIvrID not found'"))
            #expect(failure.code == "ErrorCode 404")
        }
    }

    @Test(arguments: [
        (500, "", "retryable"), (200, #"{"ErrorCode":"400","Message":"Parameters are not valid, should be \"ivrid\" and \"mute\""}"#, "permanent"),
        (200, #"{"ErrorCode":503,"Message":"Server busy"}"#, "retryable"), (200, "not json", "retryable"), (403, "", "permanent"),
    ])
    func errorsAreClassifiedFromTheWire(_ status: Int, _ body: String, _ disposition: String) async throws {
        try await withRESTPeer { peer in
            try await peer.script([(status, body, 0)])
            let logged = try LoggedContext()
            defer { logged.close() }
            let result = try await target(peer, logged: logged).perform(request(.call(id: "C-1")))
            guard case .failed(let failure) = result else {
                Issue.record("expected a failure")
                return
            }
            #expect(failure.disposition.rawValue == disposition, "\(failure)")
        }
    }

    @Test func aServerThatHangsIsRetryableWithinTheActionsDeadline() async throws {
        try await withRESTPeer { peer in
            try await peer.script([(200, #"{"ErrorCode":200}"#, 10_000)])
            let logged = try LoggedContext()
            defer { logged.close() }
            let target = try target(peer, logged: logged)
            let clock = ContinuousClock()
            let started = clock.now
            let result = await target.perform(request(.call(id: "C-1"), timeLeft: .milliseconds(600)))
            // Bounded by the time left, not by the target's 5 s timeout nor the server's 10 s.
            #expect(clock.now - started < .seconds(4))
            guard case .failed(let failure) = result else {
                Issue.record("expected a failure")
                return
            }
            #expect(failure.disposition == .retryable)
        }
    }

    @Test func askedToMuteTheAgentItRefusesWithoutSending() async throws {
        try await withRESTPeer { peer in
            let logged = try LoggedContext()
            defer { logged.close() }
            var mute = request(.call(id: "C-1"))
            mute.kind = .mute
            guard case .failed(let failure) = try await target(peer, logged: logged).perform(mute) else {
                Issue.record("expected a failure")
                return
            }
            #expect(failure.disposition == .permanent)
            #expect(try await peer.requests("mute").isEmpty)
        }
    }
}
