import Dispatch
import Foundation
import MutewardenModel
import Synchronization
import Testing

/// Counts wake-ups.
private final class WakeCounter: Sendable {
    private let value = Atomic<Int>(0)
    var count: Int { value.load(ordering: .sequentiallyConsistent) }
    func wake() { value.add(1, ordering: .sequentiallyConsistent) }
}

/// Runs `body` on a thread of its own and returns its result, without blocking a thread of the
/// cooperative pool while it runs.
private func onThread<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

@Suite struct MailboxTests {
    @Test(arguments: [MailboxWaking.afterUnlocking, .underLock])
    func onlyAPostIntoAnEmptyMailboxWakes(waking: MailboxWaking) {
        let wakes = WakeCounter()
        let mailbox = Mailbox<Int>(waking: waking, wake: wakes.wake)
        #expect(mailbox.isEmpty)
        #expect(mailbox.post(1) == .first)
        #expect(mailbox.post(2) == .queued)
        #expect(mailbox.post(3) == .queued)
        #expect(wakes.count == 1)
        #expect(!mailbox.isEmpty)
        #expect(mailbox.take() == [1, 2, 3])
        #expect(mailbox.isEmpty && mailbox.take() == [])
        #expect(mailbox.post(4) == .first)
        #expect(wakes.count == 2)
        mailbox.nudge()
        #expect(wakes.count == 3)
    }

    @Test func takeIntoAppendsInOrder() {
        let mailbox = Mailbox<Int>(waking: .afterUnlocking)
        var buffer: [Int] = []
        buffer.reserveCapacity(16)
        for value in 0..<5 { mailbox.post(value) }
        mailbox.take(into: &buffer)
        #expect(buffer == [0, 1, 2, 3, 4])
        // A buffer that is not empty is appended to, never swapped away.
        mailbox.post(5)
        mailbox.take(into: &buffer)
        #expect(buffer == [0, 1, 2, 3, 4, 5])
        #expect(mailbox.isEmpty)
        buffer.removeAll(keepingCapacity: true)
        mailbox.take(into: &buffer)
        #expect(buffer.isEmpty)
        // The consumer's old storage went to the mailbox: posting into it still works.
        #expect(mailbox.post(6) == .first)
        #expect(mailbox.take() == [6])
    }

    @Test func closeRefusesPostsReturnsLeftoversAndStillNudges() {
        let wakes = WakeCounter()
        let mailbox = Mailbox<String>(waking: .underLock, wake: wakes.wake)
        mailbox.post("a")
        mailbox.post("b")
        #expect(mailbox.close() == ["a", "b"])
        #expect(mailbox.post("c") == .refused)
        #expect(!MailboxPost.refused.accepted && MailboxPost.first.accepted && MailboxPost.queued.accepted)
        #expect(mailbox.isEmpty && mailbox.close() == [])
        #expect(wakes.count == 1)
        mailbox.nudge()
        #expect(wakes.count == 2)
    }

    @Test(arguments: [MailboxWaking.afterUnlocking, .underLock])
    func releaseStopsEveryWakeUp(waking: MailboxWaking) {
        let wakes = WakeCounter()
        let mailbox = Mailbox<Int>(waking: waking, wake: wakes.wake)
        mailbox.post(1)
        #expect(mailbox.release() == [1])
        #expect(mailbox.post(2) == .refused)
        mailbox.nudge()
        mailbox.attachWake(wakes.wake)
        mailbox.nudge()
        #expect(wakes.count == 1)
    }

    @Test func aWakeUpAttachedLaterWakesLaterPostsOnly() {
        let wakes = WakeCounter()
        let mailbox = Mailbox<Int>(waking: .underLock)
        #expect(mailbox.post(1) == .first)
        mailbox.attachWake(wakes.wake)
        #expect(mailbox.post(2) == .queued)
        #expect(wakes.count == 0)
        #expect(mailbox.take() == [1, 2])
        #expect(mailbox.post(3) == .first)
        #expect(wakes.count == 1)
    }

    @Test func postsFromTheConsumersThreadWakeNothing() async {
        let wakes = WakeCounter()
        let mailbox = Mailbox<Int>(waking: .afterUnlocking, wake: wakes.wake)
        let finish = DispatchSemaphore(value: 0)
        let fromConsumer = await withCheckedContinuation { (continuation: CheckedContinuation<(MailboxPost, Int), Never>) in
            Thread {
                mailbox.bindConsumerToCurrentThread()
                let outcome = mailbox.post(1)
                mailbox.nudge()
                continuation.resume(returning: (outcome, wakes.count))
                // Alive until the other thread has posted: a thread that has ended may hand its
                // pthread id to the next one.
                _ = finish.wait(timeout: .now() + .seconds(10))
            }.start()
        }
        defer { finish.signal() }
        // Still the first post, which is what a consumer that posts to itself learns from it.
        #expect(fromConsumer.0 == .first)
        #expect(fromConsumer.1 == 0)
        #expect(mailbox.take() == [1])
        // Any other thread wakes it.
        #expect(mailbox.post(2) == .first)
        #expect(wakes.count == 1)
    }

    /// Producers on threads of their own against a consumer that sleeps until woken: every
    /// element arrives once, each producer's in the order it posted them, and there is exactly
    /// one wake-up per post that found the mailbox empty. Bounded: a fixed number of posts, and
    /// every wait (the consumer's, and for the producers to finish) gives up at a deadline.
    @Test(.timeLimit(.minutes(1)), arguments: [MailboxWaking.afterUnlocking, .underLock])
    func manyProducersOneConsumer(waking: MailboxWaking) async {
        struct Item: Sendable {
            var producer: Int
            var sequence: Int
        }
        struct Outcome: Sendable {
            var received: [Item] = []
            var takes = 0
            var producersFinished = false
            var firsts = 0
            var wakes = 0
        }
        let producers = 4
        let perProducer = 5_000
        let signal = DispatchSemaphore(value: 0)
        let wakes = WakeCounter()
        let mailbox = Mailbox<Item>(waking: waking) {
            wakes.wake()
            signal.signal()
        }
        // Everything that blocks runs on a thread of its own, never on the cooperative pool.
        let outcome = await onThread { () -> Outcome in
            let firsts = Atomic<Int>(0)
            let finished = DispatchGroup()
            for producer in 0..<producers {
                finished.enter()
                Thread {
                    for sequence in 0..<perProducer {
                        if mailbox.post(Item(producer: producer, sequence: sequence)) == .first {
                            firsts.add(1, ordering: .relaxed)
                        }
                    }
                    finished.leave()
                }.start()
            }
            var outcome = Outcome()
            var buffer: [Item] = []
            let deadline = DispatchTime.now() + .seconds(30)
            while outcome.received.count < producers * perProducer, DispatchTime.now() < deadline {
                mailbox.take(into: &buffer)
                if buffer.isEmpty {
                    _ = signal.wait(timeout: .now() + .milliseconds(100))
                    continue
                }
                outcome.takes += 1
                outcome.received.append(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
            // A producer counts its first post after the consumer may already have taken it.
            outcome.producersFinished = finished.wait(timeout: deadline) == .success
            outcome.firsts = firsts.load(ordering: .relaxed)
            outcome.wakes = wakes.count
            return outcome
        }
        #expect(outcome.producersFinished)
        #expect(outcome.received.count == producers * perProducer)
        for producer in 0..<producers {
            let sequences = outcome.received.filter { $0.producer == producer }.map(\.sequence)
            #expect(sequences == Array(0..<perProducer))
        }
        #expect(outcome.wakes == outcome.firsts)
        // Every post into an empty mailbox but the very first follows a take that emptied it.
        #expect(outcome.firsts <= outcome.takes + 1)
        #expect(mailbox.isEmpty)
    }
}
