import MutewardenProviderKit
import MutewardenIngress
import MutewardenModel

/// One configured feed: its name, its provider type and that provider's decoded settings.
public struct FeedConfiguration: Sendable {
    public var name: String
    public var type: String
    public var settings: any FeedSettings
    /// Where the feed's name is written.
    public var location: SourceLocation

    public init(name: String, type: String, settings: any FeedSettings, location: SourceLocation) {
        self.name = name
        self.type = type
        self.settings = settings
        self.location = location
    }
}

/// One configured action target.
public struct TargetConfiguration: Sendable {
    public var name: String
    public var type: String
    public var settings: any TargetSettings
    /// Where the target's name is written.
    public var location: SourceLocation

    public init(name: String, type: String, settings: any TargetSettings, location: SourceLocation) {
        self.name = name
        self.type = type
        self.settings = settings
        self.location = location
    }
}

public enum LogTarget: String, Sendable, CaseIterable {
    /// The logging module picks: the journal under systemd, standard error otherwise.
    case auto
    case stderr
    case journal
}

public struct LoggingConfiguration: Sendable {
    /// The least severe record that is logged.
    public var level: AuditSeverity
    public var target: LogTarget
    /// Call attributes whose values may appear in logs. Every other attribute is logged by name
    /// only: attached data can hold card numbers.
    public var attributeAllowlist: Set<String>

    public init(level: AuditSeverity = .info, target: LogTarget = .auto, attributeAllowlist: Set<String> = []) {
        self.level = level
        self.target = target
        self.attributeAllowlist = attributeAllowlist
    }
}

public struct StateConfiguration: Sendable {
    /// Where the daemon keeps what must survive a restart (open windows, actions in place).
    public var directory: String
    public var limits: TrackerLimits
    /// How often the window journal's records are also `fdatasync`ed; zero, at every group
    /// commit. Records are written within milliseconds either way, which is what a SIGKILL needs;
    /// the sync covers a power loss (docs/operations.md#the-window-journal).
    public var journalSyncInterval: Duration

    public init(
        directory: String = "/var/lib/mutewarden", limits: TrackerLimits = TrackerLimits(), journalSyncInterval: Duration = .seconds(1)
    ) {
        self.directory = directory
        self.limits = limits
        self.journalSyncInterval = journalSyncInterval
    }
}

/// The Prometheus metrics listener (`metrics:`): off unless `enabled: true`, on loopback unless
/// told otherwise (docs/operations.md#metrics).
public struct MetricsConfiguration: Sendable, Hashable {
    /// Address, port and TLS, with the ingress's rules (plain HTTP off loopback only behind a proxy).
    public var listener: IngressConfiguration
    /// The one path scraped; every other path is answered 404.
    public var path: String

    public static let defaultPort = 9464

    public init(listener: IngressConfiguration, path: String = "/metrics") {
        self.listener = listener
        self.path = path
    }

    /// Loopback, plain HTTP, and limits sized for one scraper: a scrape is a GET with no body.
    public static func loopback(port: Int = defaultPort, path: String = "/metrics") -> MetricsConfiguration {
        MetricsConfiguration(listener: listenerDefaults(address: "127.0.0.1", port: port, security: .plain(behindProxy: false)), path: path)
    }

    public static func listenerDefaults(address: String, port: Int, security: IngressConfiguration.Security) -> IngressConfiguration {
        var listener = IngressConfiguration(address: address, port: port, security: security)
        listener.maximumBodySize = 1
        listener.maximumHeaderSize = 4096
        listener.maximumConnections = 16
        listener.headerTimeout = .seconds(5)
        listener.bodyTimeout = .seconds(5)
        listener.authenticationTimeout = .seconds(1)
        listener.handlerTimeout = .seconds(10)
        return listener
    }
}

/// A whole, validated configuration: the main file and its drop-ins merged.
public struct DaemonConfiguration: Sendable {
    /// The main file, then the drop-ins, in merge order.
    public var files: [String]
    /// `sha256:` and the SHA-256 of the files' bytes in merge order (`cat` of them into
    /// `sha256sum`), for the `config.loaded` record: an assessor ties it to a change ticket.
    public var digest: String? = nil
    public var feeds: [FeedConfiguration]
    public var targets: [TargetConfiguration]
    /// Policies, a descriptor per target (in target order) and the tracker limits from `state`.
    public var engine: EngineConfiguration
    public var logging: LoggingConfiguration
    public var state: StateConfiguration
    /// The callback listener (`ingress:`), started only once a feed registers a route on it.
    public var ingress: IngressConfiguration?
    /// The control socket `mutewarden status` asks (`control:`).
    public var control = ControlConfiguration()
    /// The metrics listener (`metrics:` with `enabled: true`); nil when off, the default.
    public var metrics: MetricsConfiguration?

    public init(
        files: [String], feeds: [FeedConfiguration], targets: [TargetConfiguration], engine: EngineConfiguration,
        logging: LoggingConfiguration, state: StateConfiguration, ingress: IngressConfiguration? = nil,
        metrics: MetricsConfiguration? = nil
    ) {
        self.ingress = ingress
        self.metrics = metrics
        self.files = files
        self.feeds = feeds
        self.targets = targets
        self.engine = engine
        self.logging = logging
        self.state = state
    }
}

/// `control:`: the local socket through which `mutewarden status` asks the running daemon.
public struct ControlConfiguration: Sendable, Hashable {
    /// The socket's path; nil for the default (``defaultSocket(environment:)``).
    public var socket: String?
    public var enabled: Bool

    public init(socket: String? = nil, enabled: Bool = true) {
        self.socket = socket
        self.enabled = enabled
    }

    /// `$RUNTIME_DIRECTORY/control.sock` under systemd (`RuntimeDirectory=mutewarden`), else
    /// `/run/mutewarden/control.sock`, where that directive puts it.
    public static func defaultSocket(environment: [String: String]) -> String {
        // With several RuntimeDirectory= entries systemd lists them all, separated by colons.
        if let directory = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, directory.hasPrefix("/") {
            return directory + "/control.sock"
        }
        return "/run/mutewarden/control.sock"
    }

    /// Where the daemon listens, or nil when the socket is off.
    public func socketPath(environment: [String: String]) -> String? {
        guard enabled else { return nil }
        return socket ?? Self.defaultSocket(environment: environment)
    }
}
