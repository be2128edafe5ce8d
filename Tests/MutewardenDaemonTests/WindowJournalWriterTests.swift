import Foundation
import MutewardenEngine
import MutewardenModel
import MutewardenTesting
import Testing

@testable import MutewardenDaemon

/// A real window's state-file entry, as an engine journals it.
private func window(_ call: String) -> WindowState {
    let policy = PolicyDefinition(
        name: "card", feeds: ["sim"], start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
        actions: [ActionSpec(kind: .pauseRecording, target: "recorder")])
    let engine = try! Engine(
        configuration: EngineConfiguration(
            policies: [policy], targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)]))
    engine.journaling = true
    engine.ingest(
        CallUpdate(
            feed: "sim", ids: CallIdentifiers(primary: call), agentExtension: "3001", direction: .inbound,
            state: .established, attributes: ["PCI_STAGE": "CARD"]),
        at: .zero)
    return engine.takeJournal(now: .zero, wallNow: 0).first!.window!
}

@Suite struct WindowJournalWriterTests {
    private func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mw-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Records survive the writer (flushed as they come), segments rotate with snapshots and go
    /// once a snapshot covers them, and a torn last line is counted and skipped.
    @Test func recordsAreFlushedRotatedReleasedAndReadBack() throws {
        let path = try directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = WindowJournalWriter(directory: path, firstEpoch: 1) { message in Issue.record("\(message)") }
        writer.append([.opened(window("c1"))])
        let covered = writer.rotate()
        #expect(covered == 1)
        writer.append([.opened(window("c2")), .closed(WindowKey(window("c1")))])
        writer.finish()
        #expect(writer.flushes.load(ordering: .relaxed) >= 2)
        #expect(WindowJournalWriter.segments(in: path).map(\.epoch) == [1, 2])
        let read = WindowJournalWriter.read(directory: path)
        #expect(read.records.count == 3 && read.unreadable == 0 && read.nextEpoch == 3)
        #expect(EngineState().replaying(read.records).windows.map(\.call.primary) == ["c2"])

        // A later run starts after them; the snapshot covering epoch 2 lets both go.
        let next = WindowJournalWriter(directory: path, firstEpoch: read.nextEpoch) { message in Issue.record("\(message)") }
        next.append([.opened(window("c3"))])
        next.release(through: 2)
        next.finish()
        #expect(WindowJournalWriter.segments(in: path).map(\.epoch) == [3])

        // A crash in the middle of a write leaves half a line.
        let handle = try #require(FileHandle(forWritingAtPath: WindowJournalWriter.path(path, epoch: 3)))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"op":"open","window":{"pol"#.utf8))
        try handle.close()
        let torn = WindowJournalWriter.read(directory: path)
        #expect(torn.records.count == 1 && torn.unreadable == 1)
    }

    /// With a sync interval, a record is in the file (the page cache: it survives a SIGKILL) at
    /// its group commit; the first is synced at once, the next ones at most once an interval, and
    /// whatever is left at the writer's end.
    @Test func aSyncIntervalWritesAtOnceAndSyncsAtMostOnceAnInterval() async throws {
        let path = try directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = WindowJournalWriter(directory: path, firstEpoch: 1, syncInterval: .seconds(3600)) { message in
            Issue.record("\(message)")
        }
        writer.append([.opened(window("c1"))])
        #expect(await waitUntil(timeout: .seconds(10)) { writer.syncs.load(ordering: .relaxed) == 1 })
        writer.append([.opened(window("c2"))])
        #expect(await waitUntil(timeout: .seconds(10)) { WindowJournalWriter.read(directory: path).records.count == 2 })
        #expect(writer.syncs.load(ordering: .relaxed) == 1, "the second record waits for the interval")
        writer.finish()
        #expect(writer.syncs.load(ordering: .relaxed) == 2)

        let soon = WindowJournalWriter(directory: path, firstEpoch: 2, syncInterval: .milliseconds(50)) { message in
            Issue.record("\(message)")
        }
        soon.append([.opened(window("c3"))])
        #expect(await waitUntil(timeout: .seconds(10)) { soon.syncs.load(ordering: .relaxed) == 1 })
        soon.append([.opened(window("c4"))])
        // Nothing else arrives: the writer wakes by itself for the sync that is due.
        #expect(await waitUntil(timeout: .seconds(10)) { soon.syncs.load(ordering: .relaxed) == 2 })
        soon.finish()
    }
}
