import MutewardenModel
import Testing

@testable import MutewardenGraph

private let start = MonotonicInstant(nanoseconds: 1_000_000_000_000)

private func notifications(_ text: String) throws -> GraphNotifications.Batch {
    guard case .notifications(let batch) = try GraphNotifications.parse(Array(text.utf8)) else { throw TestError() }
    return batch
}

private struct TestError: Error {}

private func updates(_ outputs: [GraphFeedCore.Output]) -> [CallUpdate] {
    outputs.flatMap { output -> [CallUpdate] in
        if case .deliver(let updates) = output { return updates }
        return []
    }
}

private func callState(_ call: String, _ state: String, change: String = "updated") -> String {
    ##"{"value":[{"changeType":"\##(change)","resourceUrl":"/communications/calls/\##(call)","resourceData":{"@odata.type":"#microsoft.graph.call","state":"\##(state)"}}]}"##
}

private func tone(_ call: String) -> String {
    ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/\##(call)","resourceData":{"@odata.type":"#microsoft.graph.call","toneInfo":{"sequenceId":3,"tone":"tone4"}}}]}"##
}

@Test func theBotIsTheAgentByDefaultAndItsMuteIsReported() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1")))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    var out = updates(core.receive(try notifications(rosterBody(call: "c-1")), now: start))
    #expect(out.last?.agentExtension == "bot-participant")
    #expect(out.last?.mute == .off)
    #expect(out.last?.participants == ["user:5810cede-f3cc-42eb-b2c1-e9bd5d53ec96", "application:app-1"])
    let botMuted = rosterBody(call: "c-1").replacingOccurrences(of: ##""isMuted":false}"##, with: ##""isMuted":true}"##)
    out = updates(core.receive(try notifications(botMuted), now: start))
    #expect(out.last?.mute == .on)
}

@Test func aParticipantCanBeTheAgent() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .participant(kinds: ["user"], idPrefix: "5810")))
    let out = updates(core.receive(try notifications(rosterBody(call: "c-1", muted: true)), now: start))
    #expect(out.last?.agentExtension == "2765eb15-01f8-47c6-b12b-c32111a4a86f")
    #expect(out.last?.mute == .on)
    #expect(out.last?.state == .established)
}

@Test(arguments: ["terminating", "terminated"])
func aCallEndingIsReleased(_ state: String) throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1")))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    let out = updates(core.receive(try notifications(callState("c-1", state)), now: start))
    #expect(out.map(\.state) == [.released])
    #expect(core.trackedCalls == 0)
}

@Test func aDeletedCallIsReleasedEvenWithoutItsData() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1")))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    let out = updates(
        core.receive(try notifications(##"{"value":[{"changeType":"deleted","resourceUrl":"/communications/calls/c-1"}]}"##), now: start))
    #expect(out.map(\.state) == [.released])
}

@Test func tonesSetTheKeyingAttributeUntilAQuietPeriod() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1"), keyingQuietPeriod: .seconds(5)))
    var out = updates(core.receive(try notifications(tone("c-1")), now: start))
    #expect(out.last?.attributes == ["dtmf": "keying"])
    out = updates(core.receive(try notifications(tone("c-1")), now: start + .seconds(3)))
    #expect(out.isEmpty)
    #expect(updates(core.tick(now: start + .seconds(7))).isEmpty)
    out = updates(core.tick(now: start + .seconds(8)))
    #expect(out.last?.attributes == [:])
    #expect(!"\(out)".contains("tone4"))
}

@Test func aCompletedRecordingStatusIsReportedAsTheRecordingState() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1")))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    var out = updates(core.receive(.completed(call: "c-1", effect: .recording(.paused)), now: start))
    #expect(out.last?.recording == .paused)
    // Running: the outcome's notification completes it.
    _ = core.receive(
        .running(clientContext: "key-2", operationID: "op-2", call: "c-1", operation: "resume", effect: .recording(.recording)), now: start)
    #expect(core.pendingOperations == 1)
    out = updates(
        core.receive(
            try notifications(
                ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1/operations/op-2","resourceData":{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","status":"completed","clientContext":"key-2"}}]}"##
            ), now: start))
    #expect(out.last?.recording == .recording)
    #expect(core.pendingOperations == 0)
}

@Test func aFailedOperationIsRecordedWithItsResultAndConfirmsNothing() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1")))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    _ = core.receive(.running(clientContext: "key-3", operationID: nil, call: "c-1", operation: "pause", effect: .recording(.paused)), now: start)
    let outputs = core.receive(
        try notifications(
            ##"{"value":[{"changeType":"updated","resourceUrl":"/communications/calls/c-1/operations/op-3","resourceData":{"@odata.type":"#microsoft.graph.updateRecordingStatusOperation","status":"failed","clientContext":"key-3","resultInfo":{"code":500,"subcode":7117,"message":"gone wrong"}}}]}"##
        ), now: start)
    #expect(updates(outputs).isEmpty)
    #expect(
        outputs.contains {
            if case .report(.error, let message, _) = $0 {
                return message.contains("code 500, subcode 7117: gone wrong") && message.contains("pause")
            }
            return false
        })
    #expect(core.pendingOperations == 0)
}

@Test func anOperationWhoseOutcomeNeverComesIsForgottenWithARecord() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1"), operationLifetime: .seconds(30)))
    _ = core.receive(.running(clientContext: "k", operationID: nil, call: "c-1", operation: "pause", effect: nil), now: start)
    #expect(core.nextDeadline == start + .seconds(30))
    let outputs = core.tick(now: start + .seconds(30))
    #expect(core.pendingOperations == 0)
    #expect(outputs.count == 1)
}

@Test func callsBeyondTheMaximumAreRefusedWithARecord() throws {
    var core = GraphFeedCore(configuration: .init(feed: "g", agent: .bot(appID: "app-1"), maximumCalls: 1))
    _ = core.receive(try notifications(callState("c-1", "established")), now: start)
    let outputs = core.receive(try notifications(callState("c-2", "established")), now: start)
    #expect(updates(outputs).isEmpty)
    #expect(core.trackedCalls == 1)
}
