import MutewardenModel
import Synchronization

/// Provider-specific settings decoded from a feed's or target's mapping (all keys besides `type`).
public protocol ProviderSettings: Sendable {
    /// One line for `check-config`. Must not reveal secrets; a ``Secret``'s description is safe.
    var summary: String { get }
}

/// What a provider gets when the daemon builds it.
public struct ProviderContext: Sendable {
    /// Emits an audit record: the provider's way to report connection state and trouble.
    public var report: @Sendable (AuditSeverity, String, AuditFields) -> Void
    /// What the providers of one daemon share: its HTTP transport, a platform login used by both a
    /// feed and a target. One per daemon, so that nothing outlives it or leaks into another.
    public let shared: SharedResources

    public init(
        report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void, shared: SharedResources = SharedResources()
    ) {
        self.report = report
        self.shared = shared
    }
}

/// Objects shared by the providers of one daemon, by name. The first to ask makes it.
public final class SharedResources: Sendable {
    private let entries = Mutex<[String: any Sendable]>([:])

    public init() {}

    /// The object named `name`, made by `make` if nobody has asked for it yet. `make` runs under
    /// the lock, so two providers asking at once get the same object.
    public func resource<Value: Sendable>(_ name: String, make: () throws -> Value) throws -> Value {
        try entries.withLock { entries in
            if let existing = entries[name] {
                guard let value = existing as? Value else {
                    throw SharedResourceError(name: name, expected: "\(Value.self)", found: "\(type(of: existing))")
                }
                return value
            }
            let value = try make()
            entries[name] = value
            return value
        }
    }

    /// Sets `name` to `value` before any provider asks for it (the daemon's HTTP transport).
    public func provide(_ name: String, _ value: some Sendable) {
        entries.withLock { $0[name] = value }
    }
}

/// Two providers used one name for different things: a bug, reported rather than crashing.
public struct SharedResourceError: Error, CustomStringConvertible {
    public var name: String
    public var expected: String
    public var found: String
    public var description: String { "shared resource '\(name)' is a \(found), not a \(expected) (a bug)" }
}

public protocol FeedSettings: ProviderSettings {
    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed
}

public protocol TargetSettings: ProviderSettings {
    /// Whether the target's success needs a confirming call event; becomes the engine's
    /// ``TargetDescriptor/confirmsByEvent``.
    var confirmsByEvent: Bool { get }
    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget
}

/// A kind of feed, by its `type:` name.
///
/// `decode` reads the keys it knows from the section and reports its own problems through the
/// section; it returns `nil` when the settings are unusable. Keys it never reads are reported as
/// unknown by the loader afterwards.
public struct FeedProvider: Sendable {
    public var type: String
    public var decode: @Sendable (ConfigSection) -> (any FeedSettings)?

    public init(type: String, decode: @escaping @Sendable (ConfigSection) -> (any FeedSettings)?) {
        self.type = type
        self.decode = decode
    }
}

/// A kind of action target, by its `type:` name. See ``FeedProvider`` for `decode`.
public struct TargetProvider: Sendable {
    public var type: String
    public var decode: @Sendable (ConfigSection) -> (any TargetSettings)?

    public init(type: String, decode: @escaping @Sendable (ConfigSection) -> (any TargetSettings)?) {
        self.type = type
        self.decode = decode
    }
}

/// The provider types a build of the daemon knows. When two providers claim one type, the first
/// one registered is used.
public struct ProviderRegistry: Sendable {
    private let feeds: [FeedProvider]
    private let targets: [TargetProvider]

    public init(feeds: [FeedProvider], targets: [TargetProvider]) {
        self.feeds = feeds
        self.targets = targets
    }

    /// Known feed types, sorted, for error messages and `check-config`.
    public var feedTypes: [String] { Array(Set(feeds.map(\.type))).sorted() }
    public var targetTypes: [String] { Array(Set(targets.map(\.type))).sorted() }

    func feed(_ type: String) -> FeedProvider? { feeds.first { $0.type == type } }
    func target(_ type: String) -> TargetProvider? { targets.first { $0.type == type } }
}
