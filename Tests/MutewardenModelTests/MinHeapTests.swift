import MutewardenModel
import Testing

/// An element that sorts by `key` only, tagged so that the order of equal keys can be seen.
private struct Tagged: Comparable {
    var key: Int
    var tag: Int
    static func < (a: Tagged, b: Tagged) -> Bool { a.key < b.key }
    static func == (a: Tagged, b: Tagged) -> Bool { a.key == b.key }
}

@Suite struct MinHeapTests {
    @Test func popsInAscendingOrder() {
        var random = SplitMix64(seed: 17)
        let values = (0..<2_000).map { _ in Int(random.next() % 500) }  // duplicates on purpose
        var heap = MinHeap<Int>()
        for value in values { heap.insert(value) }
        #expect(heap.count == values.count)
        #expect(heap.min == values.min())
        var popped: [Int] = []
        while let value = heap.popMin() { popped.append(value) }
        #expect(popped == values.sorted())
        #expect(heap.isEmpty && heap.min == nil && heap.popMin() == nil)
    }

    @Test func popsOnlyWhatIsDue() {
        var heap = MinHeap<Int>()
        for value in [50, 10, 40, 20, 30] { heap.insert(value) }
        #expect(heap.popMin(if: { $0 <= 5 }) == nil)
        var due: [Int] = []
        while let value = heap.popMin(if: { $0 <= 30 }) { due.append(value) }
        #expect(due == [10, 20, 30])
        #expect(heap.count == 2 && heap.min == 40)
    }

    @Test func interleavedInsertsAndPopsStayOrdered() {
        var random = SplitMix64(seed: 3)
        var heap = MinHeap<Int>()
        var model: [Int] = []
        for _ in 0..<5_000 {
            if random.next() % 3 == 0, !model.isEmpty {
                let least = model.min()!
                model.remove(at: model.firstIndex(of: least)!)
                #expect(heap.popMin() == least)
            } else {
                let value = Int(random.next() % 1_000)
                heap.insert(value)
                model.append(value)
            }
        }
        #expect(heap.count == model.count)
    }

    @Test func removeAllKeepsTheRestInOrder() {
        var heap = MinHeap<Int>()
        for value in (0..<1_000).reversed() { heap.insert(value) }
        heap.removeAll { $0 % 3 != 0 }
        #expect(heap.count == 334)
        #expect(Set(heap.unordered) == Set(stride(from: 0, to: 1_000, by: 3)))
        var popped: [Int] = []
        while let value = heap.popMin() { popped.append(value) }
        #expect(popped == Array(stride(from: 0, to: 1_000, by: 3)))
        heap.removeAll { _ in true }
        #expect(heap.isEmpty)
    }

    /// Equal keys come out in no promised order: a user that needs one makes it part of `<`.
    @Test func aTieBreakerInTheComparisonGivesAStableOrder() {
        struct Stable: Comparable {
            var item: Tagged
            var sequence: Int
            static func < (a: Stable, b: Stable) -> Bool {
                a.item != b.item ? a.item < b.item : a.sequence < b.sequence
            }
        }
        var heap = MinHeap<Stable>()
        for (sequence, key) in [2, 1, 2, 1, 2, 1].enumerated() {
            heap.insert(Stable(item: Tagged(key: key, tag: sequence), sequence: sequence))
        }
        var tags: [Int] = []
        while let next = heap.popMin() { tags.append(next.item.tag) }
        #expect(tags == [1, 3, 5, 0, 2, 4])
    }
}
