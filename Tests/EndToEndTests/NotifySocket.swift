import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A NOTIFY_SOCKET of the test's own, as systemd would give a `Type=notify` service: a Unix
/// datagram socket whose messages (`READY=1`, `STATUS=...`) are collected with their arrival time.
final class NotifySocket: @unchecked Sendable {
    // @unchecked: `messages` is guarded by `lock`; `fd` is written once in init and closed in
    // deinit after the reader thread has stopped.
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var messages: [(at: ContinuousClock.Instant, text: String)] = []
    private var stopped = false

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("mw-notify-\(UUID().uuidString.prefix(8))").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        // Wake up every 100 ms to notice `stop()`.
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in receive() }.start()
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !lock.withLock({ stopped }) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            lock.withLock { messages.append((ContinuousClock.now, text)) }
        }
    }

    /// Every message so far, each split into its `KEY=value` lines.
    var received: [(at: ContinuousClock.Instant, text: String)] { lock.withLock { messages } }

    func lines() -> [String] { received.flatMap { $0.text.split(separator: "\n").map(String.init) } }

    /// Waits (bounded) until some line satisfies `predicate`.
    @discardableResult
    func wait(timeout: Duration = .seconds(20), for predicate: (String) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if lines().contains(where: predicate) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func stop() {
        lock.withLock { stopped = true }
    }

    deinit {
        stop()
        Thread.sleep(forTimeInterval: 0.15)
        close(fd)
        unlink(path)
    }
}
