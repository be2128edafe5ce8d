import ArgumentParser
import Foundation
import MutewardenConfig
import MutewardenControl
import MutewardenDaemon

#if canImport(Glibc)
import Glibc
#endif

/// sysexits(3) statuses of `mutewarden status` (docs/operations.md#looking-at-a-running-daemon).
extension ExitStatus {
    /// No daemon: no socket, or nothing listening on it; or too many clients at once.
    static let unavailable: Int32 = 69
    /// The daemon's answer could not be read.
    static let protocolError: Int32 = 76
    /// A daemon is there but did not answer within the timeout.
    static let temporaryFailure: Int32 = 75
    /// The socket's mode, or the daemon, refused this user.
    static let noPermission: Int32 = 77
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running daemon's state: feeds, open windows, actions in progress, control failures, load.",
        discussion: """
            Asks the daemon through its control socket (root and the daemon's user only). Exit status: 0 answered, \
            69 no daemon listening, 75 no answer within the timeout, 76 unreadable answer, 77 permission denied.
            """)

    @Flag(help: "Print the answer as JSON (schema in docs/operations.md), for scripts.")
    var json = false

    @Option(help: "The control socket (default: $RUNTIME_DIRECTORY/control.sock, else /run/mutewarden/control.sock).")
    var socket: String?

    @Option(help: ArgumentHelp("How long to wait for the answer.", visibility: .hidden))
    var timeout: String = "1s"

    func validate() throws {
        guard let duration = parseDuration(timeout), duration > .zero else {
            throw ValidationError("--timeout expects a duration such as 1s or 500ms, not '\(timeout)'")
        }
    }

    func run() throws {
        let path = socket ?? ControlConfiguration.defaultSocket(environment: ProcessInfo.processInfo.environment)
        let deadline = parseDuration(timeout) ?? .seconds(1)
        switch ControlClient.ask("status", path: path, timeout: deadline) {
        case .failure(let failure):
            let (code, status): (String, Int32) =
                switch failure {
                case .noSocket, .notListening: ("not-running", ExitStatus.unavailable)
                case .permissionDenied: ("permission-denied", ExitStatus.noPermission)
                case .timedOut: ("timeout", ExitStatus.temporaryFailure)
                case .badAnswer: ("bad-answer", ExitStatus.protocolError)
                case .system: ("unavailable", ExitStatus.unavailable)
                }
            try fail(code: code, "\(failure)", status: status)
        case .success(let line):
            guard let answer = try? DaemonStatus.decoder().decode(ControlAnswer.self, from: Data(line.utf8)) else {
                try fail(code: "bad-answer", "the daemon's answer is not the status this version reads", status: ExitStatus.protocolError)
            }
            guard answer.ok, let status = answer.status else {
                let code = answer.code ?? "error"
                let why = answer.error ?? "the daemon refused the request"
                switch code {
                case "refused": try fail(code: code, "permission denied: \(why)", status: ExitStatus.noPermission)
                case "busy": try fail(code: code, why, status: ExitStatus.unavailable)
                default: try fail(code: code, why, status: ExitStatus.protocolError)
                }
            }
            if json {
                // The daemon's own JSON, laid out: a field a newer daemon adds is kept.
                let data = (try? JSONSerialization.jsonObject(with: Data(line.utf8)))
                    .flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) }
                print(String(decoding: data ?? Data(line.utf8), as: UTF8.self))
            } else {
                print(StatusText.render(status, width: terminalWidth()))
            }
        }
    }

    /// Prints the failure (as JSON with `--json`) and exits with `status`.
    private func fail(code: String, _ message: String, status: Int32) throws -> Never {
        if json { print(controlErrorAnswer(code: code, message)) }
        printError("mutewarden status: \(message)")
        throw ExitCode(status)
    }

    private func terminalWidth() -> Int {
        var size = winsize()
        if isatty(1) != 0, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 20 { return columns }
        return 120
    }
}
