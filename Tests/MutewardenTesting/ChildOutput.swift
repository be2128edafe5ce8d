import Foundation
import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Everything a child process writes to one pipe, read on a thread of its own with blocking reads.
///
/// Not `FileHandle.readabilityHandler`: on Linux, tearing down its dispatch read source races
/// libdispatch's epoll bookkeeping (swift-corelibs-libdispatch#949), and the manager thread then
/// dereferences a freed muxnote in `_dispatch_event_loop_drain`. The full suite crashed that way in
/// about one run in three. A blocking read never registers the descriptor with libdispatch.
public final class ChildOutput: Sendable {
    private let received = Locked(Data())
    private let ended = Atomic<Bool>(false)

    /// Starts reading `pipe` at once; `onData`, if given, sees each chunk as it arrives, on the
    /// reading thread.
    public init(_ pipe: Pipe, onData: (@Sendable (Data) -> Void)? = nil) {
        // The thread owns the handle until end of file, so the descriptor cannot be closed (and
        // its number reused) while a read on it is blocked.
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                let chunk = Data(buffer[0..<count])
                received.withLock { $0.append(chunk) }
                onData?(chunk)
            }
            ended.store(true, ordering: .releasing)
        }
        thread.name = "child-output"
        thread.start()
    }

    /// Whether the writers have all closed the pipe (the child, and any grandchild holding it).
    public var isFinished: Bool { ended.load(ordering: .acquiring) }

    /// Waits (at most `timeout`, sleeping as a task rather than holding a thread of the pool) for
    /// end of file, then returns everything read.
    public func text(within timeout: Duration) async -> String {
        _ = await waitUntil(timeout: timeout) { isFinished }
        return snapshot()
    }

    /// What has been read so far.
    public func snapshot() -> String { received.withLock { String(decoding: $0, as: UTF8.self) } }
}
