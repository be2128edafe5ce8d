import Foundation
import MutewardenModel
import Testing

@testable import MutewardenEngine

private let card = ["PCI_STAGE": "CARD"]

@Test func aWindowsOpeningIsJournaledAfterItsSendsAndItsClosingToo() throws {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.engine.journaling = true
    harness.autoAnswer = { _ in nil }
    harness.event("c1", attributes: card)
    #expect(harness.sent.count == 1)
    let opened = harness.engine.takeJournal(now: harness.now, wallNow: harness.wallNow)
    #expect(opened.map(\.op) == [.open])
    let window = try #require(opened.first?.window)
    #expect(window.call.primary == "c1" && window.policy == "card")
    #expect(!harness.engine.hasJournal)
    harness.event("c1", attributes: [:])
    let closed = harness.engine.takeJournal(now: harness.now, wallNow: harness.wallNow)
    #expect(closed == [.closed(WindowKey(window))])
}

@Test func anEngineNobodyJournalsKeepsNothing() {
    let harness = EngineHarness(policies: [Policies.pause()])
    harness.event("c1", attributes: card)
    #expect(!harness.engine.hasJournal)
}

@Test func theJournalReplayedOverASnapshotRestoresAWindowOpenedAfterIt() {
    let before = EngineHarness(policies: [Policies.pause()])
    before.engine.journaling = true
    let snapshot = before.engine.snapshot(now: before.now, wallNow: before.wallNow)  // empty
    before.event("c1", attributes: card)
    before.event("c2", attributes: card)
    before.event("c2", attributes: [:])
    let records = before.engine.takeJournal(now: before.now, wallNow: before.wallNow)
    let merged = snapshot.replaying(records)
    #expect(merged.windows.map(\.call.primary) == ["c1"])
    // Replaying again, or over a snapshot that already has the window, changes nothing.
    #expect(merged.replaying(records) == merged)
    let after = before.restarted(after: .seconds(1), policies: [Policies.pause()])
    _ = after
    let restored = EngineHarness(policies: [Policies.pause()])
    restored.engine.restore(merged, now: restored.now, wallNow: restored.wallNow)
    restored.drain()
    #expect(restored.engine.statistics.openWindows == 1)
}

@Test func aJournalLineIsTheDocumentJSONEncoderWritesAndReadsBackTheSame() throws {
    let harness = EngineHarness(policies: [
        Policies.pause(
            scope: .agentExtension,
            actions: [
                ActionSpec(kind: .pauseRecording, target: "recorder"),
                ActionSpec(kind: .pauseRecording, target: "recorder", addressing: .agentExtension),
            ])
    ])
    harness.engine.journaling = true
    harness.autoAnswer = { _ in nil }
    harness.event("c1", ext: "7001", attributes: card)
    harness.event("c1", ext: "7001", attributes: [:])
    let records = harness.engine.takeJournal(now: harness.now, wallNow: harness.wallNow)
    #expect(records.map(\.op).contains(.open) && records.map(\.op).contains(.close))
    for record in records {
        var line: [UInt8] = []
        record.appendJSON(to: &line)
        #expect(try JSONDecoder().decode(WindowJournalRecord.self, from: Data(line)) == record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let reference = try JSONSerialization.jsonObject(with: encoder.encode(record)) as? NSDictionary
        #expect(try JSONSerialization.jsonObject(with: Data(line)) as? NSDictionary == reference)
    }
}
