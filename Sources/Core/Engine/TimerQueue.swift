import MutewardenModel

/// A min-heap of timers. Cancellation is lazy: whoever handles a fired timer checks that what it
/// refers to still wants it, which keeps the hot path free of heap surgery.
struct TimerQueue<Payload> {
    private struct Entry {
        var due: MonotonicInstant
        var order: UInt64
        var payload: Payload
    }

    private var heap: [Entry] = []
    private var nextOrder: UInt64 = 0

    var count: Int { heap.count }
    var nextDue: MonotonicInstant? { heap.first?.due }

    mutating func schedule(_ payload: Payload, at due: MonotonicInstant) {
        heap.append(Entry(due: due, order: nextOrder, payload: payload))
        nextOrder &+= 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    mutating func popDue(at now: MonotonicInstant) -> Payload? {
        guard let first = heap.first, first.due <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first.payload
    }

    /// Keeps only the timers `isLive` wants and rebuilds the heap. Lazy cancellation leaves one
    /// entry per closed window until its cap, which is minutes away: without this the heap grows
    /// with the rate of windows times `max_duration`.
    mutating func prune(keeping isLive: (Payload) -> Bool) {
        heap.removeAll { !isLive($0.payload) }
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    /// Timers due in order of time, then of scheduling, so equal deadlines fire deterministically.
    private func before(_ a: Entry, _ b: Entry) -> Bool {
        a.due != b.due ? a.due < b.due : a.order < b.order
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            let right = left + 1
            if right < heap.count, before(heap[right], heap[left]) { smallest = right }
            guard before(heap[smallest], heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
