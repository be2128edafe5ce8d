import MutewardenModel
import Synchronization
import Testing

@testable import MutewardenDaemon

/// The inbox's backpressure: a feed that asks for capacity is held while the engine is more than
/// `backlogHigh` updates behind, and let go once it is back under `backlogLow`.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
}

@Suite struct EngineInboxTests {
    private func updates(_ count: Int) -> [CallUpdate] {
        (0..<count).map { CallUpdate(feed: "f", ids: CallIdentifiers(primary: "c\($0)"), state: .established) }
    }

    @Test func aFeedWaitsWhileTheEngineIsBehindAndGoesOnOnceItCatchesUp() async throws {
        let inbox = EngineInbox()
        inbox.post(.updates(updates(EngineInbox.backlogHigh)))
        // At the high mark, not over it: no wait.
        await inbox.awaitCapacity()
        inbox.post(.update(updates(1)[0]))
        #expect(inbox.backlogCount == EngineInbox.backlogHigh + 1)

        let released = Flag()
        let feed = Task {
            await inbox.awaitCapacity()
            released.set()
        }
        // The engine works through the backlog in steps; the feed stays held until the low mark.
        // Being held shows only as nothing happening, so each check gives the feed a fixed while
        // (a sleep, not a wait for a condition) in which it must not go on.
        try await Task.sleep(for: .milliseconds(100))
        #expect(!released.isSet)
        var taken: [EngineInput] = []
        inbox.take(into: &taken)
        inbox.ingested(EngineInbox.backlogHigh + 1 - EngineInbox.backlogLow - 1)
        try await Task.sleep(for: .milliseconds(20))
        #expect(!released.isSet)
        inbox.ingested(1)
        await feed.value
        #expect(released.isSet)
        #expect(inbox.backlogCount == EngineInbox.backlogLow)
    }

    @Test func aCancelledFeedIsNotHeld() async {
        let inbox = EngineInbox()
        inbox.post(.updates(updates(EngineInbox.backlogHigh + 1)))
        let feed = Task { await inbox.awaitCapacity() }
        feed.cancel()
        await feed.value
        #expect(inbox.backlogCount == EngineInbox.backlogHigh + 1)
    }
}
