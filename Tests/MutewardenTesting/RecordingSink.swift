import MutewardenModel

/// A ``CallUpdateSink`` that keeps everything a feed hands it, from any thread, for the test to
/// read: updates (with the batch and the thread each came in), resyncs and feed state changes.
public final class RecordingSink: CallUpdateSink {
    /// One call of the sink, in order.
    public enum Call: Sendable, Hashable {
        case deliver([CallUpdate])
        case resync(feed: String, current: [CallUpdate])
        case feedState(feed: String, up: Bool, detail: String)
    }

    /// A call with the name of the thread it came on (``currentThreadName()``).
    public struct Recorded: Sendable, Hashable {
        public var call: Call
        public var thread: String
    }

    public struct FeedStateChange: Sendable, Hashable {
        public var feed: String
        public var up: Bool
        public var detail: String
    }

    private let recorded = Locked<[Recorded]>([])
    public let taskExecutor: (any TaskExecutor)?

    /// - Parameter taskExecutor: what the sink offers its feed to run on (``CallUpdateSink/taskExecutor``),
    ///   as the engine offers its thread.
    public init(taskExecutor: (any TaskExecutor)? = nil) {
        self.taskExecutor = taskExecutor
    }

    public func deliver(_ update: CallUpdate) { record(.deliver([update])) }

    public func deliver(contentsOf updates: [CallUpdate]) { record(.deliver(updates)) }

    public func resync(feed: String, current: [CallUpdate]) { record(.resync(feed: feed, current: current)) }

    public func feedStateChanged(feed: String, up: Bool, detail: String) {
        record(.feedState(feed: feed, up: up, detail: detail))
    }

    private func record(_ call: Call) {
        let thread = currentThreadName()
        recorded.withLock { $0.append(Recorded(call: call, thread: thread)) }
    }

    // MARK: Reading

    /// Every call so far, in order, with its thread.
    public var calls: [Recorded] { recorded.withLock { $0 } }

    /// Every update delivered so far (not those of resyncs), in order.
    public var updates: [CallUpdate] { deliveries.flatMap(\.updates) }

    /// Each delivery (one update, or one batch) with the thread it came on.
    public var deliveries: [(updates: [CallUpdate], thread: String)] {
        calls.compactMap { if case .deliver(let updates) = $0.call { (updates, $0.thread) } else { nil } }
    }

    public var resyncs: [(feed: String, current: [CallUpdate])] {
        calls.compactMap { if case .resync(let feed, let current) = $0.call { (feed, current) } else { nil } }
    }

    public var feedStates: [FeedStateChange] {
        calls.compactMap {
            if case .feedState(let feed, let up, let detail) = $0.call { FeedStateChange(feed: feed, up: up, detail: detail) } else { nil }
        }
    }

    public func removeAll() { recorded.withLock { $0.removeAll() } }

    /// Waits (bounded) until `count` updates have been delivered, and returns them all.
    @discardableResult
    public func waitForUpdates(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [CallUpdate] {
        try await eventually("\(count) update(s) delivered", timeout: timeout) {
            let updates = updates
            return updates.count >= count ? updates : nil
        }
    }
}
