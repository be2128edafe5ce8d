import Foundation
import MutewardenTesting
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
        let stdout = ChildOutput(out)
        let stderr = ChildOutput(err)
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
