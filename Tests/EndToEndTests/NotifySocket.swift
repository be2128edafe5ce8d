import Foundation
import MutewardenTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A NOTIFY_SOCKET of the test's own, as systemd would give a `Type=notify` service: a Unix
/// datagram socket whose messages (`READY=1`, `STATUS=...`) are collected with their arrival time.
final class NotifySocket: Sendable {
    let path: String
    private let inbox = Inbox()

    /// What the reader thread shares with the test.
    private final class Inbox: Sendable {
        let received = Mutex<[(at: ContinuousClock.Instant, text: String)]>([])
        let stopped = Atomic<Bool>(false)
    }

    init() throws {
        // Under TMPDIR, and short: a socket's path must fit in sun_path's 108 bytes.
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mw-notify-\(UUID().uuidString.prefix(8))").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        // Wake up every 100 ms to notice that this object is gone.
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The reader holds the descriptor and what it fills, never `self`: the socket goes when the
        // test lets go of it, and the reader then closes the descriptor itself, so no read is ever
        // blocked on a closed (and perhaps reused) descriptor.
        let thread = Thread { [inbox, path] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !inbox.stopped.load(ordering: .acquiring) {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                inbox.received.withLock { $0.append((ContinuousClock.now, text)) }
            }
            close(fd)
            unlink(path)
        }
        thread.name = "notify-socket"
        thread.start()
    }

    deinit { inbox.stopped.store(true, ordering: .releasing) }

    /// Every message so far, each split into its `KEY=value` lines.
    func lines() -> [String] {
        inbox.received.withLock { $0 }.flatMap { $0.text.split(separator: "\n").map(String.init) }
    }

    /// When each line equal to `line` arrived.
    func arrivals(of line: String) -> [ContinuousClock.Instant] {
        inbox.received.withLock { $0 }.filter { $0.text.split(separator: "\n").contains { $0 == line } }.map(\.at)
    }

    /// Waits (bounded) until some line satisfies `predicate`.
    func wait(timeout: Duration = .seconds(30), for predicate: (String) -> Bool) async -> Bool {
        await waitUntil(timeout: timeout, every: .milliseconds(20)) { lines().contains(where: predicate) }
    }
}
