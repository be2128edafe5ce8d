import ArgumentParser
import CMutewardenShims
import CMutewardenStartup
import Logging
import MutewardenConfig
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses from sysexits(3), so that systemd and scripts can tell a bad configuration
/// (which a restart will not fix) from a crash.
enum ExitStatus {
    static let ok: Int32 = 0
    static let usage: Int32 = 64
    static let software: Int32 = 70
    static let config: Int32 = 78
}

@main
struct Mutewarden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutewarden",
        abstract: "Keeps card numbers out of call recordings: follows call events and mutes calls or pauses "
            + "recordings while card data is taken, as PCI policies say.",
        version: MutewardenVersion.current,
        subcommands: [Run.self, CheckConfig.self, Status.self, ReportCommand.self, Version.self],
        defaultSubcommand: nil)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "The configuration file. Drop-ins in conf.d/*.yaml beside it are merged in name order.")
    var config = "/etc/mutewarden/mutewarden.yaml"
}

/// Loads the configuration, or prints every error with file:line:column and exits 78.
func loadConfiguration(_ path: String) throws -> DaemonConfiguration {
    do {
        return try ConfigurationLoader(registry: BuiltInProviders.registry).load(path: path)
    } catch {
        for diagnostic in error.diagnostics { printError("\(diagnostic)") }
        let count = error.diagnostics.count
        printError("mutewarden: \(path): \(count) error\(count == 1 ? "" : "s"); configuration refused")
        throw ExitCode(ExitStatus.config)
    }
}

func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: follow the configured feeds and enforce the policies until SIGTERM.")

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("for"), help: "Stop by itself after this long (e.g. 30s, 5m): for demos and tests.")
    var runFor: String?

    func validate() throws {
        if let runFor, parseDuration(runFor) == nil {
            throw ValidationError("--for expects a duration such as 30s, 5m or 1h, not '\(runFor)'")
        }
    }

    func run() async throws {
        let configuration = try loadConfiguration(options.config)
        let level = AuditLogger.level(for: configuration.logging.level)
        let backend = LogBackend.select(configured: LogBackend.Request(configuration.logging.target))
        let factory = backend.backend.factory(logLevel: level)
        LoggingSystem.bootstrap { label in factory(label, nil) }
        let logger = Logger(label: "mutewarden")
        // Once, after bootstrap, so that it reaches the log it is about.
        if let warning = backend.warning { logger.warning("\(warning)") }
        // jemalloc, linked in (startup.c): with another malloc the daemon still works, with
        // markedly less throughput (docs/performance.md), which an operator sizing a site should
        // know.
        if Allocator.current == nil { logger.warning("malloc is not jemalloc's: expect less throughput") }
        logger.debug("logging to \(backend.backend.rawValue): \(backend.reason)")
        let watcher = SignalWatcher()
        let daemon: Daemon
        do {
            let path = options.config
            var daemonOptions = Daemon.Options()
            daemonOptions.controlSocket = configuration.control.socketPath(
                environment: getenv("RUNTIME_DIRECTORY").map { ["RUNTIME_DIRECTORY": String(cString: $0)] } ?? [:])
            daemon = try Daemon(
                configuration: configuration, logger: logger, options: daemonOptions,
                reloader: { () throws(ConfigurationError) -> DaemonConfiguration in
                    try ConfigurationLoader(registry: BuiltInProviders.registry).load(path: path)
                })
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(ExitStatus.config)
        }
        let status: Int32
        do {
            status = try await daemon.run(signals: watcher.signals, for: runFor.flatMap(parseDuration))
        } catch {
            logger.critical("mutewarden failed: \(error)")
            throw ExitCode(ExitStatus.software)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

extension LogBackend.Request {
    init(_ target: LogTarget) {
        switch target {
        case .auto: self = .auto
        case .stderr: self = .stderr
        case .journal: self = .journal
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration and print what it sets up; exit 78 with every error if it is bad.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try loadConfiguration(options.config)
        var lines = ["configuration OK: \(configuration.files.joined(separator: ", "))"]
        lines.append("feeds:")
        for feed in configuration.feeds { lines.append("  \(feed.name) (\(feed.type)): \(feed.settings.summary)") }
        lines.append("targets:")
        for target in configuration.targets {
            lines.append("  \(target.name) (\(target.type)): \(target.settings.summary)")
        }
        lines.append("policies:")
        for policy in configuration.engine.policies {
            let actions = policy.actions.map { action in
                "\(action.kind.rawValue) via \(action.target) by \(action.addressing.rawValue) within \(action.deadline.compact)"
                    + (action.fallback.isEmpty ? "" : ", fallback \(action.fallback.joined(separator: ", "))")
            }
            lines.append(
                "  \(policy.name) (\(policy.mode.rawValue), scope \(policy.scope.rawValue), feeds "
                    + "\(policy.feeds.joined(separator: ", ")), cap \(policy.maxDuration.compact) then \(policy.onTimeout.rawValue)): "
                    + actions.joined(separator: "; "))
        }
        lines.append(
            "logging: level \(AuditLogger.severityName(configuration.logging.level)), target "
                + "\(configuration.logging.target.rawValue), attribute values shown for: "
                + (configuration.logging.attributeAllowlist.isEmpty
                    ? "none" : configuration.logging.attributeAllowlist.sorted().joined(separator: ", ")))
        lines.append(
            "state: \(configuration.state.directory), at most \(configuration.state.limits.maxCalls) calls, "
                + "idle limit \(configuration.state.limits.idleLimit.compact)")
        print(lines.joined(separator: "\n"))
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("mutewarden \(MutewardenVersion.current)")
        print("allocator: \(Allocator.current ?? "another malloc: jemalloc is not in use")")
    }
}

/// What the process allocates with: "jemalloc VERSION, N arena(s)", or nil if malloc is not
/// jemalloc's.
enum Allocator {
    static var current: String? {
        guard let version = mw_startup_allocator() else { return nil }
        let arenas = mw_startup_arenas()
        return "jemalloc \(String(cString: version)), \(arenas) arena\(arenas == 1 ? "" : "s")"
    }
}
