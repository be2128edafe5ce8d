import CLibWebSockets
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a hosted ``WebSocketService`` (``WebSocketService/hosted(name:report:)``) on the thread
/// that claims it, between that thread's own work:
///
/// ```swift
/// host.claim(wake: { /* end this thread's wait */ })
/// while running {
///     host.step()                                   // commands in, one lws pass, frames out
///     // ... the thread's own work ...
///     if !host.hasCommands {
///         var descriptors: [pollfd] = []
///         let limit = host.waitInterest(into: &descriptors)
///         // wait for those descriptors, the wake-up, or `limit` milliseconds
///     }
/// }
/// host.end()
/// ```
///
/// lws is not thread-safe: once claimed, every lws call of the service is made by the host's
/// thread. Other threads only queue commands, and the queue calls `wake` for the first one.
public final class WebSocketServiceHost: Sendable {
    private let cell: HostedServiceCell

    init(name: String, inbox: ServiceInbox, finished: ServiceCompletion, report: @escaping @Sendable (String) -> Void) {
        cell = HostedServiceCell(name: name, inbox: inbox, finished: finished, report: report)
    }

    /// Makes the calling thread the service's; once, before any other call. `wake` ends that
    /// thread's wait and may be called from any thread. False if another thread claimed it first.
    @discardableResult
    public func claim(wake: @escaping @Sendable () -> Void) -> Bool { cell.claim(wake: wake) }

    /// Host thread: runs the queued commands (creating the lws context at the first connection),
    /// then one lws pass that never waits, then hands what was read to the clients.
    public func step() { cell.step() }

    /// True while commands wait for the next ``step()``. A post from the host's own thread wakes
    /// nothing, so check this before waiting.
    public var hasCommands: Bool { cell.inbox.hasCommands }

    /// Host thread: appends the sockets to watch to `descriptors` and returns the longest the wait
    /// may last in milliseconds (nil: no limit from here). See `ServiceLoop.waitInterest`.
    public func waitInterest(into descriptors: inout [pollfd]) -> Int64? { cell.waitInterest(into: &descriptors) }

    /// Host thread, last call: destroys the context, ending what is still open without a close
    /// handshake (clients close theirs before this), and answers everything still queued.
    public func end() { cell.end() }

    /// True once the service has stopped, by ``end()`` or by its own `shutdown()`.
    public var isFinished: Bool { cell.finished.isFinished }
}

/// What the host's thread owns.
///
/// `@unchecked Sendable` is sound because `loop` and `ended` are touched by one thread only: the
/// one that won ``claim(wake:)`` (recorded in `hostThread`, and every method that touches them
/// asserts it runs there). `ServiceLoop` itself is created, serviced and torn down on that thread.
final class HostedServiceCell: @unchecked Sendable {
    let name: String
    let inbox: ServiceInbox
    let finished: ServiceCompletion
    private let report: @Sendable (String) -> Void
    private let hostThread = Atomic<UInt>(0)
    private var loop: ServiceLoop?
    private var ended = false

    init(name: String, inbox: ServiceInbox, finished: ServiceCompletion, report: @escaping @Sendable (String) -> Void) {
        self.name = name
        self.inbox = inbox
        self.finished = finished
        self.report = report
    }

    private var onHostThread: Bool { hostThread.load(ordering: .acquiring) == UInt(pthread_self()) }

    func claim(wake: @escaping @Sendable () -> Void) -> Bool {
        guard hostThread.compareExchange(expected: 0, desired: UInt(pthread_self()), ordering: .acquiringAndReleasing).exchanged
        else { return false }
        inbox.attach(hostWake: wake)
        return true
    }

    func step() {
        assert(onHostThread, "WebSocketServiceHost.step() off the host's thread")
        guard !ended else { return }
        let commands = inbox.take()
        if loop == nil {
            guard !commands.isEmpty else { return }
            // Asked to stop before any connection: there is no context to make just for that.
            guard commands.contains(where: { if case .connect = $0 { true } else { false } }) else {
                if commands.contains(where: { if case .stop = $0 { true } else if case .forceStop = $0 { true } else { false } }) {
                    finish()
                }
                return
            }
            switch ServiceLoop.create(inbox: inbox, report: report) {
            case .failure(let error):
                for command in commands { ServiceLoop.settleUnserved(command) }
                report("ERROR: websocket service \(name): \(error); its WebSocket feeds cannot connect")
                finish()
                return
            case .success(let created):
                loop = created
            }
        }
        guard let loop else { return }
        loop.hostedPass(commands)
        if !loop.running {
            loop.tearDown()
            self.loop = nil
            finish()
        }
    }

    func waitInterest(into descriptors: inout [pollfd]) -> Int64? {
        assert(onHostThread, "WebSocketServiceHost.waitInterest() off the host's thread")
        return loop?.waitInterest(into: &descriptors)
    }

    func end() {
        assert(onHostThread, "WebSocketServiceHost.end() off the host's thread")
        guard !ended else { return }
        if let loop {
            loop.tearDown()
            self.loop = nil
        } else {
            for command in inbox.close() { ServiceLoop.settleUnserved(command) }
        }
        finish()
    }

    private func finish() {
        guard !ended else { return }
        ended = true
        _ = inbox.close()
        finished.finish()
    }
}
