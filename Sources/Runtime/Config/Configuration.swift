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

/// A whole, validated configuration: the main file and its drop-ins merged.
public struct DaemonConfiguration: Sendable {
    /// The main file, then the drop-ins, in merge order.
    public var files: [String]
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

    public init(
        files: [String], feeds: [FeedConfiguration], targets: [TargetConfiguration], engine: EngineConfiguration,
        logging: LoggingConfiguration, state: StateConfiguration, ingress: IngressConfiguration? = nil
    ) {
        self.ingress = ingress
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
