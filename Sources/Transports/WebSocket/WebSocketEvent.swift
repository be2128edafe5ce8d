import MutewardenModel
import Synchronization

/// What a ``WebSocketClient`` delivers, in order: for each connection, `connected`, then its
/// messages, then `disconnected`.
public enum WebSocketEvent: Sendable, Hashable {
    /// A connection is up. Anything a protocol sends on connecting (a handshake, a subscription)
    /// goes now, with ``WebSocketClient/send(text:on:)`` naming this connection.
    case connected(WebSocketConnectionInfo)
    /// A complete text message, reassembled from its fragments and valid UTF-8.
    case text(String)
    /// A complete binary message, reassembled from its fragments.
    case binary([UInt8])
    /// The connection ended; the client reconnects by itself unless it is being closed.
    case disconnected(WebSocketConnectionID, reason: String)
}

/// Tells the connections of one client apart, so that a message meant for the connection that
/// just went down is never sent on the next one.
public struct WebSocketConnectionID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public var description: String { "#\(rawValue)" }

    static let counter = Atomic<UInt64>(0)
    static func next() -> WebSocketConnectionID {
        WebSocketConnectionID(rawValue: counter.add(1, ordering: .relaxed).newValue)
    }
}

public struct WebSocketConnectionInfo: Sendable, Hashable {
    public let id: WebSocketConnectionID
    /// The subprotocol the server chose, if it chose one.
    public let subprotocol: String?
    /// The numeric address connected to (the name is in the configuration).
    public let address: String
}

/// The events of one client, ending when the client is closed.
///
/// Iterate it from one task. Taking an event is what frees room in the receive buffer: when the
/// consumer falls behind by more than `receiveBufferLimit` bytes, the client stops reading the
/// socket until it catches up.
public struct WebSocketEvents: AsyncSequence, Sendable {
    public typealias Element = WebSocketEvent
    public typealias Failure = Never

    /// Batches, one per service pass, so that a busy connection wakes its consumer once per
    /// socket read rather than once per message.
    let stream: AsyncStream<[WebSocketEvent]>
    let flow: ReceiveFlow

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<[WebSocketEvent]>.AsyncIterator
        let flow: ReceiveFlow
        var batch: [WebSocketEvent] = []
        var index = 0

        public mutating func next() async -> WebSocketEvent? {
            await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> WebSocketEvent? {
            while index == batch.count {
                guard let next = await base.next(isolation: actor) else { return nil }
                batch = next
                index = 0
            }
            let event = batch[index]
            index += 1
            if index == batch.count {
                // Drop the batch now rather than at the next call, which may be much later.
                batch = []
                index = 0
            }
            flow.consumed(event.bufferedSize)
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), flow: flow)
    }
}

extension WebSocketEvent {
    /// What the event counts for in the receive buffer: the payload plus a fixed overhead, so
    /// that a flood of empty messages is bounded too.
    var bufferedSize: Int {
        switch self {
        case .text(let text): text.utf8.count + 64
        case .binary(let bytes): bytes.count + 64
        case .connected, .disconnected: 0
        }
    }
}

/// Bytes delivered but not yet taken by the consumer, and whether reading is paused because of
/// them. Shared by the service thread (which adds) and the consumer (which takes away).
final class ReceiveFlow: Sendable {
    let limit: Int
    private let buffered = Atomic<Int>(0)
    private let paused = Atomic<Bool>(false)
    /// Asks the service thread to read again; set once by the client.
    private let resume = Locked<(@Sendable () -> Void)?>(nil)

    init(limit: Int) { self.limit = limit }

    func onResume(_ action: @escaping @Sendable () -> Void) { resume.withLock { $0 = action } }

    /// Service thread, after delivering: true when reading should stop.
    func delivered(_ size: Int) -> Bool {
        let total = buffered.add(size, ordering: .sequentiallyConsistent).newValue
        guard total > limit else { return false }
        paused.store(true, ordering: .sequentiallyConsistent)
        return true
    }

    /// Service thread, right after pausing: if the consumer drained everything in between, it saw
    /// no pause to undo, so the service thread undoes it itself (true: read again).
    func drainedWhilePausing() -> Bool {
        buffered.load(ordering: .sequentiallyConsistent) <= limit / 2
            && paused.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
    }

    var isPaused: Bool { paused.load(ordering: .sequentiallyConsistent) }

    /// What the consumer has yet to take, as counted by `WebSocketEvent.bufferedSize`.
    var bufferedBytes: Int { buffered.load(ordering: .sequentiallyConsistent) }

    /// Consumer, for each event taken.
    func consumed(_ size: Int) {
        guard size > 0 else { return }
        let total = buffered.subtract(size, ordering: .sequentiallyConsistent).newValue
        if total <= limit / 2,
            paused.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
        {
            resume.withLock { $0 }?()
        }
    }
}
