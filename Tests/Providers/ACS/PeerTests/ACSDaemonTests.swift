import Foundation
import MutewardenHTTP
import MutewardenJSON
import MutewardenTesting
import Testing

@testable import MutewardenACS

/// Runs `body` with a daemon on the fake whose callbacks go to it, and checks afterwards that it
/// stopped cleanly and that no credential or token reached its log.
func withACSDaemon(
    _ fake: FakeACS, _ setup: ACSDaemonSetup = ACSDaemonSetup(), _ body: (ACSRunningDaemon) async throws -> Void
) async throws {
    let running = try ACSRunningDaemon(fake: fake, setup: setup)
    do {
        try await fake.configure([("callbacks", .array([.string(running.callbackURL)]))])
        try #require(await running.feedUp())
        try await body(running)
    } catch {
        _ = try? await running.finish()
        throw error
    }
    expectNoSecret(in: running.lines())
    #expect(try await running.finish() == 0)
}

func expectNoSecret(in lines: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    for secret in [FakeACS.accessKey, FakeACS.clientSecret, "eyJ"] {
        #expect(!lines.contains { $0.contains(secret) }, "\(secret) was logged", sourceLocation: sourceLocation)
    }
}

/// The `acs` feed and target in the real daemon against the fake Call Automation: callbacks signed
/// with RS256 JWTs into the ingress, actions out signed with HMAC or an Entra token, deduplicated
/// by the fake's repeatability ledger, confirmed by the events the fake posts after performing.
@Suite(.serialized) struct ACSDaemonTests {
    static let agent = "8:acs:a6c1e2d4-0000-4000-8000-acs000000001_00000020-aaaa-bbbb"
    static let caller = "4:+14255550123"

    @Test func keyedDigitsPauseTheRecordingUntilTheTonesStopEachConfirmedByRecordingStateChanged() async throws {
        try await withFakeACS { fake in
            try await withACSDaemon(fake) { running in
                #expect(try await fake.startCall("call-1", agent: Self.agent, caller: Self.caller, recording: "rec-1") == [200])
                #expect(try await fake.tone("call-1", "four") == [200])
                // The older preview shape keeps the window open just the same.
                #expect(try await fake.tone("call-1", "one", shape: "toneInfo") == [200])
                #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-1"))
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-1"))
                let performed = try await fake.state()["performed"]?.array ?? []
                #expect(performed.map { $0["operation"]?.string } == ["pause", "resume"])
                #expect(performed.allSatisfy { $0["subject"]?.string == "rec-1" && $0["auth"]?.string == "hmac" })
                let requests = try await fake.state()["requests"]?.array ?? []
                #expect(requests.allSatisfy { ($0["status"]?.int ?? 0) == 202 && $0["request_id"]?.string != nil })
                #expect(requests.allSatisfy { $0["api_version"]?.string == "2024-09-15" })
                // A tone is a digit the caller keyed: none reaches the log.
                #expect(!running.lines().contains { $0.contains("four") || $0.contains("tone=") })
                #expect(try await fake.hangUp("call-1") == [200])
            }
        }
    }

    @Test func aMuteIsConfirmedByParticipantsUpdatedAndUndoneWithThePreviewUnmute() async throws {
        try await withFakeACS { fake in
            var setup = ACSDaemonSetup()
            setup.kind = "mute"
            setup.unmuteAPIVersion = "2024-09-01-preview"
            try await withACSDaemon(fake, setup) { running in
                try await fake.startCall("call-m", agent: Self.agent, caller: Self.caller, recording: "rec-m")
                try await fake.tone("call-m")
                #expect(await running.waitForLine("audit=action.confirmed", "action=mute", "call=call-m"))
                #expect(await running.waitForLine("audit=action.confirmed", "action=unmute", "call=call-m"))
                let requests = try await fake.state()["requests"]?.array ?? []
                #expect(requests.map { $0["operation"]?.string } == ["mute", "unmute"])
                #expect(requests.map { $0["api_version"]?.string } == ["2024-09-15", "2024-09-01-preview"])
                #expect(requests.allSatisfy { $0["status"]?.int == 200 && $0["subject"]?.string == "call-m" })
            }
        }
    }

    @Test func anEntraTokenThatExpiresDuringTheWindowIsReplacedForTheUndo() async throws {
        try await withFakeACS { fake in
            try await fake.configure([("token_life", .number(4))])
            var setup = ACSDaemonSetup()
            setup.credential = .entra
            setup.quietPeriod = "2s"
            try await withACSDaemon(fake, setup) { running in
                try await fake.startCall("call-e", agent: Self.agent, caller: Self.caller, recording: "rec-e")
                try await fake.tone("call-e")
                try #require(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-e"))
                // Keep the caller keying past the first token's life (the fake refuses it after
                // that), so that the undo needs a new one.
                let clock = ContinuousClock()
                let until = clock.now + .seconds(5)
                for _ in 0..<20 where clock.now < until {
                    try await fake.tone("call-e")
                    try await Task.sleep(for: .milliseconds(500))
                }
                #expect(running.count("audit=window.opened", "call=call-e") == 1)
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-e"))
                let state = try await fake.state()
                let requests = state["requests"]?.array ?? []
                #expect(requests.map { $0["operation"]?.string } == ["pause", "resume"])
                #expect(requests.allSatisfy { $0["auth"]?.string == "bearer" && $0["status"]?.int == 202 })
                let tokens = requests.compactMap { $0["token"]?.string }
                #expect(tokens.count == 2 && tokens[0] != tokens[1])
                #expect(state["token_requests"]?.int == 2)
            }
        }
    }

    @Test func aServerErrorIsRetriedWithTheSameRepeatabilityHeadersThenSucceeds() async throws {
        try await withFakeACS { fake in
            try await fake.configure([
                ("answers", .object([("pause", .array([.object([("status", .number(500)), ("code", .string("InternalServerError"))])]))]))
            ])
            try await withACSDaemon(fake) { running in
                try await fake.startCall("call-r", agent: Self.agent, caller: Self.caller, recording: "rec-r")
                try await fake.tone("call-r")
                #expect(await running.waitForLine("audit=action.retry", "call=call-r", "500"))
                #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-r"))
                let pauses = try await fake.requests("pause")
                #expect(pauses.map { $0["status"]?.int } == [500, 202])
                #expect(Set(pauses.compactMap { $0["request_id"]?.string }).count == 1)
                #expect(Set(pauses.compactMap { $0["first_sent"]?.string }).count == 1)
                #expect(try await fake.performed("pause").count == 1)
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-r"))
            }
        }
    }

    @Test func aNotFoundIsRetriedWhileTheFeedSaysTheCallIsLiveAndAbandonedOnceItEnds() async throws {
        try await withFakeACS { fake in
            try await fake.configure([("always", .object([("pause", .object([("status", .number(404)), ("code", .string("8522"))]))]))])
            var setup = ACSDaemonSetup()
            setup.quietPeriod = "10s"
            setup.deadline = "10s"
            try await withACSDaemon(fake, setup) { running in
                try await fake.startCall("call-g", agent: Self.agent, caller: Self.caller, recording: "rec-g")
                try await fake.tone("call-g")
                #expect(await running.waitForLine("audit=action.retry", "call=call-g", "404"))
                try await fake.hangUp("call-g")
                #expect(await running.waitForLine("audit=window.closed", "call=call-g", "result=call-ended"))
                #expect(!running.lines().contains { $0.contains("audit=action.failed") })
                #expect(try await fake.performed("pause").isEmpty)
            }
        }
    }

    @Test func aForbiddenIsNotRetriedAndFailsTheControlAtTheDeadline() async throws {
        try await withFakeACS { fake in
            try await fake.configure([
                ("always", .object([("pause", .object([("status", .number(403)), ("code", .string("Forbidden"))]))]))
            ])
            var setup = ACSDaemonSetup()
            setup.quietPeriod = "10s"
            setup.deadline = "2s"
            try await withACSDaemon(fake, setup) { running in
                try await fake.startCall("call-f", agent: Self.agent, caller: Self.caller, recording: "rec-f")
                try await fake.tone("call-f")
                #expect(await running.waitForLine("CRIT", "audit=action.failed", "call=call-f"))
                #expect(running.lines().contains { $0.contains("call=call-f") && $0.contains("403") && $0.contains("Forbidden") })
                #expect(try await fake.requests("pause").count == 1)
                try await fake.hangUp("call-f")
            }
        }
    }

    /// The platform accepts the pause (202) and never says the recording stopped: the control
    /// fails at the deadline, since an accepted request is not a paused recording.
    @Test func aPauseThePlatformAcceptsButNeverConfirmsFailsTheControlAtTheDeadline() async throws {
        try await withFakeACS { fake in
            try await fake.configure([("confirm", .bool(false))])
            var setup = ACSDaemonSetup()
            setup.quietPeriod = "10s"
            setup.deadline = "2s"
            try await withACSDaemon(fake, setup) { running in
                try await fake.startCall("call-n", agent: Self.agent, caller: Self.caller, recording: "rec-n")
                try await fake.tone("call-n")
                #expect(await running.waitForLine("CRIT", "audit=action.failed", "call=call-n"))
                #expect(try await fake.performed("pause").count == 1)
                #expect(!running.lines().contains { $0.contains("audit=action.confirmed") && $0.contains("call=call-n") })
                try await fake.hangUp("call-n")
            }
        }
    }

    /// Two replicas of the daemon, each with its own state and ingress, both told every event:
    /// both send the pause with one `Repeatability-Request-ID`, the platform performs it once, and
    /// both see it confirmed.
    @Test func twoReplicasSendTheSamePauseAndThePlatformPerformsItOnce() async throws {
        try await withFakeACS { fake in
            var setup = ACSDaemonSetup()
            setup.quietPeriod = "2s"
            let first = try ACSRunningDaemon(fake: fake, setup: setup)
            let second = try ACSRunningDaemon(fake: fake, setup: setup)
            do {
                // The platform confirms a moment later, as Call Automation does: by then both
                // replicas have opened their window and sent the pause.
                try await fake.configure([
                    ("callbacks", .array([.string(first.callbackURL), .string(second.callbackURL)])), ("confirm_delay_ms", .number(500)),
                ])
                try #require(await first.feedUp())
                try #require(await second.feedUp())
                #expect(try await fake.startCall("call-2", agent: Self.agent, caller: Self.caller, recording: "rec-2") == [200, 200])
                #expect(try await fake.tone("call-2") == [200, 200])
                for running in [first, second] {
                    #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-2"))
                }
                #expect(await waitUntil { (try? await fake.requests("pause").count) == 2 })
                let pauses = try await fake.requests("pause")
                #expect(Set(pauses.compactMap { $0["request_id"]?.string }).count == 1)
                #expect(pauses.filter { $0["deduplicated"]?.bool == true }.count == 1)
                #expect(try await fake.performed("pause").count == 1)
                for running in [first, second] {
                    #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-2"))
                }
                #expect(try await fake.performed("resume").count == 1)
                #expect((try await fake.state()["callback_statuses"]?.array ?? []).allSatisfy { $0.int == 200 })
            } catch {
                _ = try? await first.finish()
                _ = try? await second.finish()
                throw error
            }
            #expect(try await first.finish() == 0)
            #expect(try await second.finish() == 0)
        }
    }

    /// Callbacks whose token is forged, expired, for another resource, from another issuer, of a
    /// symmetric algorithm or missing are refused with 401 and reach no call: a tone among them
    /// opens no window, while a good callback sent after them does.
    @Test func unauthenticatedCallbacksAreRefusedAndChangeNoCall() async throws {
        try await withFakeACS { fake in
            try await withACSDaemon(fake) { running in
                try await fake.startCall("call-a", agent: Self.agent, caller: Self.caller, recording: "rec-a")
                try await fake.startCall("call-b", agent: Self.agent, caller: Self.caller, recording: "rec-b")
                for kind in ["forged", "expired", "wrong-audience", "wrong-issuer", "hs256", "missing"] {
                    #expect(try await fake.post(.array([FakeACS.toneEvent("call-a")]), token: kind) == [401], "\(kind)")
                }
                // In order after the refused ones: once its window opens, theirs would have.
                #expect(try await fake.tone("call-b") == [200])
                #expect(await running.waitForLine("audit=window.opened", "call=call-b"))
                #expect(!running.lines().contains { $0.contains("audit=window.opened") && $0.contains("call=call-a") })
                #expect(try await fake.performed("pause").allSatisfy { $0["subject"]?.string == "rec-b" })
                #expect(await running.waitForLine("callback ingress refused", "/callbacks/acs", "401"))
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-b"))
            }
        }
    }

    /// A card number where the platform echoes the deployment's text (operationContext), in a
    /// participant's id and as a tone, and malformed events around it: the log never shows it, the
    /// bad events are skipped and the good ones still count.
    @Test func aCardNumberInACallbackNeverReachesTheLogAndBadEventsAreSkipped() async throws {
        let pan = "4111111111111111"
        try await withFakeACS { fake in
            try await withACSDaemon(fake) { running in
                #expect(
                    try await fake.startCall(
                        "call-p", agent: Self.agent, caller: "4:+\(pan)", recording: "rec-p", operationContext: "card \(pan) taken") == [200])
                let bad: JSONValue = .array([
                    // A call id is left unmasked by design (AuditField.isIdentifier: platforms' ids
                    // are long digit runs), so the card number goes where the platform echoes text.
                    .object([
                        ("type", .string("Microsoft.Communication.ParticipantsUpdated")),
                        ("data", .object([("callConnectionId", .string("call-p")), ("operationContext", .string(pan))])),
                    ]),
                    .object([
                        ("type", .string("Microsoft.Communication.ContinuousDtmfRecognitionToneReceived")),
                        ("data", .object([("callConnectionId", .string("call-p")), ("tone", .string(pan))])),
                    ]),
                    .object([
                        ("type", .string("Microsoft.Communication.PlayCompleted")), ("data", .object([("callConnectionId", .string("call-p"))])),
                    ]),
                    .string(pan),
                    FakeACS.toneEvent("call-p", extra: [("operationContext", .string(pan))]),
                ])
                #expect(try await fake.post(bad) == [200])
                #expect(await running.waitForLine("audit=action.confirmed", "action=pause-recording", "call=call-p"))
                #expect(running.count("acs event skipped") >= 3)
                #expect(try await fake.post(.string("not a batch")) == [400])
                #expect(await running.waitForLine("audit=action.confirmed", "action=resume-recording", "call=call-p"))
                try await fake.hangUp("call-p")
                let leaked = running.lines().filter { $0.contains(pan) || $0.contains("4111 1111") }
                #expect(leaked.isEmpty, "\(leaked)")
            }
        }
    }
}
