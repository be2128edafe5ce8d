import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The limits of the control socket. Design constants, not tunables an operator needs: the socket
/// answers a person or a script asking one question at a time.
public struct ControlServerConfiguration: Sendable, Hashable {
    /// The socket's path: in systemd's `RuntimeDirectory=` when run as a service.
    public var path: String
    /// A request line longer than this is answered with an error, unread past the limit.
    public var maximumRequestBytes = 512
    /// Connections served at once; one more is told "busy" and closed.
    public var maximumClients = 8
    /// From accept to the last byte of the answer. A client that sends nothing, or does not read
    /// its answer, is closed after it.
    public var connectionTimeout: Duration = .seconds(3)
    /// At most one refusal record per this interval, with the number refused meanwhile.
    public var refusalRecordInterval: Duration = .seconds(60)

    public init(path: String) { self.path = path }
}

/// Why the control socket could not be opened. The daemon runs on without it.
public enum ControlSocketError: Error, CustomStringConvertible, Sendable, Equatable {
    case pathTooLong(String)
    case directoryMissing(String)
    /// Another process answers on the path: a second daemon with the same socket.
    case inUse(String)
    /// Something that is not a socket is in the way; it is left alone.
    case notASocket(String)
    case system(String, call: String, errno: Int32)

    public var description: String {
        switch self {
        case .pathTooLong(let path): "control socket path \(path) is longer than the 95 bytes a Unix socket address leaves it"
        case .directoryMissing(let path): "the control socket's directory \(path) does not exist (systemd's RuntimeDirectory= makes it)"
        case .inUse(let path): "another process already answers on the control socket \(path)"
        case .notASocket(let path): "\(path) exists and is not a socket; it is left alone"
        case .system(let path, let call, let code): "control socket \(path): \(call) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// One request as the server read it.
public struct ControlRequest: Sendable {
    /// The request line, without its line end.
    public var line: String
    /// The client's uid and pid, from SO_PEERCRED.
    public var uid: UInt32
    public var pid: Int32
}

/// What the server tells its owner, to be logged.
public enum ControlServerEvent: Sendable {
    /// A client of another user was refused. `suppressed` counts refusals since the last event.
    case refused(uid: UInt32, pid: Int32, suppressed: Int)
    /// A request could not be served: too long, malformed, timed out, too many clients.
    case rejected(reason: String)
}

/// The daemon's control socket: a local AF_UNIX stream socket, one request line in, one answer
/// line out, then the server closes.
///
/// One thread of its own runs `poll(2)` over the listening socket, the connections and a wake-up
/// pipe; every descriptor is non-blocking, so a slow or silent client holds nothing but its
/// slot, and no Swift cooperative thread ever blocks on it. Answers come from other threads (the
/// engine's, through the ``Handler``): they are handed back through a locked list and the pipe.
///
/// Only root and the daemon's own user may ask: the socket file is 0600 and, in case the file mode
/// is loosened (a `chmod`, a different umask), every accepted connection's peer uid is checked
/// with SO_PEERCRED before its request is read.
public final class ControlServer: Sendable {
    /// Called on the server's thread for each admitted request; must not block. `reply` may be
    /// called from any thread, once, with one line of JSON (without the line end).
    public typealias Handler = @Sendable (ControlRequest, _ reply: @escaping @Sendable (String) -> Void) -> Void

    public let configuration: ControlServerConfiguration
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// The socket file's device and inode, so that stopping removes only our own.
    private let identity: (dev: UInt64, ino: UInt64)
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let replies = Locked<[(connection: UInt64, answer: String)]>([])
    private let served = Atomic<Int>(0)

    /// Requests answered so far (tests).
    public var requestsServed: Int { served.load(ordering: .relaxed) }

    private init(configuration: ControlServerConfiguration, listener: Int32, wake: (Int32, Int32), identity: (UInt64, UInt64)) {
        self.configuration = configuration
        self.listener = listener
        wakeRead = wake.0
        wakeWrite = wake.1
        self.identity = identity
    }

    /// Opens the socket (replacing a stale one left by a crash) and starts serving.
    public static func start(
        _ configuration: ControlServerConfiguration, handler: @escaping Handler,
        report: @escaping @Sendable (ControlServerEvent) -> Void
    ) throws(ControlSocketError) -> ControlServer {
        let path = configuration.path
        // Room for the temporary name's suffix (".PID.new") and the terminating zero.
        guard path.utf8.count + 13 <= MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { throw .pathTooLong(path) }
        let directory = (path as NSString).deletingLastPathComponent
        var info = stat()
        guard stat(directory.isEmpty ? "." : directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw .directoryMissing(directory)
        }
        try clearStale(path)

        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw .system(path, call: "pipe", errno: errno) }
        for end in pipeEnds {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else {
            let code = errno
            for end in pipeEnds { close(end) }
            throw .system(path, call: "socket", errno: code)
        }
        // Bound under a temporary name, made 0600, then renamed into place: the socket is never
        // reachable under its real name with the mode the umask gave it, and a stale file is
        // replaced in one step.
        let temporary = path + ".\(getpid()).new"
        unlink(temporary)
        var address = Self.address(temporary)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        func fail(_ call: String) -> ControlSocketError {
            let code = errno
            close(fd)
            for end in pipeEnds { close(end) }
            unlink(temporary)
            return .system(path, call: call, errno: code)
        }
        guard bound == 0 else { throw fail("bind") }
        guard chmod(temporary, 0o600) == 0 else { throw fail("chmod") }
        guard listen(fd, 16) == 0 else { throw fail("listen") }
        guard rename(temporary, path) == 0 else { throw fail("rename") }
        var placed = stat()
        guard stat(path, &placed) == 0 else { throw fail("stat") }
        let server = ControlServer(
            configuration: configuration, listener: fd, wake: (pipeEnds[0], pipeEnds[1]),
            identity: (UInt64(placed.st_dev), UInt64(placed.st_ino)))
        let thread = Thread { [server] in
            mw_set_thread_name("mw-control")
            ServerLoop(server: server, handler: handler, report: report).run()
            server.finished.signal()
        }
        thread.start()
        return server
    }

    /// Stops serving, closes every connection and removes the socket file if it is still ours.
    /// Returns once the thread has ended, which is at once: the wake-up ends its poll, and
    /// nothing else it does blocks (every descriptor is non-blocking, the handler must not block).
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake()
        finished.wait()
        var info = stat()
        if stat(configuration.path, &info) == 0, UInt64(info.st_dev) == identity.dev, UInt64(info.st_ino) == identity.ino {
            unlink(configuration.path)
        }
        close(listener)
        close(wakeRead)
        close(wakeWrite)
    }

    /// A socket file with nobody behind it (a crash) is removed; a live one is someone else's.
    private static func clearStale(_ path: String) throws(ControlSocketError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path) }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard probe >= 0 else { throw .system(path, call: "socket", errno: errno) }
        defer { close(probe) }
        var address = Self.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // EAGAIN: a listener whose backlog is full is still a listener.
        if connected == 0 || errno == EAGAIN { throw .inUse(path) }
        unlink(path)
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            let bytes = Array(path.utf8.prefix(buffer.count - 1))
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return address
    }

    fileprivate func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    fileprivate func post(_ answer: String, to connection: UInt64) {
        replies.withLock { $0.append((connection, answer)) }
        wake()
    }

    fileprivate var isStopping: Bool { stopping.load(ordering: .acquiring) }
    fileprivate var listeningDescriptor: Int32 { listener }
    fileprivate var wakeDescriptor: Int32 { wakeRead }
    fileprivate func takeReplies() -> [(connection: UInt64, answer: String)] {
        replies.withLock { replies in
            defer { replies.removeAll() }
            return replies
        }
    }
    fileprivate func countServed() { served.add(1, ordering: .relaxed) }
}

/// How the server reads a request: one line of printable UTF-8 text, at most `limit` bytes.
/// Public for the fuzz target (`Fuzz/Sources/fuzz-control`).
public enum ControlRequestLine {
    public enum Problem: String, Error, Sendable, Equatable {
        /// Not UTF-8, or holds a control character.
        case malformed
        case tooLong = "too-long"
    }

    /// The request in what a client has sent so far, the problem with it, or nil while its line
    /// may still come. `ended`: the client closed its side, so what it sent is all there is.
    public static func parse(_ input: [UInt8], ended: Bool, limit: Int) -> Result<String, Problem>? {
        var line: ArraySlice<UInt8>
        if let newline = input.firstIndex(of: UInt8(ascii: "\n")) {
            guard newline <= limit else { return .failure(.tooLong) }
            line = input[..<newline]
        } else if input.count > limit {
            return .failure(.tooLong)
        } else if ended, !input.isEmpty {
            line = input[...]
        } else {
            return nil
        }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard let text = String(validating: line, as: UTF8.self),
            text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        else { return .failure(.malformed) }
        return .success(text)
    }
}

/// The error answer, as one JSON line: `code` is stable, `error` is for people.
public func controlErrorAnswer(code: String, _ message: String) -> String {
    "{\"ok\":false,\"code\":\"\(code)\",\"error\":\"\(jsonEscaped(message))\"}"
}

/// `text` as the inside of a JSON string.
func jsonEscaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// The server thread's own state: made on that thread and never touched by another.
private final class ServerLoop {
    enum Phase {
        case reading
        /// The handler has the request; its answer comes through ``ControlServer/post(_:to:)``.
        case answering
        case writing
    }

    final class Connection {
        let id: UInt64
        let fd: Int32
        let deadline: MonotonicInstant
        var phase = Phase.reading
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        var uid: UInt32 = 0
        var pid: Int32 = 0

        init(id: UInt64, fd: Int32, deadline: MonotonicInstant) {
            self.id = id
            self.fd = fd
            self.deadline = deadline
        }
    }

    let server: ControlServer
    let handler: ControlServer.Handler
    let report: @Sendable (ControlServerEvent) -> Void
    let clock = SystemClock()
    var connections: [UInt64: Connection] = [:]
    var nextID: UInt64 = 1
    var lastRefusalReport: MonotonicInstant?
    var refusalsSuppressed = 0

    init(server: ControlServer, handler: @escaping ControlServer.Handler, report: @escaping @Sendable (ControlServerEvent) -> Void) {
        self.server = server
        self.handler = handler
        self.report = report
    }

    func run() {
        var descriptors: [pollfd] = []
        while !server.isStopping {
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: server.wakeDescriptor, events: Int16(POLLIN), revents: 0))
            descriptors.append(pollfd(fd: server.listeningDescriptor, events: Int16(POLLIN), revents: 0))
            let order = connections.values.sorted { $0.id < $1.id }
            for connection in order {
                let events: Int16
                switch connection.phase {
                case .reading: events = Int16(POLLIN)
                case .answering: events = 0
                case .writing: events = Int16(POLLOUT)
                }
                descriptors.append(pollfd(fd: connection.fd, events: events, revents: 0))
            }
            let now = clock.now()
            let nearest = order.map(\.deadline).min()
            let timeout = nearest.map { Int32(clamping: max(0, ($0.nanoseconds - now.nanoseconds + 999_999) / 1_000_000)) } ?? 1000
            let ready = poll(&descriptors, nfds_t(descriptors.count), min(timeout, 1000))
            if ready < 0, errno != EINTR { break }
            if descriptors[0].revents != 0 { drainWake() }
            for (reply, answer) in server.takeReplies() {
                guard let connection = connections[reply] else { continue }
                respond(connection, answer)
            }
            if descriptors[1].revents & Int16(POLLIN) != 0 { acceptAll() }
            for (index, connection) in order.enumerated() where connections[connection.id] != nil {
                let revents = descriptors[index + 2].revents
                if revents & Int16(POLLNVAL) != 0 {
                    drop(connection)
                    continue
                }
                switch connection.phase {
                case .reading where revents != 0: receive(connection)
                case .writing where revents != 0: flush(connection)
                default: break
                }
            }
            let later = clock.now()
            for connection in connections.values where connection.deadline <= later {
                report(
                    .rejected(
                        reason: "a control client was closed after \(server.configuration.connectionTimeout.compact) without a complete exchange"))
                drop(connection)
            }
        }
        for connection in connections.values { drop(connection) }
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        for _ in 0..<64 {
            if Glibc.read(server.wakeDescriptor, &buffer, buffer.count) < buffer.count { return }
        }
    }

    private func acceptAll() {
        // Bounded: a flood of connections is taken a batch per round, never in an endless loop.
        for _ in 0..<64 {
            let fd = accept(server.listeningDescriptor, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let connection = Connection(id: nextID, fd: fd, deadline: clock.now() + server.configuration.connectionTimeout)
            nextID += 1
            connections[connection.id] = connection
            var uid: UInt32 = 0
            var gid: UInt32 = 0
            var pid: Int32 = 0
            guard mw_peer_credentials(fd, &uid, &gid, &pid) == 0 else {
                respond(connection, controlErrorAnswer(code: "refused", "the daemon could not tell who is asking"))
                continue
            }
            connection.uid = uid
            connection.pid = pid
            guard uid == 0 || uid == geteuid() else {
                refused(uid: uid, pid: pid)
                respond(connection, controlErrorAnswer(code: "refused", "only root and the daemon's own user may use the control socket"))
                continue
            }
            if connections.count > server.configuration.maximumClients {
                report(.rejected(reason: "a control client was turned away: \(server.configuration.maximumClients) already connected"))
                respond(connection, controlErrorAnswer(code: "busy", "too many control clients at once; try again"))
            }
        }
    }

    private func refused(uid: UInt32, pid: Int32) {
        let now = clock.now()
        if let last = lastRefusalReport, now.since(last) < server.configuration.refusalRecordInterval {
            refusalsSuppressed += 1
            return
        }
        report(.refused(uid: uid, pid: pid, suppressed: refusalsSuppressed))
        refusalsSuppressed = 0
        lastRefusalReport = now
    }

    private func receive(_ connection: Connection) {
        let limit = server.configuration.maximumRequestBytes
        var buffer = [UInt8](repeating: 0, count: limit + 1 - connection.input.count)
        let count = Glibc.read(connection.fd, &buffer, buffer.count)
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            drop(connection)
            return
        }
        connection.input.append(contentsOf: buffer[0..<count])
        // The client closed its side without a line end: what it sent is its request.
        switch ControlRequestLine.parse(connection.input, ended: count == 0, limit: limit) {
        case nil:
            if count == 0 { drop(connection) }
        case .failure(.tooLong)?:
            report(.rejected(reason: "a control request longer than \(limit) bytes was refused"))
            respond(connection, controlErrorAnswer(code: "too-long", "a request is one line of at most \(limit) bytes"))
        case .failure(.malformed)?:
            report(.rejected(reason: "a malformed control request was refused (not one line of printable text)"))
            respond(connection, controlErrorAnswer(code: "malformed", "a request is one line of printable text, such as 'status'"))
        case .success(let text)?:
            dispatch(connection, text)
        }
    }

    private func dispatch(_ connection: Connection, _ text: String) {
        connection.phase = .answering
        let id = connection.id
        let server = self.server
        handler(ControlRequest(line: text, uid: connection.uid, pid: connection.pid)) { answer in server.post(answer, to: id) }
    }

    private func respond(_ connection: Connection, _ answer: String) {
        guard connection.phase != .writing else { return }
        connection.phase = .writing
        connection.output = Array((answer + "\n").utf8)
        connection.written = 0
        server.countServed()
        flush(connection)
    }

    private func flush(_ connection: Connection) {
        while connection.written < connection.output.count {
            let sent = connection.output[connection.written...].withUnsafeBytes { bytes in
                send(connection.fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                break
            }
            connection.written += sent
        }
        // Done or failed: either way the exchange is over.
        finish(connection)
    }

    private func finish(_ connection: Connection) {
        shutdown(connection.fd, Int32(SHUT_WR))
        drop(connection)
    }

    private func drop(_ connection: Connection) {
        close(connection.fd)
        connections[connection.id] = nil
    }
}
