import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenVerba

/// A clock the test moves: the token session's notion of now.
final class TestClock: Sendable {
    private let origin = ContinuousClock.now
    private let offset = Locked(Duration.zero)
    func advance(_ duration: Duration) { offset.withLock { $0 += duration } }
    var now: @Sendable () -> ContinuousClock.Instant { { [self] in origin + offset.withLock { $0 } } }
}

/// A provider context with a transport of its own, closed by `close()`.
final class TargetContext: Sendable {
    let provider = TestProviderContext()
    let transport: HTTPTransport

    init() throws {
        transport = try HTTPTransport(options: HTTPTransport.Options(threadName: "mw-http-verba-test"))
        provider.context.shared.provide(.httpTransport, transport)
    }

    func close() {
        provider.context.shared.retainClaims(of: [])
        provider.context.shared.closeUnclaimed()
        transport.close()
    }
}

private func settings(_ peer: VerbaPeer, _ edit: (inout VerbaTargetSettings) -> Void = { _ in }) -> VerbaTargetSettings {
    var settings = VerbaTargetSettings(baseURL: peer.baseURL, apiKey: Secret(reference: "env:VERBA_KEY", value: VerbaPeer.apiKey))
    settings.username = VerbaPeer.user
    settings.password = Secret(reference: "env:VERBA_PW", value: VerbaPeer.password)
    settings.timeout = .seconds(5)
    edit(&settings)
    return settings
}

private func request(_ address: ActionAddress, _ verb: ActionVerb = .apply, secondary: [String: String] = [:]) -> ActionRequest {
    ActionRequest(
        kind: .pauseRecording, verb: verb, target: "rec", address: address, feed: "gws",
        call: CallIdentifiers(primary: "C1", secondary: secondary), agentExtension: "3001", idempotencyKey: "k", attempt: 1,
        policy: "card")
}

private func failure(_ result: ActionAttemptResult) -> ActionFailure? {
    if case .failed(let failure) = result { return failure }
    return nil
}

@Suite struct VerbaTargetTests {
    @Test func aPauseByExtensionLogsInOnceThenMutesAndUnmutesTheRecording() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            #expect(!target.descriptor.confirmsByEvent)
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            #expect(await target.perform(request(.agentExtension("3001"), .undo)) == .accepted)
            let logins = try await peer.requests("RequestToken")
            #expect(logins.count == 1)
            #expect(logins.first?.authorization == "Basic dmVyYmEtc3ZjOnZlcmJhLXBhc3N3b3JkLXZhbHVl")
            #expect(logins.first?.parameters["apiKey"] == VerbaPeer.apiKey)
            let mutes = try await peer.requests("MuteRecording")
            #expect(
                mutes.map(\.description) == [
                    "GET MuteRecording action=MuteRecording&extension=3001&mute=3&status=ongoing",
                    "GET MuteRecording action=MuteRecording&extension=3001&mute=0&status=ongoing",
                ])
            #expect(mutes.allSatisfy { $0.parameters["token"] != nil && $0.parameters["apiKey"] == VerbaPeer.apiKey && $0.authorization == nil })
        }
    }

    @Test func aPauseByCallCanGoByPOSTWithTheIdTheConfigurationNames() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer) {
                $0.method = .post
                $0.callIDKey = "callUuid"
                $0.muteValue = "1"
            }.makeTarget(name: "rec", context: context.provider.context)
            #expect(await target.perform(request(.call(id: "C1"), secondary: ["callUuid": "a8343631-9f35"])) == .accepted)
            let mute = try #require(try await peer.requests("MuteRecording").first)
            #expect(mute.method == "POST" && mute.contentType == "application/x-www-form-urlencoded")
            #expect(mute.description == "POST MuteRecording action=MuteRecording&callID=a8343631-9f35&mute=1")
            // Without the identifier the feed should have given, nothing is sent.
            let missing = failure(await target.perform(request(.call(id: "C2"))))
            #expect(missing?.disposition == .permanent && missing?.code == "no-call-id")
            #expect(try await peer.requests("MuteRecording").count == 1)
        }
    }

    @Test func withoutAuthenticationNoTokenIsAskedForOrSent() async throws {
        try await withVerbaPeer(authentication: false) { peer in
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer) {
                $0.login = .none
                $0.password = nil
            }.makeTarget(name: "rec", context: context.provider.context)
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            #expect(try await peer.requests("RequestToken").isEmpty)
            #expect(try await peer.requests("MuteRecording").first?.parameters["token"] == nil)
        }
    }

    @Test(arguments: ["http", "xml"])
    func aTokenThatExpiresMidWindowIsDroppedAndTheNextAttemptLogsInAgain(_ style: String) async throws {
        try await withVerbaPeer { peer in
            try await peer.configure(unauthorized: style)
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            try await peer.expireTokens()
            let refused = failure(await target.perform(request(.agentExtension("3001"), .undo)))
            #expect(refused?.disposition == .retryable)
            #expect(refused?.message.contains("logs in again") == true)
            #expect(await target.perform(request(.agentExtension("3001"), .undo)) == .accepted)
            #expect(try await peer.requests("RequestToken").count == 2)
            let tokens = try await peer.requests("MuteRecording").compactMap { $0.parameters["token"] }
            #expect(tokens.count == 3 && tokens[0] == tokens[1] && tokens[1] != tokens[2])
        }
    }

    @Test func theTokenIsRenewedAheadOfItsHourWhileTheOldOneStillServes() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            let clock = TestClock()
            let target = try settings(peer).makeVerbaTarget(name: "rec", context: context.provider.context, clock: clock.now)
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            clock.advance(.seconds(49 * 60))
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            #expect(try await peer.requests("RequestToken").count == 1)
            // Past the renewal point: this attempt goes with the old token, and a renewal starts.
            clock.advance(.seconds(2 * 60))
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            try await peer.waitForRequests("RequestToken", count: 2)
            try await eventually("the renewed token in use", timeout: .seconds(10), every: .milliseconds(50)) { () async throws -> String? in
                _ = await target.perform(request(.agentExtension("3001")))
                let tokens = try await peer.requests("MuteRecording").compactMap { $0.parameters["token"] }
                return tokens.last != tokens.first ? tokens.last : nil
            }
            #expect(try await peer.requests("RequestToken").count == 2)
            let tokens = try await peer.requests("MuteRecording").compactMap { $0.parameters["token"] }
            #expect(tokens[2] == tokens[0])
        }
    }

    @Test func attemptsThatNeedATokenAtOnceShareOneLogin() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            let results = await withTaskGroup(of: ActionAttemptResult.self) { group in
                for index in 0..<8 { group.addTask { await target.perform(request(.agentExtension("30\(index)"))) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.allSatisfy { $0 == .accepted })
            #expect(try await peer.requests("RequestToken").count == 1)
        }
    }

    @Test func aCallVerbaCannotFindIsCallGoneWithItsCodeAndMessage() async throws {
        try await withVerbaPeer { peer in
            try await peer.configure(gone: ["3009"])
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            let gone = try #require(failure(await target.perform(request(.agentExtension("3009")))))
            #expect(gone.disposition == .callGone)
            #expect(gone.code == "code 2")
            #expect(gone.message.contains("code 2: Error: 'Call cannot be found.'"))
        }
    }

    @Test func moreThanOneMatchingCallIsItsOwnPermanentError() async throws {
        try await withVerbaPeer { peer in
            try await peer.configure(several: ["3001"])
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            let several = try #require(failure(await target.perform(request(.agentExtension("3001")))))
            #expect(several.disposition == .permanent)
            #expect(several.message.contains("more than one call matches"))
            #expect(several.message.contains("'More than one call matches the given criteria.'"))
        }
    }

    @Test func aServerErrorIsRetryableAndTheNextAttemptSucceeds() async throws {
        try await withVerbaPeer { peer in
            try await peer.script([(503, "<html>busy</html>")])
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            let busy = try #require(failure(await target.perform(request(.agentExtension("3001")))))
            #expect(busy.disposition == .retryable && busy.code == "http 503")
            #expect(await target.perform(request(.agentExtension("3001"))) == .accepted)
            // The 503 did not cost the token.
            #expect(try await peer.requests("RequestToken").count == 1)
        }
    }

    @Test func aRefusedLoginIsPermanentAndNeverShowsTheCredentials() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            let target = try settings(peer) { $0.password = Secret(reference: "env:VERBA_PW", value: "wrong-password-value") }
                .makeTarget(name: "rec", context: context.provider.context)
            let refused = try #require(failure(await target.perform(request(.agentExtension("3001")))))
            #expect(refused.disposition == .permanent && refused.code == "login-refused")
            #expect(refused.message.contains("Verba RequestToken refused"))
            for secret in ["wrong-password-value", VerbaPeer.apiKey, "Basic "] { #expect(!refused.description.contains(secret)) }
            #expect(try await peer.requests("MuteRecording").isEmpty)
        }
    }

    @Test func askedToMuteTheAgentItRefusesWithoutSending() async throws {
        try await withVerbaPeer { peer in
            let context = try TargetContext()
            defer { context.close() }
            var mute = request(.agentExtension("3001"))
            mute.kind = .mute
            let target = try settings(peer).makeTarget(name: "rec", context: context.provider.context)
            let refused = failure(await target.perform(mute))
            #expect(refused?.disposition == .permanent)
            #expect(try await peer.requests().isEmpty)
        }
    }
}
