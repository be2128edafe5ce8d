import Foundation
import Testing

/// Runs the built `mutewarden` binary, as an operator would.
struct BinaryRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The products directory: where SwiftPM put this test bundle, and so the binary.
    static let binary: URL = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            packageRoot.appendingPathComponent(".build/debug"),
        ]
        for directory in candidates {
            let url = directory.appendingPathComponent("mutewarden")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return packageRoot.appendingPathComponent(".build/debug/mutewarden")
    }()

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Starts the binary; the caller waits, signals or reads.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Runs to completion, killing the process if it outlives `timeout`.
    static func run(_ arguments: [String], timeout: Duration = .seconds(60), environment: [String: String] = [:])
        throws -> Result
    {
        let (process, out, err) = try start(arguments, environment: environment)
        // Read both pipes while it runs, so that a chatty process never blocks on a full pipe.
        let stdout = Reader(out)
        let stderr = Reader(err)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            Issue.record("mutewarden \(arguments.joined(separator: " ")) still running after \(timeout); killed")
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: stdout.text(), stderr: stderr.text())
    }
}

/// Collects a pipe's output on a background thread.
final class Reader: @unchecked Sendable {
    // @unchecked: `data` is only touched under `lock`; the handler is the only writer.
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty {
                handle.readabilityHandler = nil
                done.signal()
            } else {
                lock.withLock { data.append(chunk) }
            }
        }
    }

    /// Waits for end of file, then returns everything read.
    func text() -> String {
        _ = done.wait(timeout: .now() + 10)
        return lock.withLock { String(decoding: data, as: UTF8.self) }
    }

    /// What has been read so far.
    func snapshot() -> String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mutewarden-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// config/demo.yaml with its state directory moved to a fresh temporary one, so that runs never
/// restore each other's windows.
func privateDemoConfiguration(stateDirectory: URL? = nil) throws -> (config: URL, state: URL) {
    let directory = try temporaryDirectory()
    let state = stateDirectory ?? directory.appendingPathComponent("state")
    let demo = try String(contentsOf: BinaryRunner.packageRoot.appendingPathComponent("config/demo.yaml"), encoding: .utf8)
    let rewritten = demo.split(separator: "\n", omittingEmptySubsequences: false).map { line in
        line.hasPrefix("  directory: ") ? "  directory: \(state.path)" : String(line)
    }.joined(separator: "\n")
    let config = directory.appendingPathComponent("mutewarden.yaml")
    try rewritten.write(to: config, atomically: true, encoding: .utf8)
    return (config, state)
}
