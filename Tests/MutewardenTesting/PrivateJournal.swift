import Foundation
import MutewardenLogging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A systemd-journald that belongs to one test, invisible to the host.
///
/// libsystemd's client (`sd_journal_sendv`) and journald itself both hard-code
/// `/run/systemd/journal/socket`; neither takes a path or an environment variable (a journal
/// namespace moves journald's socket, but `sd_journal_sendv` still sends to the default one). So
/// the isolation is done with mount namespaces instead:
///
/// - journald runs under `unshare --mount` with a temporary directory bind-mounted over `/run`
///   (so its sockets and its volatile journal files land in that directory) and another over
///   `/etc/systemd` (so it reads our journald.conf: volatile storage, no rate limit, no kmsg,
///   no forwarding). The host's `/run`, journal and configuration are never touched, whether or
///   not a host journald is running.
/// - the code under test runs on a thread that has unshared its own mount namespace (Linux keeps
///   mount namespaces per thread) and bind-mounted the same directory over `/run`, so that its
///   `sd_journal_sendv` reaches the private journald through the default path. Other threads
///   of the test process are unaffected, and the namespace ends with the thread.
/// - `journalctl --directory=` reads the journal files straight from the temporary directory.
public final class PrivateJournal: Sendable {
    public let directory: TemporaryDirectory
    private let process: PeerProcess

    public var root: String { directory.path }
    /// Bind-mounted over `/run` for journald and for the sending thread.
    public var runDirectory: String { root + "/run" }
    public var journalDirectory: String { runDirectory + "/log/journal" }
    public var socketPath: String { runDirectory + "/systemd/journal/socket" }

    public static let configuration = """
        [Journal]
        Storage=volatile
        RuntimeMaxUse=256M
        RateLimitIntervalSec=0
        RateLimitBurst=0
        ReadKMsg=no
        ForwardToSyslog=no
        ForwardToKMsg=no
        ForwardToConsole=no
        ForwardToWall=no

        """

    private init(directory: TemporaryDirectory, process: PeerProcess) {
        self.directory = directory
        self.process = process
    }

    /// Starts journald and returns once its socket is there.
    public static func start() async throws -> PrivateJournal {
        let directory = try TemporaryDirectory("mutewarden-journal")
        let root = directory.path
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: root + "/run", withIntermediateDirectories: true)
        try fileManager.createDirectory(atPath: root + "/etc-systemd", withIntermediateDirectories: true)
        try Self.configuration.write(toFile: root + "/etc-systemd/journald.conf", atomically: true, encoding: .utf8)

        // --propagation private: our mounts must not leak back into the host's namespace.
        let process = try await PeerProcess.start(
            JournalTools.unshare(),
            [
                "--mount", "--propagation", "private", "/bin/sh", "-c",
                #"mount --bind "$1/run" /run && mount --bind "$1/etc-systemd" /etc/systemd && exec "$2""#,
                "sh", root, JournalTools.journald(),
            ], name: "systemd-journald", holdInput: false)
        let journal = PrivateJournal(directory: directory, process: process)
        do {
            try await process.eventually(what: "journald's socket") {
                fileManager.fileExists(atPath: journal.socketPath) ? true : nil
            }
        } catch {
            await process.stop(SIGKILL)
            throw PrivateJournalError.didNotStart("\(error)")
        }
        return journal
    }

    public func stop() async { await process.stop() }

    /// A `JournalSink.Sender` that sends each record to this journald's socket in journald's
    /// native protocol, as `sd_journal_sendv` does to the fixed default socket: from any thread,
    /// with no mount namespace, so that a daemon run in the test process, whose threads are
    /// many and not ours, logs here through the real `JournalLogHandler`. A value with a line
    /// break goes in the protocol's binary form, as `sd_journal_sendv` sends it.
    public func sender() -> JournalSink.Sender {
        let path = Array(socketPath.utf8)
        return { vectors, count in
            var datagram: [UInt8] = []
            for index in 0..<Int(count) {
                let field = UnsafeRawBufferPointer(start: vectors[index].iov_base, count: vectors[index].iov_len)
                guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { continue }
                let value = field[(equals + 1)...]
                if value.contains(UInt8(ascii: "\n")) {
                    datagram += field[..<equals]
                    datagram.append(UInt8(ascii: "\n"))
                    withUnsafeBytes(of: UInt64(value.count).littleEndian) { datagram += $0 }
                    datagram += value
                } else {
                    datagram += field
                }
                datagram.append(UInt8(ascii: "\n"))
            }
            let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { return -errno }
            defer { close(descriptor) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return -ENAMETOOLONG }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (offset, byte) in path.enumerated() { buffer[offset] = byte }
            }
            let sent = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
            return sent < 0 ? -errno : 0
        }
    }

    /// Runs `body` on a new thread whose `/run` is this journal's, and returns what it returns.
    public func withJournalMounted<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let run = runDirectory
        return try await withCheckedThrowingContinuation { continuation in
            // A thread of its own, not a task: the mount namespace is the thread's, and ends with it.
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try enterPrivateMountNamespace(bind: run, over: "/run")
                        return try body()
                    })
            }
            thread.start()
        }
    }

    /// Runs a program in a mount namespace where `mounts` (source, target) are bind-mounted:
    /// for `journalctl -x`, whose catalog database path is fixed.
    public func runMounted(_ mounts: [(String, String)], _ executable: String, _ arguments: [String]) async throws
        -> ProgramResult
    {
        var script = ""
        var parameters: [String] = []
        for (index, mount) in mounts.enumerated() {
            script += #"mount --bind "$\#(2 * index + 1)" "$\#(2 * index + 2)" && "#
            parameters += [mount.0, mount.1]
        }
        script += #"shift \#(2 * mounts.count) && exec "$@""#
        return try await runProgram(
            JournalTools.unshare(),
            ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"] + parameters + [executable] + arguments)
    }

    /// `journalctl -o json` over this journal: every entry, oldest first.
    public func entries(_ matches: [String] = []) async throws -> [JournalEntry] {
        let result = try await runProgram(
            JournalTools.journalctl(), ["--directory=\(journalDirectory)", "--no-pager", "-o", "json"] + matches)
        guard result.status == 0 else { throw PrivateJournalError.journalctl(result.output) }
        return try result.stdout.split(separator: "\n").map { try JournalEntry(json: String($0)) }
    }

    /// Waits (bounded) until `count` entries match `matches`, then returns them; returns what
    /// there is when the time is up, for the test to show.
    public func waitForEntries(_ matches: [String], count: Int, timeout: Duration = .seconds(30)) async throws -> [JournalEntry] {
        var found: [JournalEntry] = []
        _ = try await waitUntil(timeout: timeout, every: .milliseconds(50)) {
            found = try await entries(matches)
            return found.count >= count
        }
        return found
    }
}

public enum PrivateJournalError: Error, CustomStringConvertible {
    case didNotStart(String)
    case journalctl(String)
    case namespace(String)

    public var description: String {
        switch self {
        case .didNotStart(let output): "private systemd-journald did not start: \(output)"
        case .journalctl(let output): "journalctl failed: \(output)"
        case .namespace(let detail): "cannot set up a private mount namespace: \(detail)"
        }
    }
}

/// Gives the calling thread its own mount namespace with `source` bind-mounted over `target`.
///
/// `unshare` is not exported by Swift's Glibc module (it needs `_GNU_SOURCE`), so it is looked
/// up at run time. CLONE_NEWNS on one thread is allowed in a multithreaded process: it implies
/// only CLONE_FS, which the kernel unshares per thread.
public func enterPrivateMountNamespace(bind source: String, over target: String) throws {
    typealias Unshare = @convention(c) (Int32) -> Int32
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "unshare") else {
        throw PrivateJournalError.namespace("unshare(2) not found")
    }
    let unshare = unsafeBitCast(symbol, to: Unshare.self)
    let cloneNewNamespace: Int32 = 0x0002_0000
    guard unshare(cloneNewNamespace) == 0 else {
        throw PrivateJournalError.namespace("unshare(CLONE_NEWNS): \(String(cString: strerror(errno)))")
    }
    guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
        throw PrivateJournalError.namespace("making / private: \(String(cString: strerror(errno)))")
    }
    guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
        throw PrivateJournalError.namespace("bind \(source) over \(target): \(String(cString: strerror(errno)))")
    }
}

/// One entry of `journalctl -o json`.
public struct JournalEntry: Sendable {
    /// Every value of every field. journalctl writes a field that repeats as a JSON array, and a
    /// value it cannot show as text as an array of byte values.
    public var fields: [String: [String]]

    public subscript(_ name: String) -> String? { fields[name]?.first }

    public init(json: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        guard let dictionary = object as? [String: Any] else { throw PrivateJournalError.journalctl("not an object: \(json)") }
        var fields: [String: [String]] = [:]
        for (name, value) in dictionary {
            fields[name] = Self.values(value)
        }
        self.fields = fields
    }

    private static func values(_ value: Any) -> [String] {
        if let text = value as? String { return [text] }
        if let array = value as? [Any] {
            if let bytes = array as? [Int] { return [String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)] }
            return array.flatMap { values($0) }
        }
        return ["\(value)"]
    }
}

/// The systemd programs a private journal runs, from Debian's paths (TEST_PACKAGES: systemd,
/// util-linux). A missing one throws: the test fails rather than skips.
public enum JournalTools {
    static func find(_ name: String, _ candidates: [String]) throws -> String {
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("\(name) is not installed; `make test` installs it (TEST_PACKAGES)")
        }
        return found
    }

    public static func unshare() throws -> String { try find("unshare", ["/usr/bin/unshare", "/bin/unshare"]) }
    public static func journald() throws -> String {
        try find("systemd-journald", ["/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"])
    }
    public static func journalctl() throws -> String { try find("journalctl", ["/usr/bin/journalctl", "/bin/journalctl"]) }
}
