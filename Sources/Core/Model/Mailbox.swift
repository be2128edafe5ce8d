import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What became of a ``Mailbox/post(_:)``.
public enum MailboxPost: Sendable, Hashable {
    /// The mailbox is closed: nothing will ever read the element, so the caller settles it.
    case refused
    /// Queued behind others: the wake-up their first post issued is still to be answered.
    case queued
    /// Queued into an empty mailbox: the post that issued the wake-up (unless it was made on the
    /// consumer's own thread, or no wake-up is attached yet).
    case first

    public var accepted: Bool { self != .refused }
}

/// Where a ``Mailbox`` calls its wake-up.
public enum MailboxWaking: Sendable, Hashable {
    /// After the lock is released. For wake-ups that take a lock of their own (another
    /// mailbox's ``Mailbox/nudge()``) or that only signal (a semaphore): locks stay unnested and
    /// short. A wake-up that has read its closure may still run after ``Mailbox/release()``
    /// returns, so its target must outlive the mailbox.
    case afterUnlocking
    /// Under the mailbox's lock. For a wake-up into a C handle that the consumer frees
    /// (`curl_multi_wakeup`, `lws_cancel_service`): ``Mailbox/release()`` takes the same lock, so once
    /// it returns no wake-up is under way and the handle can go. The call must neither block
    /// nor call back into Swift; both of those only write to their loop's wake-up pipe.
    case underLock
}

/// The project's one queue between threads: any number of producers post, one consumer takes
/// everything queued in one go, between its waits (docs/architecture.md#lock-policy).
///
/// **One wake-up per burst.** Only a post into an empty mailbox wakes the consumer. The consumer
/// takes all that is queued when it wakes, so the posts that find elements already queued ride on
/// that wake-up; a burst of events costs one wake-up, which on a busy core is the expensive part.
///
/// **No wake-up from the consumer's own thread** (``bindConsumerToCurrentThread()``): the consumer
/// looks at its mailbox before it waits again, so a wake-up would only cut its next wait short.
///
/// **Closing.** ``close()`` refuses every later post and hands back what was still queued, so that
/// whoever waits on those elements can be answered: a post that is refused is one the caller
/// settles itself. ``release()`` also stops the wake-ups, for a consumer about to free what its
/// wake-up reaches.
///
/// **Where the wake-up runs** is each user's choice (``MailboxWaking``): after the lock is
/// released, or under it, when the wake-up reaches a C handle that the consumer frees.
public final class Mailbox<Element: Sendable>: Sendable {
    private struct State {
        var elements: [Element] = []
        var closed = false
        var released = false
        var wake: (@Sendable () -> Void)?
    }

    private let state: Locked<State>
    private let waking: MailboxWaking
    /// The consumer's pthread, once bound (0 before): posts from it wake nothing.
    private let consumerThread = Atomic<UInt>(0)

    /// - Parameters:
    ///   - waking: where `wake` runs; see ``MailboxWaking``.
    ///   - wake: ends the consumer's wait; nil until ``attachWake(_:)`` (the handle it reaches
    ///     may not exist yet).
    public init(waking: MailboxWaking, wake: (@Sendable () -> Void)? = nil) {
        self.waking = waking
        state = Locked(State(wake: wake))
    }

    /// Sets the wake-up once its target exists. Posts made before had none, so the consumer looks
    /// at its mailbox once after attaching. Ignored after ``release()``.
    public func attachWake(_ wake: @escaping @Sendable () -> Void) {
        state.withLock { state in
            if !state.released { state.wake = wake }
        }
    }

    /// Makes the calling thread the consumer's: its posts and nudges wake nothing. For a thread
    /// that consumes for as long as the mailbox is in use: the id of a thread that has ended may
    /// be given to the next one, whose posts would then wake nothing either.
    public func bindConsumerToCurrentThread() {
        consumerThread.store(UInt(pthread_self()), ordering: .relaxed)
    }

    /// Stored by the thread it names, so another thread's stale read is never its own id.
    private var onConsumerThread: Bool { consumerThread.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Queues `element`, and wakes the consumer if the mailbox was empty.
    @discardableResult
    public func post(_ element: Element) -> MailboxPost {
        let mayWake = !onConsumerThread
        switch waking {
        case .underLock:
            return state.withLock { state in
                guard !state.closed else { return .refused }
                state.elements.append(element)
                guard state.elements.count == 1 else { return .queued }
                if mayWake { state.wake?() }
                return .first
            }
        case .afterUnlocking:
            let (outcome, wake) = state.withLock { state -> (MailboxPost, (@Sendable () -> Void)?) in
                guard !state.closed else { return (.refused, nil) }
                state.elements.append(element)
                guard state.elements.count == 1 else { return (.queued, nil) }
                return (.first, mayWake ? state.wake : nil)
            }
            wake?()
            return outcome
        }
    }

    /// Wakes the consumer without posting: to make it stop, or look at its deadlines again.
    /// Nothing from the consumer's own thread, nothing after ``release()``; still works after
    /// ``close()``, since a closed mailbox's consumer may have other work to be woken for.
    public func nudge() {
        guard !onConsumerThread else { return }
        switch waking {
        case .underLock: state.withLock { $0.wake?() }
        case .afterUnlocking: state.withLock { $0.wake }?()
        }
    }

    /// True while elements are queued. A post from the consumer's own thread wakes nothing, so a
    /// consumer checks this before it waits.
    public var isEmpty: Bool { state.withLock { $0.elements.isEmpty } }

    /// Moves everything queued to the end of `buffer`. An empty buffer is swapped in whole, so
    /// the mailbox goes on with its storage: a consumer that empties its buffer keeping the
    /// capacity, and takes into it again, allocates nothing once the sizes have levelled off.
    public func take(into buffer: inout [Element]) {
        state.withLock { state in
            if buffer.isEmpty {
                swap(&state.elements, &buffer)
            } else if !state.elements.isEmpty {
                buffer.append(contentsOf: state.elements)
                state.elements.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Everything queued, in order of posting.
    public func take() -> [Element] {
        var taken: [Element] = []
        take(into: &taken)
        return taken
    }

    /// Refuses every later post and returns what was still queued, for the caller to settle.
    @discardableResult
    public func close() -> [Element] {
        state.withLock { state in
            state.closed = true
            var leftovers: [Element] = []
            swap(&leftovers, &state.elements)
            return leftovers
        }
    }

    /// Closes and stops every wake-up. With ``MailboxWaking/underLock``, none is under way once this
    /// returns: the consumer calls it just before it frees what its wake-up reaches.
    @discardableResult
    public func release() -> [Element] {
        state.withLock { state in
            state.closed = true
            state.released = true
            state.wake = nil
            var leftovers: [Element] = []
            swap(&leftovers, &state.elements)
            return leftovers
        }
    }
}
