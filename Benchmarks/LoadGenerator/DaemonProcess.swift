import Foundation
import Synchronization

/// The daemon under test: a configuration pointing its feed and target at the load generator
/// (`genesys` here, `voicenter` in `VoicenterSide`), and the process, pinned to its own core with
/// taskset.
struct DaemonProcess {
    let process: Process
    let directory: URL

    /// The daemon's pid while it runs, for the signal handler (0: none).
    static let running = Atomic<Int32>(0)

    static let password = "loadgen-secret"
    static let user = "agent1"
    /// Voicenter's account monitor token, which the daemon's login sends.
    static let token = "loadgen-monitor-token"

    /// Writes the configuration: the two policies of config/examples/genesys.yaml (pause the
    /// recording, mute the agent, while PCI_STAGE=CARD), logging at info to standard error, which
    /// `start` sends to a file so that log lines cost a real write(2) each, as in production, without
    /// a terminal or a pipe to slow them down.
    static func configuration(port: Int, transport: String, logLevel: String, stateDirectory: String) -> String {
        """
        feeds:
          gws:
            type: genesys
            base_url: http://127.0.0.1:\(port)
            username: \(user)
            password: ${env:MW_LOADGEN_PASSWORD}
        \(transport == "long-polling" ? "" : "    transport: \(transport)\n")    agent_extension: "3001"
            timeout: 10s
            connect_timeout: 2s
            reconnect_max: 2s
        targets:
          gws-voice:
            type: genesys
            base_url: http://127.0.0.1:\(port)
            username: \(user)
            password: ${env:MW_LOADGEN_PASSWORD}
            timeout: 5s
        policies:
          pause-recording-during-card:
            feeds: [gws]
            start: { attribute: PCI_STAGE, equals: CARD }
            stop:
              any:
                - { attribute: PCI_STAGE, in: [DONE, ABORTED] }
                - { attribute: PCI_STAGE, absent: true }
            max_duration: 10m
            on_timeout: resume
            actions:
              - { kind: pause-recording, target: gws-voice, by: call, deadline: 5s }
          mute-agent-during-card:
            feeds: [gws]
            start: { attribute: PCI_STAGE, equals: CARD }
            stop: { attribute: PCI_STAGE, in: [DONE, ABORTED] }
            max_duration: 10m
            on_timeout: keep
            actions:
              - { kind: mute, target: gws-voice, by: call, deadline: 5s }
        logging:
          level: \(logLevel)
          target: stderr
          attributes: [PCI_STAGE]
        state:
          directory: \(stateDirectory)
        """
    }

    /// `configuration` is given the state directory and returns the configuration's text.
    static func start(binary: String, port: Int, configuration: (String) -> String, cpu: Int?, logFile: String) throws
        -> DaemonProcess
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mutewarden-loadgen-\(getpid())-\(port)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let state = directory.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("mutewarden.yaml")
        try configuration(state.path).write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        // taskset execs the daemon, so the pid is the daemon's own.
        if let cpu {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", String(cpu), binary, "run", "--config", config.path]
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["run", "--config", config.path]
        }
        var environment = ProcessInfo.processInfo.environment
        environment["MW_LOADGEN_PASSWORD"] = password
        environment["MW_LOADGEN_TOKEN"] = token
        environment.removeValue(forKey: "JOURNAL_STREAM")
        process.environment = environment
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        process.standardError = log
        process.standardOutput = log
        try process.run()
        running.store(process.processIdentifier, ordering: .relaxed)
        return DaemonProcess(process: process, directory: directory)
    }

    func stop() {
        DaemonProcess.running.store(0, ordering: .relaxed)
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
