import Foundation
import MutewardenTesting
import Testing

/// Runs the built `mutewarden` binary, as an operator would.
enum BinaryRunner {
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

    /// Starts the binary, from the package root, as a process the test owns: the caller waits for
    /// lines, signals, stops. Its standard error is the daemon's log.
    static func start(_ arguments: [String], environment: [String: String] = [:]) async throws -> PeerProcess {
        try await PeerProcess.start(
            binary.path, arguments, name: "mutewarden", environment: environment, workingDirectory: packageRoot,
            holdInput: false)
    }

    /// Runs to completion; one that outlives `timeout` is killed and the run throws.
    static func run(_ arguments: [String], timeout: Duration = .seconds(60), environment: [String: String] = [:])
        async throws -> ProgramResult
    {
        try await runProgram(
            binary.path, arguments, environment: environment, workingDirectory: packageRoot, timeout: timeout)
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
