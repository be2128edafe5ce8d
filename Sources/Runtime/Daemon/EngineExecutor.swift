import MutewardenModel

/// The engine thread as a task executor: feed tasks and action attempts run their code on the
/// engine thread, between its batches.
///
/// Why: on one core, every hop between threads is a wake-up that waits for whatever else the core
/// is running. With feeds and attempts on their own threads, an event crossed four of them (the
/// HTTP or WebSocket thread, a pool thread to parse it, the engine, an action thread to build the
/// request) and then the HTTP thread again. Here it crosses two: the transport thread hands the
/// reply to the engine thread, which parses it, ingests it, builds the request and hands it back
/// (docs/performance.md).
///
/// The price: what a feed or a target does between awaits holds up the engine, so it must not
/// block (docs/architecture.md). Parsing a reply and building a request are microseconds.
///
/// Jobs hold their executor unowned, so this object is never released (``EngineLoop`` keeps it
/// alive for the life of the process). Once its loop has stopped, what is still queued and what
/// comes later runs on ``LeftoverExecutor``: a task that outlives its daemon (the tests start many)
/// finishes there instead of hanging.
final class EngineExecutor: TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var stopped = false
    }

    private let state = Locked(State())
    /// Wakes the engine thread when the first job of a batch is queued.
    private let wake: @Sendable () -> Void

    init(wake: @escaping @Sendable () -> Void) { self.wake = wake }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let (first, stopped) = state.withLock { state -> (Bool, Bool) in
            if state.stopped { return (false, true) }
            state.jobs.append(job)
            return (state.jobs.count == 1, false)
        }
        if stopped {
            LeftoverExecutor.shared.post(job, executor: asUnownedTaskExecutor())
        } else if first {
            wake()
        }
    }

    var hasJobs: Bool { state.withLock { !$0.jobs.isEmpty } }

    /// Engine thread: runs the jobs queued now, in order; jobs they queue wait for the next call.
    func runJobs() {
        let jobs = state.withLock { state in
            defer { state.jobs.removeAll(keepingCapacity: true) }
            return state.jobs
        }
        let executor = asUnownedTaskExecutor()
        for job in jobs { job.runSynchronously(on: executor) }
    }

    /// Engine thread, as its loop ends: from now on jobs run on ``LeftoverExecutor``.
    func stop() {
        let leftovers = state.withLock { state in
            state.stopped = true
            defer { state.jobs.removeAll() }
            return state.jobs
        }
        let executor = asUnownedTaskExecutor()
        for job in leftovers { LeftoverExecutor.shared.post(job, executor: executor) }
    }
}
