import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel

/// The thread that action attempts run on (`ActionTarget.perform` and what it awaits), instead of
/// Swift's cooperative pool.
///
/// Why: a daemon pinned to one core has a pool one thread wide, and a pool thread runs a task
/// until it suspends. A send would wait there behind a feed task parsing and mapping a whole
/// long-poll reply (docs/performance.md). On a thread of its own, a send is one kernel wake-up
/// away from the engine thread, and the kernel, not cooperation, decides who runs.
///
/// Targets must not block (docs/architecture.md), so one thread serves them all: their work
/// between awaits is building a request and reading an answer.
///
/// One for the process, never released: a job holds its executor unowned, and an executor that
/// went away with its daemon (the tests start many) while a finishing attempt still had jobs
/// queued would leave them pointing at freed memory.
final class ActionExecutor: TaskExecutor {
    static let shared = ActionExecutor()

    private let queue = JobQueue()

    private init() {
        let queue = self.queue
        let thread = Thread {
            mw_set_thread_name("mw-actions")
            queue.run()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        queue.post(UnownedJob(job), executor: asUnownedTaskExecutor())
    }
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
