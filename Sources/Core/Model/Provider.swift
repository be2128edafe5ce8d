/// Where a feed delivers what it sees. Implementations are thread-safe and never block for long:
/// a feed may call them from its own I/O thread.
public protocol CallUpdateSink: Sendable {
    func deliver(_ update: CallUpdate)
    /// The feed's connection went up or down; `detail` is an operator-readable reason.
    func feedStateChanged(feed: String, up: Bool, detail: String)
    /// After a (re)connection: the platform's complete list of the feed's current calls, so that
    /// calls that ended unseen leave and captures under way are protected (see `Engine.resync`).
    func resync(feed: String, current: [CallUpdate])
    /// The updates of one answer or frame, in order. A sink that can take them in one go (the
    /// engine's: one lock, one wake-up) says so; the default delivers them one by one.
    func deliver(contentsOf updates: [CallUpdate])
    /// Returns once the sink has room for more. A feed that can hold its platform back (stop
    /// reading, delay the next poll) awaits it between batches, so that an overload queues at
    /// the platform and not in this process's memory. The default never waits.
    func awaitCapacity() async
    /// Where a feed's own tasks should run (a WebSocket reader, say): the thread that takes the
    /// updates, so that handing them over is a function call rather than a wake-up. nil, the
    /// default: anywhere.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension CallUpdateSink {
    public func deliver(contentsOf updates: [CallUpdate]) {
        for update in updates { deliver(update) }
    }

    public func awaitCapacity() async {}

    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// An event source: turns one platform's real-time feed into normalized call updates.
public protocol CallFeed: Sendable {
    var name: String { get }
    /// Runs until the task is cancelled. Reconnects by itself; throws only on a fatal error.
    func run(delivering sink: any CallUpdateSink) async throws
}

/// Where actions go: turns a normalized action into one platform's API call.
public protocol ActionTarget: Sendable {
    var descriptor: TargetDescriptor { get }
    /// Performs one attempt. Returns rather than throws: every failure is classified.
    func perform(_ request: ActionRequest) async -> ActionAttemptResult
}
