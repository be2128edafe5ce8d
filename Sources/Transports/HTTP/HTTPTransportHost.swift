import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a hosted transport's loop (``HTTPTransport/hosted(options:)``) on the thread that claims
/// it, between that thread's own work:
///
/// ```swift
/// host.claim()
/// while running {
///     host.step()                       // requests out, answers in
///     // ... the thread's own work; requests it makes leave at the next step ...
///     if nothing queued { host.wait(atMostMilliseconds: untilMyNextDeadline) }
/// }
/// host.end()
/// ```
///
/// Why: with a thread of its own, every request and every answer is a hand-off between two
/// threads, a wake-up that on a busy core waits behind whatever else runs there. The daemon's
/// engine thread hosts its transport, so an answer, the events in it and the requests they cause
/// are one thread's work (docs/performance.md). The price is the same as for anything on that
/// thread: libcurl's work (TLS handshakes included) holds up the engine while it runs.
///
/// The wait is `curl_multi_poll`, so ``wake()`` (from any thread) is also how other threads wake
/// the host for work of its own.
public final class HTTPTransportHost: Sendable {
    private let loop: HostedLoop
    private var mailbox: LoopMailbox { loop.mailbox }

    init(loop: HostedLoop) { self.loop = loop }

    /// Makes the calling thread the loop's; once, before any other call but ``wake()``. Returns
    /// false if another thread claimed it first or the host has ended.
    @discardableResult
    public func claim() -> Bool { loop.claim() }

    /// Host thread: runs the queued commands (requests to start, clients to close), then whatever
    /// libcurl can do without waiting, then deadlines.
    public func step() { loop.step() }

    /// True while commands wait for the next ``step()``. A post from the host's own thread wakes
    /// nothing, so check this before ``wait(atMostMilliseconds:)``.
    public var hasCommands: Bool { !mailbox.isEmpty }

    /// Host thread: waits for socket activity, a ``wake()``, a transfer's deadline, or `limit`
    /// milliseconds (nil: a second at most), whichever comes first.
    public func wait(atMostMilliseconds limit: Int64?) { loop.poll(atMost: limit) }

    /// Any thread: ends the host's current or next wait. From the host's own thread it does
    /// nothing (the host looks at its queues before it waits).
    public func wake() { mailbox.nudge() }

    /// Host thread, last call: fails what is still in flight with ``HTTPError/Kind/closed`` and
    /// frees every handle. Clients and the transport can still be closed afterwards (at once).
    public func end() { loop.end() }
}

/// A transport's loop that a host runs. `CurlLoop` is not thread-safe; this decides who may touch it.
///
/// `@unchecked Sendable` is sound because `loop` is touched by one thread at a time:
/// - once claimed, only by the claiming thread: ``HTTPTransportHost``'s calls are documented
///   (and asserted) to be made there, and ``runCommandsIfAllowed()`` runs in place only there;
/// - before any claim, only inside `owner`'s lock (a client or the transport closing before the
///   daemon runs), and ``claim()`` takes that lock too, so the two cannot overlap;
/// - after ``end()``, by nobody but `deinit`, which runs once no other reference is left.
final class HostedLoop: @unchecked Sendable {
    private enum Owner: Sendable { case unclaimed, claimed, ended }

    private let owner = Locked(Owner.unclaimed)
    private let loop: CurlLoop
    let mailbox: LoopMailbox
    /// The claiming thread's pthread (0 before): the cheap check of the host's calls.
    private let hostThread = Atomic<UInt>(0)

    init(loop: CurlLoop, mailbox: LoopMailbox) {
        self.loop = loop
        self.mailbox = mailbox
    }

    private var onHostThread: Bool { hostThread.load(ordering: .acquiring) == UInt(pthread_self()) }

    func claim() -> Bool {
        owner.withLock { owner in
            guard owner == .unclaimed else { return false }
            owner = .claimed
            hostThread.store(UInt(pthread_self()), ordering: .releasing)
            mailbox.bindConsumerToCurrentThread()
            return true
        }
    }

    /// A closing client or transport queued a command and will wait for it to run. On the host's
    /// thread (in a job the host runs) that wait would never end, and before any host has claimed
    /// the loop nobody would run it: in both cases it runs now, on the caller's thread.
    func runCommandsIfAllowed() {
        if onHostThread {
            loop.handleCommands()
            return
        }
        owner.withLock { owner in
            if owner == .unclaimed { loop.handleCommands() }
        }
    }

    func step() {
        assert(onHostThread, "HTTPTransportHost.step() off the host's thread")
        loop.step()
    }

    func poll(atMost limit: Int64?) {
        assert(onHostThread, "HTTPTransportHost.wait() off the host's thread")
        loop.poll(atMost: limit)
    }

    func end() {
        assert(onHostThread, "HTTPTransportHost.end() off the host's thread")
        let ending = owner.withLock { owner in
            defer { owner = .ended }
            return owner == .claimed
        }
        if ending { loop.releaseMulti() }
    }

    deinit {
        // Never claimed (the daemon failed to start) or never ended: nothing else can run the loop now.
        if owner.withLock({ $0 }) != .ended { loop.releaseMulti() }
    }
}
