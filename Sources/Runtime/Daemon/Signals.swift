import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The signals the daemon acts on, delivered as an async sequence instead of handlers, so that
/// reacting to them is ordinary code on an ordinary task.
public enum DaemonSignal: Sendable, Hashable {
    case terminate
    case reload
}

/// Not Sendable: it stays with the task that starts the daemon; only `signals` travels.
public final class SignalWatcher {
    public let signals: AsyncStream<DaemonSignal>
    private let sources: [any DispatchSourceSignal]

    public init() {
        let (stream, continuation) = AsyncStream<DaemonSignal>.makeStream()
        signals = stream
        var sources: [any DispatchSourceSignal] = []
        for (number, meaning) in [(SIGTERM, DaemonSignal.terminate), (SIGINT, .terminate), (SIGHUP, .reload)] {
            // The default disposition would kill the process before the source sees the signal.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(meaning) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
