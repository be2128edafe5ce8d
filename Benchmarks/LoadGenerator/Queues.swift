import CLibWebSockets
import Synchronization

/// A run of Bayeux messages rendered by the generator in one tick, comma-separated so that they
/// can be spliced into a reply array, with the capture-window edges among them.
struct EventChunk: Sendable {
    var bytes: [UInt8]
    var count: Int
    var edges: [WindowEdge]
    var generatedAt: Int64
}

/// Wakes the lws service thread from another thread.
///
/// `@unchecked Sendable` is sound here: the only call made through the pointer is
/// `lws_cancel_service`, which libwebsockets documents as the one API safe to call from any
/// thread ("may be called from another thread", lws-service.h), and the context is destroyed only
/// after every thread holding a waker has stopped (LoadRun joins the generator first).
struct ServiceWaker: @unchecked Sendable {
    let context: OpaquePointer
    func wake() { lws_cancel_service(context) }
}

/// Generator → service thread: event chunks, in order.
typealias Outbox = ChunkOutbox<EventChunk>

/// The generator's chunks to the service thread, whatever the platform renders: GWS's Bayeux
/// messages, Voicenter's socket.io frames.
final class ChunkOutbox<Chunk: Sendable>: Sendable {
    private let chunks = Mutex<[Chunk]>([])
    private let waker = Mutex<ServiceWaker?>(nil)

    func attach(_ waker: ServiceWaker) { self.waker.withLock { $0 = waker } }

    /// Called by the service thread before it destroys the context: the wake-up happens under the
    /// same lock, so none can reach a freed context.
    func detach() { waker.withLock { $0 = nil } }

    func push(_ chunk: Chunk) {
        let wasEmpty = chunks.withLock { chunks in
            chunks.append(chunk)
            return chunks.count == 1
        }
        // One wake-up per burst: the service thread drains everything queued when it wakes.
        if wasEmpty { wake() }
    }

    func wake() { waker.withLock { $0?.wake() } }

    func drain() -> [Chunk] {
        chunks.withLock { chunks in
            defer { chunks = [] }; return chunks
        }
    }
}

/// Service thread → generator: operations the REST API accepted, for GWS's confirming events.
final class ConfirmationQueue: Sendable {
    struct Confirmation: Sendable {
        var callID: String
        var operation: Operation
    }

    private let items = Mutex<[Confirmation]>([])

    func post(_ item: Confirmation) { items.withLock { $0.append(item) } }
    func drain() -> [Confirmation] {
        items.withLock { items in
            defer { items = [] }; return items
        }
    }
}
