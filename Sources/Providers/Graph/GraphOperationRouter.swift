import MutewardenModel
import MutewardenProviderKit

/// What an operation changes once it has completed, as the feed reports it: Graph sends no
/// notification of the bot's recording status, so the completed `updateRecordingStatus` is what
/// says it is set.
public enum GraphOperationEffect: Sendable, Hashable {
    case recording(ReportedRecording)
}

/// What the `graph` target tells the feed of a call about an operation it sent.
public enum GraphOperationMessage: Sendable, Hashable {
    /// The operation was answered `notStarted` or `running`: its outcome will come as a
    /// notification whose `clientContext` is `clientContext`.
    case running(clientContext: String, operationID: String?, call: String, operation: String, effect: GraphOperationEffect?)
    /// The operation was answered `completed`: no notification follows (MSG resources/commsoperation.md).
    case completed(call: String, effect: GraphOperationEffect)
}

/// Carries the target's ``GraphOperationMessage``s to the feed named by the action's request.
/// One per daemon, shared by its `graph` providers across reloads: it holds no setting, only the
/// feeds now running, so a target rebuilt at a reload still reaches a feed that was kept.
public final class GraphOperationRouter: Sendable {
    private struct Entry {
        var token: UInt64
        var handler: @Sendable (GraphOperationMessage) -> Void
    }
    private let feeds = Locked<(next: UInt64, entries: [String: Entry])>((1, [:]))

    public init() {}

    static let key = ResourceKey<GraphOperationRouter>(kind: "graph operation router", label: "graph", identity: "graph")

    /// The daemon's router. Claimed outside the generations (generation 0) on purpose: see above.
    public static func shared(_ context: ProviderContext) throws -> GraphOperationRouter {
        try context.shared.resource(key, owner: context.owner, generation: 0) { GraphOperationRouter() }
    }

    /// Routes messages for `feed` to `handler` until the returned closure is called. The latest
    /// registration of a name wins (a feed rebuilt at a reload takes over from its predecessor).
    public func register(feed: String, _ handler: @escaping @Sendable (GraphOperationMessage) -> Void) -> @Sendable () -> Void {
        let token = feeds.withLock { state -> UInt64 in
            let token = state.next
            state.next += 1
            state.entries[feed] = Entry(token: token, handler: handler)
            return token
        }
        return { [feeds] in
            feeds.withLock { state in
                if state.entries[feed]?.token == token { state.entries[feed] = nil }
            }
        }
    }

    /// Hands `message` to the feed; false when no feed of that name is running.
    @discardableResult
    public func send(_ message: GraphOperationMessage, to feed: String) -> Bool {
        guard let handler = feeds.withLock({ $0.entries[feed]?.handler }) else { return false }
        handler(message)
        return true
    }
}
