#if canImport(Glibc)
import Glibc
#endif

/// State behind a pthread mutex: `Synchronization.Mutex` with a lock ThreadSanitizer can see.
///
/// On Linux, `Mutex` hands a contended lock over through a priority-inheritance futex: the kernel
/// makes the waiter the owner, with no atomic operation in user space, so ThreadSanitizer sees no
/// ordering between the two threads and reports every contended hand-over as a race (it did, for
/// the service thread's inbox). `pthread_mutex_lock` is intercepted by ThreadSanitizer, so the
/// same code here is checked for real. It is the project's one lock, for everything more than
/// one thread touches, so that every ThreadSanitizer run means something
/// (docs/architecture.md#lock-policy).
///
/// `@unchecked Sendable` is sound because `state` is only ever read or written inside `withLock`,
/// that is, between `pthread_mutex_lock` and `pthread_mutex_unlock` of `mutex`, which this object
/// owns for its whole life; `State` must itself be `Sendable` since it crosses threads.
public final class Locked<State: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    public init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
