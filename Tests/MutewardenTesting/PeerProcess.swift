import Foundation
import MutewardenModel
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum ProcessExit: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    /// The exit status, or nil if a signal ended it.
    public var status: Int32? {
        if case .exited(let status) = self { status } else { nil }
    }

    public var description: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .signalled(let signal): "killed by signal \(signal)"
        }
    }
}

/// A process a test starts and owns: a server to talk to, a client to watch, the daemon itself.
///
/// - It starts with no signal blocked. Foundation's `Process` spawns with the calling thread's
///   signal mask, and the threads of Swift's pool and of libdispatch block SIGTERM: a child started
///   from a test would then ignore `stop()`'s SIGTERM and only die by SIGKILL after the grace.
/// - Its standard output and error are read as they come, by ``ChildOutput``'s blocking reads (see
///   there why not by a dispatch source), and kept, line by line, as its log: a failing wait throws
///   with the end of it, and ``withPeer(_:grace:_:)`` prints and attaches it when the test's body
///   throws.
/// - Its standard input is a pipe this object holds, so that a peer that exits when its input
///   closes (`--exit-on-stdin-eof`) cannot outlive a crashed test run.
/// - `stop()` sends SIGTERM, waits `grace`, then SIGKILL; deinit kills what is still running.
/// - Every wait is bounded and sleeps as a task: none holds a thread of the cooperative pool.
public final class PeerProcess: Sendable {
    public let name: String
    public let executable: String
    public let arguments: [String]

    private let process: Process
    private let input: Pipe?
    fileprivate let readers: [ChildOutput]
    private let output: Output

    /// Complete lines from both streams, in the order they arrived, and the unfinished tail of
    /// each (bytes: a chunk may end inside a character).
    private final class Output: Sendable {
        struct State {
            var lines: [String] = []
            var stdout: [String] = []
            var stderr: [String] = []
            var partial: [[UInt8]] = [[], []]
        }
        let state = Locked(State())

        func receive(_ chunk: Data, stream: Int) {
            state.withLock { state in
                state.partial[stream] += chunk
                guard let last = state.partial[stream].lastIndex(of: 0x0A) else { return }
                let complete = state.partial[stream][..<last].split(separator: 0x0A, omittingEmptySubsequences: false)
                    .map { String(decoding: $0, as: UTF8.self) }
                state.partial[stream].removeSubrange(...last)
                state.lines += complete
                if stream == 0 { state.stdout += complete } else { state.stderr += complete }
            }
        }

        static func text(_ lines: [String], _ partial: [UInt8]) -> String {
            (lines + (partial.isEmpty ? [] : [String(decoding: partial, as: UTF8.self)])).joined(separator: "\n")
        }
    }

    private init(
        name: String, executable: String, arguments: [String], process: Process, input: Pipe?,
        readers: [ChildOutput], output: Output
    ) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.process = process
        self.input = input
        self.readers = readers
        self.output = output
    }

    /// Starts `executable` (a path; see ``locateTool(_:)``).
    ///
    /// - Parameters:
    ///   - environment: added to this process's environment, or the whole environment when
    ///     `inheritEnvironment` is false.
    ///   - holdInput: whether the child's standard input is a pipe held open until `stop()`;
    ///     otherwise it is /dev/null.
    ///   - readyLine: if given, waits (at most `readyTimeout`) for a line of output that contains
    ///     it; a child that exits first, or a timeout, stops the child and throws with its log.
    public static func start(
        _ executable: String, _ arguments: [String] = [], name: String? = nil,
        environment: [String: String] = [:], inheritEnvironment: Bool = true, workingDirectory: URL? = nil,
        holdInput: Bool = true, readyLine: String? = nil, readyTimeout: Duration = .seconds(30)
    ) async throws -> PeerProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure("\(executable) is missing or not executable: `make test` installs the test peers")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment =
            inheritEnvironment ? ProcessInfo.processInfo.environment.merging(environment) { $1 } : environment
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let input = holdInput ? Pipe() : nil
        process.standardInput = input ?? FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let output = Output()
        let readers = [
            ChildOutput(stdout) { output.receive($0, stream: 0) },
            ChildOutput(stderr) { output.receive($0, stream: 1) },
        ]
        do {
            try await spawnWithNoSignalBlocked(process)
        } catch {
            // The readers see end of file once the pipes' write ends are gone with `process`.
            try? stdout.fileHandleForWriting.close()
            try? stderr.fileHandleForWriting.close()
            throw TestFailure("cannot start \(executable): \(error)")
        }
        // The child has its copies: without closing ours, the readers would never see end of file.
        try? stdout.fileHandleForWriting.close()
        try? stderr.fileHandleForWriting.close()
        let peer = PeerProcess(
            name: name ?? URL(fileURLWithPath: executable).lastPathComponent, executable: executable,
            arguments: arguments, process: process, input: input, readers: readers, output: output)
        if let readyLine {
            do {
                try await peer.waitForLine(containing: readyLine, timeout: readyTimeout)
            } catch {
                await peer.stop(SIGKILL)
                throw error
            }
        }
        return peer
    }

    /// `process.run()` on a thread of its own whose signal mask is empty, awaited without holding
    /// a thread of the pool.
    private static func spawnWithNoSignalBlocked(_ process: Process) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, nil)
                do {
                    try process.run()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "peer-spawn"
            thread.start()
        }
    }

    deinit {
        try? input?.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    // MARK: State and output

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// How it ended; nil while it runs.
    public var exit: ProcessExit? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .exit
            ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
    }

    /// Complete lines of standard output and error, in the order they arrived.
    public var lines: [String] { output.state.withLock { $0.lines } }
    public var stdoutLines: [String] { output.state.withLock { $0.stdout } }
    public var stderrLines: [String] { output.state.withLock { $0.stderr } }

    /// Everything read so far, both streams, unfinished lines included.
    public var log: String {
        output.state.withLock { state in
            Output.text(state.lines, state.partial[0] + (state.partial[0].isEmpty ? [] : [0x0A]) + state.partial[1])
        }
    }

    /// Standard error alone so far, unfinished line included (the daemon logs there).
    public var stderr: String {
        output.state.withLock { Output.text($0.stderr, $0.partial[1]) }
    }

    /// The last `count` lines of the log, for an error message.
    public func tail(_ count: Int = 40) -> String {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).suffix(count)
        return lines.isEmpty ? "(no output)" : lines.joined(separator: "\n")
    }

    // MARK: Waiting

    /// Waits until a complete line satisfies `predicate` and returns it. Throws, with the end of the
    /// log, if the process exits without one or `timeout` passes.
    @discardableResult
    public func waitForLine(
        timeout: Duration = .seconds(20), _ what: String = "a line", where predicate: (String) -> Bool
    ) async throws -> String {
        try await eventually(what: what, timeout: timeout) {
            if let line = lines.first(where: predicate) { return line }
            guard isRunning else {
                // Output written just before the exit may still be on its way through the pipe.
                _ = await waitUntil(timeout: .seconds(2)) { readers.allSatisfy(\.isFinished) }
                if let line = lines.first(where: predicate) { return line }
                throw failure("\(name) \(exit.map { "\($0)" } ?? "exited") before printing \(what)")
            }
            return nil
        }
    }

    @discardableResult
    public func waitForLine(containing text: String, timeout: Duration = .seconds(20)) async throws -> String {
        try await waitForLine(timeout: timeout, "a line containing \"\(text)\"") { $0.contains(text) }
    }

    /// Polls `check` (bounded) while the process runs; throws with the log if it exits first or
    /// the time runs out. For peers that say they are ready otherwise than by a line: a port file,
    /// a socket that accepts.
    @discardableResult
    public func eventually<T>(
        what: @autoclosure () -> String, timeout: Duration = .seconds(20), _ check: () async throws -> T?
    ) async throws -> T {
        let description = what()
        do {
            return try await MutewardenTesting.eventually(description, timeout: timeout) { () async throws -> T? in
                if let value = try await check() { return value }
                guard isRunning else {
                    throw failure("\(name) \(exit.map { "\($0)" } ?? "exited") while waiting for \(description)")
                }
                return nil
            }
        } catch let error as TestFailure where !error.description.contains("--- \(name) log") {
            throw failure(error.description)
        }
    }

    /// Waits (bounded) for the process to exit by itself; nil if it still runs.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(20)) async -> ProcessExit? {
        _ = await waitUntil(timeout: timeout) { !isRunning }
        return exit
    }

    /// A failure that carries the end of the log.
    public func failure(_ message: String) -> TestFailure {
        TestFailure("\(message)\n--- \(name) log (last lines) ---\n\(tail())\n---")
    }

    // MARK: Stopping

    /// Sends `signal` to the process (SIGHUP for a reload, say).
    public func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Writes `line` and a newline to its standard input (a peer that takes commands there).
    public func writeLine(_ line: String) throws {
        guard let input else { throw TestFailure("\(name) was started without a standard input to write to") }
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Closes its standard input (a peer may take that as the end).
    public func closeInput() { try? input?.fileHandleForWriting.close() }

    /// Stops it: `signal` (SIGTERM by default), then SIGKILL if it still runs after `grace`.
    /// Returns how it ended, and nil only if it outlived SIGKILL by ten seconds (a process stuck in
    /// the kernel).
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM, grace: Duration = .seconds(5)) async -> ProcessExit? {
        if process.isRunning {
            kill(process.processIdentifier, signal)
            if signal != SIGKILL, await waitForExit(timeout: grace) == nil {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        let ended = await waitForExit(timeout: .seconds(10))
        closeInput()
        // Whatever it wrote last, for the log.
        _ = await waitUntil(timeout: .seconds(2)) { readers.allSatisfy(\.isFinished) }
        return ended
    }

    /// Prints the log and attaches it to the current test: for a test that is failing.
    public func recordLog(reason: String = "the test failed") {
        let text = log
        print("--- \(name) (pid \(processIdentifier)) log: \(reason) ---\n\(text)\n--- end of \(name) log ---")
        Attachment.record(text, named: "\(name)-\(processIdentifier).log")
    }
}

/// Runs `body` with `peer` and stops the peer afterwards, however `body` ends. If `body` throws,
/// the peer's log is printed and attached to the test before the error goes on.
public func withPeer<T>(
    _ peer: PeerProcess, grace: Duration = .seconds(5), _ body: (PeerProcess) async throws -> T
) async throws -> T {
    do {
        let value = try await body(peer)
        await peer.stop(grace: grace)
        return value
    } catch {
        await peer.stop(grace: grace)
        peer.recordLog(reason: "\(error)")
        throw error
    }
}

/// What a program run to completion printed, and how it ended.
public struct ProgramResult: Sendable {
    public var exit: ProcessExit
    public var stdout: String
    public var stderr: String

    /// The exit status; a signal shows as 128 + its number, as a shell would say.
    public var status: Int32 {
        switch exit {
        case .exited(let status): status
        case .signalled(let signal): 128 + signal
        }
    }
    public var output: String { stdout + stderr }
}

/// Runs a program to completion (a tool, the daemon's one-shot commands) and returns its output.
/// Both streams are read while it runs, so a chatty program never blocks on a full pipe. One that
/// outlives `timeout` is killed and the run throws, with its output.
public func runProgram(
    _ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
    inheritEnvironment: Bool = true, workingDirectory: URL? = nil, timeout: Duration = .seconds(60)
) async throws -> ProgramResult {
    let process = try await PeerProcess.start(
        executable, arguments, environment: environment, inheritEnvironment: inheritEnvironment,
        workingDirectory: workingDirectory, holdInput: false)
    guard let exit = await process.waitForExit(timeout: timeout) else {
        await process.stop(SIGKILL)
        throw process.failure(
            "\(executable) \(arguments.joined(separator: " ")) still running after \(timeout); killed")
    }
    // A grandchild may hold the pipes (and then they never close): the output is what came.
    _ = await waitUntil(timeout: .seconds(5)) { process.readers.allSatisfy(\.isFinished) }
    return ProgramResult(exit: exit, stdout: process.readers[0].snapshot(), stderr: process.readers[1].snapshot())
}

/// An executable from the Debian paths first (what the Makefile's TEST_PACKAGES installs), then
/// from PATH. A missing one throws: in CI that is a broken set-up, not a reason to skip.
public func locateTool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for directory in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] + path.split(separator: ":").map(String.init) {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestFailure("\(name) is not installed; `make test` installs the test peers (TEST_PACKAGES)")
}
