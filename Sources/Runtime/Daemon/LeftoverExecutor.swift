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

    private let queue = JobQueue()

    private init() {
        let queue = self.queue
        let thread = Thread {
            mw_set_thread_name("mw-leftovers")
            queue.run()
        }
        thread.start()
    }

    /// Runs `job` on this thread, as a job of `executor`.
    func post(_ job: UnownedJob, executor: UnownedTaskExecutor) { queue.post(job, executor: executor) }
}

/// The executor's jobs, in order. `UnownedJob` and `UnownedTaskExecutor` are Sendable handles;
/// the runtime keeps a job alive until it has run, and the executor is never released.
private final class JobQueue: Sendable {
    private struct State {
        var jobs: [(job: UnownedJob, executor: UnownedTaskExecutor)] = []
    }

    private let state = Locked(State())
    private let wakeup = DispatchSemaphore(value: 0)

    func post(_ job: UnownedJob, executor: UnownedTaskExecutor) {
        let wasEmpty = state.withLock { state in
            state.jobs.append((job, executor))
            return state.jobs.count == 1
        }
        if wasEmpty { wakeup.signal() }
    }

    func run() -> Never {
        while true {
            let jobs = state.withLock { state in
                defer { state.jobs.removeAll(keepingCapacity: true) }
                return state.jobs
            }
            for entry in jobs { entry.job.runSynchronously(on: entry.executor) }
            if jobs.isEmpty { wakeup.wait() }
        }
    }
}
