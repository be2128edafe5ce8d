import MutewardenModel

/// The engine's timers, on the shared ``MinHeap``. Cancellation is lazy: whoever handles a fired
/// timer checks that what it refers to still wants it, which keeps the hot path free of heap
/// surgery.
struct TimerQueue<Payload> {
    /// Ordered by time, then by scheduling, so that equal deadlines fire deterministically.
    private struct Entry: Comparable {
        var due: MonotonicInstant
        var order: UInt64
        var payload: Payload

        static func < (a: Entry, b: Entry) -> Bool { a.due != b.due ? a.due < b.due : a.order < b.order }
        /// `order` is unique, so this is identity, consistent with `<`; the payload plays no part.
        static func == (a: Entry, b: Entry) -> Bool { a.due == b.due && a.order == b.order }
    }

    private var heap = MinHeap<Entry>()
    private var nextOrder: UInt64 = 0

    var count: Int { heap.count }
    var nextDue: MonotonicInstant? { heap.min?.due }

    mutating func schedule(_ payload: Payload, at due: MonotonicInstant) {
        heap.insert(Entry(due: due, order: nextOrder, payload: payload))
        nextOrder &+= 1
    }

    /// Removes and returns the earliest timer due at or before `now`.
    mutating func popDue(at now: MonotonicInstant) -> Payload? {
        heap.popMin(if: { $0.due <= now })?.payload
    }

    /// Keeps only the timers `isLive` wants. Lazy cancellation leaves one entry per closed window
    /// until its cap, which is minutes away: without this the heap grows with the rate of windows
    /// times `max_duration`.
    mutating func prune(keeping isLive: (Payload) -> Bool) {
        heap.removeAll { !isLive($0.payload) }
    }
}
