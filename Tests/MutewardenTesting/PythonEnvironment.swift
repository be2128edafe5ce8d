import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Python virtual environments made from PyPI for test peers that Debian does not package in the
/// version a test needs (python-socketio 4.6 for Engine.IO v3, say).
///
/// Each is made once per checkout, under the root package's `.build/test-venvs/<name>`, with
/// Debian's `python3 -m venv` (package python3-venv) and pip, and reused while its requirements
/// are the same. Test processes running side by side (`swift test` in parallel) take a lock file
/// first, so one makes it and the others wait for it; the wait polls as a task and holds no
/// thread of the pool. Nothing is skipped when it cannot be made: the test fails, with pip's
/// output, as any peer that cannot start.
public enum PythonEnvironment {
    /// `<package>/.build/test-venvs`, from this file's place in the source tree.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/test-venvs")

    /// The interpreter of the environment `name`, with `requirements` (pinned, `package==version`)
    /// installed; made first if it does not exist yet or was made with other requirements.
    public static func interpreter(name: String, requirements: [String], timeout: Duration = .seconds(900)) async throws
        -> String
    {
        let directory = root.appendingPathComponent(name)
        let marker = directory.appendingPathComponent("mutewarden-requirements.txt")
        let python = directory.appendingPathComponent("bin/python").path
        let expected = requirements.joined(separator: "\n") + "\n"
        if (try? String(contentsOf: marker, encoding: .utf8)) == expected { return python }

        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let lock = try await FileLock.acquire(root.appendingPathComponent("\(name).lock").path, timeout: timeout)
        defer { lock.release() }
        // Another process may have made it while this one waited.
        if (try? String(contentsOf: marker, encoding: .utf8)) == expected { return python }

        try? FileManager.default.removeItem(at: directory)
        let venv = try await runProgram(try locateTool("python3"), ["-m", "venv", directory.path], timeout: .seconds(120))
        guard venv.status == 0 else {
            throw TestFailure("python3 -m venv \(directory.path) failed (is python3-venv installed?):\n\(venv.output)")
        }
        let pip = try await runProgram(
            python,
            ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"] + requirements,
            timeout: timeout)
        guard pip.status == 0 else {
            throw TestFailure("pip could not install \(requirements.joined(separator: " ")) from PyPI:\n\(pip.output)")
        }
        // Written last: an environment without it is a partial one and is made again.
        try expected.write(to: marker, atomically: true, encoding: .utf8)
        return python
    }
}

/// An exclusive `flock` on a file, between processes.
struct FileLock {
    let descriptor: Int32

    /// Polls with `LOCK_NB` rather than blocking in `flock`: a blocked call would hold a thread
    /// of the cooperative pool for as long as another process takes to make its environment.
    static func acquire(_ path: String, timeout: Duration) async throws -> FileLock {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw TestFailure("cannot open \(path): \(String(cString: strerror(errno)))") }
        do {
            try await eventually("the lock \(path)", timeout: timeout, every: .milliseconds(200)) {
                flock(descriptor, LOCK_EX | LOCK_NB) == 0 ? true : nil
            }
        } catch {
            close(descriptor)
            throw error
        }
        return FileLock(descriptor: descriptor)
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
