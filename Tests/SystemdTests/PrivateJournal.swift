import Foundation
import MutewardenModel
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
final class PrivateJournal {
    let directory: TemporaryDirectory
    private let process: Process

    var root: String { directory.path }
    /// Bind-mounted over `/run` for journald and for the sending thread.
    var runDirectory: String { root + "/run" }
    var journalDirectory: String { runDirectory + "/log/journal" }
    var socketPath: String { runDirectory + "/systemd/journal/socket" }

    static let configuration = """
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

    init() throws {
        directory = try TemporaryDirectory("mutewarden-journal")
        let root = directory.path
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: root + "/run", withIntermediateDirectories: true)
        try fileManager.createDirectory(atPath: root + "/etc-systemd", withIntermediateDirectories: true)
        try Self.configuration.write(toFile: root + "/etc-systemd/journald.conf", atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Peers.unshare!)
        // --propagation private: our mounts must not leak back into the host's namespace.
        process.arguments = [
            "--mount", "--propagation", "private", "/bin/sh", "-c",
            #"mount --bind "$1/run" /run && mount --bind "$1/etc-systemd" /etc/systemd && exec "$2""#,
            "sh", root, Peers.journald!,
        ]
        process.standardInput = FileHandle.nullDevice
        let log = root + "/journald.log"
        _ = fileManager.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        self.process = process

        let deadline = ContinuousClock.now + .seconds(15)
        while !fileManager.fileExists(atPath: socketPath) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                stop()
                throw PrivateJournalError.didNotStart(output)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    deinit { stop() }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Runs `body` on a new thread whose `/run` is this journal's, and waits for it.
    func withJournalMounted<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = Locked<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let run = runDirectory
        let thread = Thread {
            defer { done.signal() }
            do {
                try enterPrivateMountNamespace(bind: run, over: "/run")
                let value = try body()
                result.withLock { $0 = .success(value) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
        }
        thread.start()
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Runs a program in a mount namespace where `mounts` (source, target) are bind-mounted:
    /// for `journalctl -x`, whose catalog database path is fixed.
    func runMounted(_ mounts: [(String, String)], _ executable: String, _ arguments: [String]) throws -> ProcessResult {
        var script = ""
        var parameters: [String] = []
        for (index, mount) in mounts.enumerated() {
            script += #"mount --bind "$\#(2 * index + 1)" "$\#(2 * index + 2)" && "#
            parameters += [mount.0, mount.1]
        }
        script += #"shift \#(2 * mounts.count) && exec "$@""#
        return try runProgram(
            Peers.unshare!,
            ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"] + parameters + [executable] + arguments)
    }

    /// `journalctl -o json` over this journal: every entry, oldest first.
    func entries(_ matches: [String] = []) throws -> [JournalEntry] {
        let result = try runProgram(
            Peers.journalctl!, ["--directory=\(journalDirectory)", "--no-pager", "-o", "json"] + matches)
        guard result.status == 0 else { throw PrivateJournalError.journalctl(result.output) }
        return try result.stdout.split(separator: "\n").map { try JournalEntry(json: String($0)) }
    }

    /// Waits until `count` entries match `matches`, then returns them.
    func waitForEntries(_ matches: [String], count: Int, timeout: Duration = .seconds(20)) throws -> [JournalEntry] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = try entries(matches)
            if found.count >= count || ContinuousClock.now >= deadline { return found }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}

enum PrivateJournalError: Error, CustomStringConvertible {
    case didNotStart(String)
    case journalctl(String)
    case namespace(String)

    var description: String {
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
func enterPrivateMountNamespace(bind source: String, over target: String) throws {
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
struct JournalEntry: Sendable {
    /// Every value of every field. journalctl writes a field that repeats as a JSON array, and a
    /// value it cannot show as text as an array of byte values.
    var fields: [String: [String]]

    subscript(_ name: String) -> String? { fields[name]?.first }

    init(json: String) throws {
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
