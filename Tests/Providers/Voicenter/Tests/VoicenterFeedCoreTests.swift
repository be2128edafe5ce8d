import MutewardenJSON
import MutewardenModel
import Testing

@testable import MutewardenVoicenter

private func at(_ seconds: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: Int64(seconds * 1e9)) }

private func event(_ reason: String, extension sipID: String, calls: [String], ended: String? = nil, status: String = "Talking")
    -> JSONValue
{
    var data: [(String, JSONValue)] = [
        ("extenUser", .string(sipID)),
        (
            "calls",
            .array(
                calls.map {
                    .object([
                        ("ivrid", .string($0)), ("callstatus", .string(status)), ("direction", .string("Incoming")),
                        ("recording", .object([("IsMuted", .number(0))])),
                    ])
                })
        ),
    ]
    if let ended { data.append(("currentCall", .object([("ivrid", .string(ended)), ("direction", .string("Incoming"))]))) }
    return .object([("reason", .string(reason)), ("data", .object(data)), ("servertime", .number(1)), ("servertimeoffset", .number(0))])
}

private func snapshot(_ extensions: [(String, [String])]) -> JSONValue {
    .object([
        (
            "extensions",
            .array(
                extensions.map { sipID, calls in
                    .object([
                        ("extenUser", .string(sipID)),
                        ("calls", .array(calls.map { .object([("ivrid", .string($0)), ("callstatus", .string("Talking"))]) })),
                    ])
                })
        )
    ])
}

private func delivered(_ outputs: [VoicenterFeedCore.Output]) -> [CallUpdate] {
    outputs.flatMap { output -> [CallUpdate] in
        if case .deliver(let updates) = output { return updates }
        return []
    }
}

private func reports(_ outputs: [VoicenterFeedCore.Output]) -> [(AuditSeverity, String, AuditFields)] {
    outputs.compactMap { output in
        if case .report(let severity, let message, let fields) = output { return (severity, message, fields) }
        return nil
    }
}

/// A core connected at t=0 that has had its first snapshot at t=1.
private func readyCore(_ extensions: [(String, [String])] = [], configuration: VoicenterFeedCore.Configuration? = nil)
    -> VoicenterFeedCore
{
    var core = VoicenterFeedCore(configuration: configuration ?? .init(feed: "vc"))
    _ = core.connected(at: at(0))
    _ = core.received("AllExtensionsStatus", snapshot(extensions), at: at(1))
    return core
}

@Test func theFirstSnapshotOfAConnectionIsAResyncAndMakesTheFeedUp() throws {
    var core = VoicenterFeedCore(configuration: .init(feed: "vc"))
    #expect(core.connected(at: at(0)).isEmpty)
    let outputs = core.received("AllExtensionsStatus", try fixture("all-extensions-status"), at: at(1))
    #expect(outputs.first == .ready)
    guard case .resync(let calls)? = outputs.dropFirst().first else {
        Issue.record("expected the feed up, then a resync: \(outputs)")
        return
    }
    // One entry per call: the Spy leg of Dana's call is not a second entry.
    #expect(calls.map(\.ids.primary) == [cardLikeIvrid, "1717000150987654321-2"])
    #expect(core.liveCallCount == 2)
    // A later snapshot (a resync) is a resync again, and the feed is already up.
    let again = core.received("AllExtensionsStatus", try fixture("all-extensions-status"), at: at(2))
    #expect(!again.contains(.ready))
    #expect(again.contains { if case .resync = $0 { true } else { false } })
}

@Test func extensionEventsDeliverTheExtensionsLiveCallsAndAHangupReleasesTheEndedOne() throws {
    var core = readyCore()
    let newCall = core.received("ExtensionEvent", try fixture("extension-event-newcall"), at: at(2))
    #expect(delivered(newCall).map(\.ids.primary) == [cardLikeIvrid, "1717000300555555555-7"])
    let hangup = core.received("ExtensionEvent", try fixture("extension-event-hangup"), at: at(3))
    let updates = delivered(hangup)
    #expect(updates.map(\.ids.primary) == [cardLikeIvrid, "1717000300555555555-7"])
    #expect(updates.map(\.state) == [.established, .released])
    #expect(core.liveCallCount == 1)
}

@Test func aCallOnTwoExtensionsMovesToTheOtherWhenOneHangsUp() {
    var core = readyCore()
    _ = core.received("ExtensionEvent", event("NEWCALL", extension: "A", calls: ["X"]), at: at(2))
    // An attended transfer: the same call on B.
    _ = core.received("ExtensionEvent", event("NEWCALL", extension: "B", calls: ["X"]), at: at(3))
    let hangupOnA = delivered(core.received("ExtensionEvent", event("HANGUP", extension: "A", calls: [], ended: "X"), at: at(4)))
    #expect(hangupOnA.map(\.ids.primary) == ["X"])
    #expect(hangupOnA.first?.state == .established)
    #expect(hangupOnA.first?.agentExtension == "B")
    let hangupOnB = delivered(core.received("ExtensionEvent", event("HANGUP", extension: "B", calls: [], ended: "X"), at: at(5)))
    #expect(hangupOnB.map(\.state) == [.released])
    #expect(core.liveCallCount == 0)
}

@Test func aCallThatLeavesAnExtensionWithoutHangupIsNotEnded() {
    var core = readyCore([("A", ["X"])])
    let left = core.received("ExtensionEvent", event("userStatusUpdate", extension: "A", calls: []), at: at(2))
    #expect(delivered(left).isEmpty)
    #expect(core.liveCallCount == 0)
    // Its HANGUP, seen later on another extension, still ends it.
    let hangup = delivered(core.received("ExtensionEvent", event("HANGUP", extension: "B", calls: [], ended: "X"), at: at(3)))
    #expect(hangup.map(\.state) == [.released])
}

@Test func aHangupOfACallStillListedLiveOnTheSameExtensionEndsNothing() {
    var core = readyCore([("A", ["X"])])
    let outputs = core.received("ExtensionEvent", event("HANGUP", extension: "A", calls: ["X"], ended: "X"), at: at(2))
    #expect(delivered(outputs).map(\.state) == [.established])
}

@Test func keepaliveAfterSilenceThenReconnectAfterTwiceAsLong() {
    var core = readyCore()
    // The first snapshot came at t=1.
    #expect(core.tick(at: at(60)).isEmpty)
    #expect(core.tick(at: at(61)) == [.keepalive])
    #expect(core.tick(at: at(62)).isEmpty)
    #expect(core.tick(at: at(120)).isEmpty)
    guard case .reconnect(let reason, let newLogin)? = core.tick(at: at(121)).first else {
        Issue.record("expected a reconnection")
        return
    }
    #expect(reason.contains("no event for 2m"))
    #expect(!newLogin)
}

@Test func anyEventPutsTheKeepaliveOff() {
    var core = readyCore()
    _ = core.received("QueueEvent", .object([]), at: at(50))
    #expect(core.tick(at: at(100)).isEmpty)
    #expect(core.tick(at: at(110)) == [.keepalive])
}

@Test(arguments: [
    (#"{"isOk":true,"errorCode":0}"#, false), (#"{"isOk":true}"#, false), (#"{"isOk":false}"#, true),
    (#"{"errorCode":"401"}"#, true), (#"{"errorCode":3}"#, true),
])
func aKeepaliveResponseWithAnErrorMeansANewLogin(_ json: String, _ reconnects: Bool) throws {
    var core = readyCore()
    let outputs = core.received("keepaliveResponse", try JSONValue.parse(json), at: at(2))
    if reconnects {
        guard case .reconnect(_, let newLogin)? = outputs.first else {
            Issue.record("expected a reconnection: \(outputs)")
            return
        }
        #expect(newLogin)
    } else {
        #expect(outputs.isEmpty)
    }
}

@Test func noSnapshotAfterConnectingAsksForAResyncThenReconnects() {
    var core = VoicenterFeedCore(configuration: .init(feed: "vc", snapshotWait: .seconds(15)))
    _ = core.connected(at: at(0))
    #expect(core.tick(at: at(14)).isEmpty)
    let asked = core.tick(at: at(15))
    #expect(asked.last == VoicenterFeedCore.resyncEmit)
    #expect(reports(asked).first?.1.contains("of connecting") == true)
    guard case .reconnect(let reason, false)? = core.tick(at: at(30)).first else {
        Issue.record("expected a reconnection")
        return
    }
    #expect(reason.contains("no AllExtensionsStatus"))
}

@Test func extensionsUpdatedAsksForOneResyncAtATime() {
    var core = readyCore()
    #expect(core.received("ExtensionsUpdated", .object([]), at: at(2)) == [VoicenterFeedCore.resyncEmit])
    #expect(core.received("ExtensionsUpdated", .object([]), at: at(3)).isEmpty)
    _ = core.received("AllExtensionsStatus", snapshot([]), at: at(4))
    #expect(core.received("ExtensionsUpdated", .object([]), at: at(5)) == [VoicenterFeedCore.resyncEmit])
}

@Test func theSnapshotIsAskedForPeriodically() {
    var core = readyCore(configuration: .init(feed: "vc", resyncInterval: .seconds(300)))
    _ = core.received("QueueEvent", .object([]), at: at(290))
    #expect(core.tick(at: at(300)).isEmpty)
    #expect(core.tick(at: at(301)) == [VoicenterFeedCore.resyncEmit])
}

@Test func aMalformedExtensionEventIsReportedWithoutItsContentAndAResyncIsAskedFor() throws {
    var core = readyCore()
    let payload = try JSONValue.parse(
        #"{"reason":"ANSWER","ivruniqueid":"\#(cardLikeIvrid)","data":"card 4111 1111 1111 1111 exp 12/29"}"#)
    let outputs = core.received("ExtensionEvent", payload, at: at(2))
    #expect(outputs.last == VoicenterFeedCore.resyncEmit)
    let report = try #require(reports(outputs).first)
    #expect(report.0 == .warning)
    #expect(!report.1.contains("4111"))
    #expect(!report.1.contains("12/29"))
    // The call id is kept whole, in its own field.
    #expect(report.2[.call] == cardLikeIvrid)
    #expect(report.2[.reason] == "resync")
}

@Test func aPANInCustomDataReachesNoRecord() throws {
    var core = readyCore()
    let calls: JSONValue = .array([
        .object([("ivrid", .string("A1")), ("callstatus", .string("Odd")), ("customdata", .object([("card", .string("4111111111111111"))]))]),
        .object([("callstatus", .string("Talking")), ("customdata", .object([("card", .string("4111111111111111"))]))]),
    ])
    let payload: JSONValue = .object([
        ("reason", .string("NEWTHING")), ("data", .object([("extenUser", .string("E")), ("calls", calls)])),
    ])
    let outputs = core.received("ExtensionEvent", payload, at: at(2))
    #expect(delivered(outputs).first?.attributes == ["card": "4111111111111111"])
    let texts = reports(outputs).map { "\($0.1) \($0.2)" }
    #expect(texts.count == 3)  // the unknown reason, the unreadable call, the unknown status
    for text in texts { #expect(!text.contains("4111111111111111"), "\(text)") }
}

@Test func unknownEventsAreReportedOnceAndKnownOthersIgnored() {
    var core = readyCore()
    #expect(reports(core.received("SomethingNew", .null, at: at(2))).count == 1)
    #expect(core.received("SomethingNew", .null, at: at(3)).isEmpty)
    #expect(core.received("QueueEvent", .null, at: at(4)).isEmpty)
    #expect(core.received("loginSuccess", .null, at: at(5)).isEmpty)
}

@Test func aRefusedSnapshotMeansANewLoginAndAnUnreadableOneIsReported() throws {
    var core = readyCore()
    #expect(
        core.received("AllExtensionsStatus", try JSONValue.parse(#"{"errorCode":401}"#), at: at(2)).first
            == .reconnect(
                reason: "the server refused AllExtensionsStatus with errorCode 401", newLogin: true))
    let unreadable = core.received("AllExtensionsStatus", .string("nope"), at: at(3))
    #expect(reports(unreadable).first?.0 == .error)
}

@Test func nothingHappensWhileDisconnected() {
    var core = readyCore()
    core.disconnected()
    #expect(core.tick(at: at(1000)).isEmpty)
    #expect(core.received("ExtensionsUpdated", .null, at: at(1001)).isEmpty)
}
