/// A binary min-heap in an array: the project's one priority queue (the engine's timers, the HTTP
/// loop's deadlines).
///
/// Elements order themselves (`Comparable`) rather than through a stored closure, so that the
/// comparison is inlined into the user's loop. Everything is `@inlinable`: the engine's hot path
/// schedules and fires timers through it, and a generic type from another module is otherwise
/// called unspecialized, through witness tables. It allocates only when the array grows: a heap
/// whose size has levelled off schedules and pops without touching the allocator.
///
/// Equal elements come out in no particular order; a user that needs a stable order makes it part
/// of the comparison (``TimerQueue`` adds a sequence number).
public struct MinHeap<Element: Comparable> {
    @usableFromInline
    var storage: [Element] = []

    @inlinable
    public init() {}

    @inlinable
    public var count: Int { storage.count }

    @inlinable
    public var isEmpty: Bool { storage.isEmpty }

    /// The least element, without removing it.
    @inlinable
    public var min: Element? { storage.first }

    /// The elements in heap order, which is no useful order: for sums and counts.
    @inlinable
    public var unordered: [Element] { storage }

    @inlinable
    public mutating func insert(_ element: Element) {
        storage.append(element)
        siftUp(storage.count - 1)
    }

    /// Removes and returns the least element.
    @inlinable
    public mutating func popMin() -> Element? {
        guard !storage.isEmpty else { return nil }
        let last = storage.removeLast()
        guard !storage.isEmpty else { return last }
        let first = storage[0]
        storage[0] = last
        siftDown(0)
        return first
    }

    /// Removes and returns the least element if `isDue` says so: the "what is due by now" loop of
    /// a timer wheel, one comparison per call.
    @inlinable
    public mutating func popMin(if isDue: (Element) throws -> Bool) rethrows -> Element? {
        guard let first = storage.first, try isDue(first) else { return nil }
        return popMin()
    }

    /// Removes every element `shouldBeRemoved` picks and restores the heap in linear time. The
    /// array keeps its capacity: users prune dead entries while they are running, and the room
    /// is wanted again by the next burst.
    @inlinable
    public mutating func removeAll(where shouldBeRemoved: (Element) throws -> Bool) rethrows {
        try storage.removeAll(where: shouldBeRemoved)
        var index = storage.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    @inlinable
    mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[child] < storage[parent] else { return }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    @inlinable
    mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            guard left < storage.count else { return }
            var smallest = left
            let right = left + 1
            if right < storage.count, storage[right] < storage[left] { smallest = right }
            guard storage[smallest] < storage[parent] else { return }
            storage.swapAt(smallest, parent)
            parent = smallest
        }
    }
}

extension MinHeap: Sendable where Element: Sendable {}
