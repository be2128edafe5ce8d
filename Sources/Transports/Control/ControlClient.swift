import Foundation
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// Asks the daemon's control socket one question. Blocking, with a deadline: for the
/// command-line client, which has nothing else to do meanwhile (never call it from a Swift
/// concurrency thread).
public enum ControlClient {
    /// Why there is no answer. Each maps to one exit status of `mutewarden status`.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// No socket file: no daemon runs with this socket.
        case noSocket(String)
        /// A socket file with no listener behind it (a daemon that crashed).
        case notListening(String)
        /// The file mode, or the daemon itself, refused this user.
        case permissionDenied(String)
        /// Connected, but no complete answer within the deadline.
        case timedOut(Duration)
        /// The answer is over the size limit or was cut short.
        case badAnswer(String)
        case system(String)

        public var description: String {
            switch self {
            case .noSocket(let path): "no control socket at \(path): the daemon is not running (or runs with another socket)"
            case .notListening(let path): "nothing listens on \(path): the daemon is not running (a stale socket from a crash?)"
            case .permissionDenied(let why): "permission denied: \(why)"
            case .timedOut(let deadline): "the daemon did not answer within \(deadline.compact)"
            case .badAnswer(let why): "the daemon's answer could not be read: \(why)"
            case .system(let why): why
            }
        }
    }

    /// The longest answer taken: a status lists a bounded number of windows and actions.
    public static let maximumAnswerBytes = 4 << 20

    /// Sends `request` as one line and returns the one-line answer, without its line end.
    public static func ask(_ request: String, path: String, timeout: Duration) -> Result<String, Failure> {
        let clock = SystemClock()
        let deadline = clock.now() + timeout
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(.system("socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var address = ControlServer.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 {
            switch errno {
            case ENOENT, ENOTDIR: return .failure(.noSocket(path))
            case ECONNREFUSED: return .failure(.notListening(path))
            case EACCES, EPERM: return .failure(.permissionDenied("\(path) is for root and the daemon's user only"))
            // A full backlog: a listener that accepts nothing is a daemon that does not answer.
            case EAGAIN: return .failure(.timedOut(timeout))
            default: return .failure(.system("connect to \(path): \(String(cString: strerror(errno)))"))
            }
        }
        let line = Array((request + "\n").utf8)
        var written = 0
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // Bounded by the deadline: each round waits in poll for what is left of it.
        while true {
            let left = deadline.nanoseconds - clock.now().nanoseconds
            guard left > 0 else { return .failure(.timedOut(timeout)) }
            var descriptor = pollfd(fd: fd, events: Int16(written < line.count ? POLLOUT : POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: (left + 999_999) / 1_000_000))
            if ready < 0 {
                if errno == EINTR { continue }
                return .failure(.system("poll: \(String(cString: strerror(errno)))"))
            }
            if ready == 0 { continue }
            if written < line.count {
                let sent = line[written...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    // The daemon may have answered (a refusal) and closed before reading: read it.
                    written = line.count
                    continue
                }
                written += sent
                continue
            }
            let count = read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                if errno == ECONNRESET, answer.isEmpty { return .failure(.badAnswer("the daemon closed the connection")) }
                return .failure(.system("read: \(String(cString: strerror(errno)))"))
            }
            answer.append(contentsOf: buffer[0..<count])
            if let newline = answer.firstIndex(of: UInt8(ascii: "\n")) {
                return .success(String(decoding: answer[..<newline], as: UTF8.self))
            }
            if answer.count > maximumAnswerBytes { return .failure(.badAnswer("over \(maximumAnswerBytes) bytes")) }
            if count == 0 {
                return answer.isEmpty
                    ? .failure(.badAnswer("the daemon closed the connection without answering"))
                    : .failure(.badAnswer("the answer was cut short"))
            }
        }
    }
}
