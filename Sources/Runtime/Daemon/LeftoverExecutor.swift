import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel

/// A thread for the jobs of tasks whose ``EngineExecutor`` has stopped: an action attempt still
/// waiting for its answer when the daemon stopped, a feed that has not yet seen its cancellation.
/// They finish here instead of waiting forever for a loop that is gone.
///
/// One for the process, started on first use and never released: a job holds its executor
/// unowned.
final class LeftoverExecutor: Sendable {
    static let shared = LeftoverExecutor()

    /// `UnownedJob` and `UnownedTaskExecutor` are Sendable handles: the runtime keeps a job alive
    /// until it has run, and the executor is never released.
    private struct Entry: Sendable {
        let job: UnownedJob
        let executor: UnownedTaskExecutor
    }

    /// Never closed. The wake-up only signals the thread's semaphore.
    private let queue: Mailbox<Entry>

    private init() {
        let wakeup = DispatchSemaphore(value: 0)
        let queue = Mailbox<Entry>(waking: .afterUnlocking) { wakeup.signal() }
        self.queue = queue
        let thread = Thread {
            mw_set_thread_name("mw-leftovers")
            var batch: [Entry] = []
            while true {
                queue.take(into: &batch)
                // One signal per post into an empty queue: a wait after an empty take either
                // returns for a post made since, or sleeps until the next one.
                if batch.isEmpty {
                    wakeup.wait()
                    continue
                }
                for entry in batch { entry.job.runSynchronously(on: entry.executor) }
                batch.removeAll(keepingCapacity: true)
            }
        }
        thread.start()
    }

    /// Runs `job` on this thread, as a job of `executor`.
    func post(_ job: UnownedJob, executor: UnownedTaskExecutor) { queue.post(Entry(job: job, executor: executor)) }
}
