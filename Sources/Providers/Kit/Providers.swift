import MutewardenModel

/// Provider-specific settings decoded from a feed's or target's mapping (all keys besides `type`).
///
/// Settings are compared by value, secrets included, when the configuration is reloaded: a feed or
/// target whose settings are equal keeps its objects, its sessions and its connections; one whose
/// settings changed is rebuilt (docs/architecture.md#reload-by-generations).
public protocol ProviderSettings: Sendable, Equatable {
    /// One line for `check-config`. Must not reveal secrets; a ``Secret``'s description is safe.
    var summary: String { get }
}

extension ProviderSettings {
    /// Whether `other` is the same settings, by value: the same type with equal fields.
    public func isSame(as other: any ProviderSettings) -> Bool {
        guard let other = other as? Self else { return false }
        return self == other
    }
}

public protocol FeedSettings: ProviderSettings {
    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed
}

public protocol TargetSettings: ProviderSettings {
    /// Whether the target's success needs a confirming call event; becomes the engine's
    /// ``TargetDescriptor/confirmsByEvent``.
    var confirmsByEvent: Bool { get }
    /// Why this target cannot perform `kind` addressed `by`, in an operator's words; nil when it
    /// can. `check-config` refuses a policy that asks it (as an action's target or a fallback), so
    /// that an action the platform cannot take is found before a card is read out, not at the
    /// first attempt.
    func refusal(of kind: ActionKind, by addressing: Addressing) -> String?
    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget
}

extension TargetSettings {
    public func refusal(of kind: ActionKind, by addressing: Addressing) -> String? { nil }
}

/// A kind of feed, by its `type:` name.
///
/// `decode` reads the keys it knows through the reader and reports its own problems there; it
/// returns `nil` when the settings are unusable. Keys it never reads are reported as unknown by the
/// loader afterwards.
public struct FeedProvider: Sendable {
    public var type: String
    public var decode: @Sendable (any SettingsReader) -> (any FeedSettings)?

    public init(type: String, decode: @escaping @Sendable (any SettingsReader) -> (any FeedSettings)?) {
        self.type = type
        self.decode = decode
    }
}

/// A kind of action target, by its `type:` name. See ``FeedProvider`` for `decode`.
public struct TargetProvider: Sendable {
    public var type: String
    public var decode: @Sendable (any SettingsReader) -> (any TargetSettings)?

    public init(type: String, decode: @escaping @Sendable (any SettingsReader) -> (any TargetSettings)?) {
        self.type = type
        self.decode = decode
    }
}

/// The provider types a build of the daemon knows: the executable composes it
/// (`BuiltInProviders`), tests compose their own. When two providers claim one type, the first one
/// registered is used.
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

    public func feed(_ type: String) -> FeedProvider? { feeds.first { $0.type == type } }
    public func target(_ type: String) -> TargetProvider? { targets.first { $0.type == type } }

    /// Both registries' providers; the first registration of a type wins.
    public func merging(_ other: ProviderRegistry) -> ProviderRegistry {
        ProviderRegistry(feeds: feeds + other.feeds, targets: targets + other.targets)
    }
}
