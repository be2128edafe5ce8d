#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, for state that other threads hand to the loop thread.
///
/// Not `Synchronization.Mutex`: on Linux its contended hand-over goes through a
/// priority-inheritance futex that ThreadSanitizer does not model, so every contended `withLock`
/// was reported as a data race and the TSan run was noise. ThreadSanitizer intercepts
/// `pthread_mutex_lock`, so with this lock a report means a real race.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // Why @unchecked Sendable is sound: `value` is read and written only inside `withLock`,
    // between pthread_mutex_lock and pthread_mutex_unlock on `mutex`, so no two threads ever
    // touch it at once; `Value` is Sendable, so what `withLock` hands out may cross threads; and
    // the mutex lives in its own heap allocation, so it never moves while in use.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
