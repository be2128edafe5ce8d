import MutewardenIngress
import MutewardenModel

/// What a provider gets when the daemon builds it.
public struct ProviderContext: Sendable {
    /// Emits an audit record: the provider's way to report connection state and trouble.
    public var report: @Sendable (AuditSeverity, String, AuditFields) -> Void
    /// What the providers of one daemon share: its HTTP transport, a platform login used by both a
    /// feed and a target. One per daemon, so that nothing outlives it or leaks into another.
    public let shared: SharedResources
    /// Who asks for shared resources through this context: "feed gws", "target voice". The daemon
    /// closes a resource once no owner of the running configuration uses it.
    public let owner: String
    /// The configuration generation the provider is built for (1 at start, one more per reload).
    /// Resources are shared within a generation only: a provider rebuilt at a reload never gets a
    /// session made from an earlier configuration, so every setting it was made from takes effect.
    public let generation: Int
    /// The daemon's callback listener, for a feed whose platform calls it (ACS, Graph): the feed
    /// registers its path with an authenticator and a handler. The daemon starts listening at the
    /// first registration, with the configuration's `ingress:` settings; without them, `register`
    /// throws, saying so. Nil where there is no daemon (a provider built on its own).
    public let ingress: (any IngressRouter)?

    public init(
        report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void,
        shared: SharedResources = SharedResources(), owner: String = "provider", generation: Int = 1,
        ingress: (any IngressRouter)? = nil
    ) {
        self.report = report
        self.shared = shared
        self.owner = owner
        self.generation = generation
        self.ingress = ingress
    }

    /// The same context for another owner, in `generation`.
    public func owned(by owner: String, generation: Int? = nil) -> ProviderContext {
        ProviderContext(report: report, shared: shared, owner: owner, generation: generation ?? self.generation, ingress: ingress)
    }

    /// The resource for `key`, made by `make` if no provider of this generation has asked for it
    /// yet, and claimed for this context's owner.
    public func resource<Value: Sendable>(_ key: ResourceKey<Value>, make: () throws -> Value) throws -> Value {
        try shared.resource(key, owner: owner, generation: generation, make: make)
    }
}

/// Something shared by providers that holds an outside resource (a login, connections): closed
/// when the last provider of the running configuration that used it is gone.
public protocol ClosableResource: Sendable {
    func close()
}

/// A typed name for a shared resource.
///
/// `identity` holds every setting the resource is made from, secrets included, compared by value:
/// two providers share the resource only when they would have made the same one, and a reload that
/// changes one of those settings (a rotated password, a TLS option, a timeout) gets a new one. The
/// key's description shows `kind` and `label` only, never the identity.
public struct ResourceKey<Value: Sendable>: Sendable, Hashable, CustomStringConvertible {
    public var kind: String
    /// What an operator may read in a log line: a URL and a user name, never a secret.
    public var label: String
    public var identity: AnyHashableSendable

    public init(kind: String, label: String, identity: some Hashable & Sendable) {
        self.kind = kind
        self.label = label
        self.identity = AnyHashableSendable(identity)
    }

    public var description: String { "\(kind) \(label)" }

    var erased: ErasedKey { ErasedKey(kind: kind, value: "\(Value.self)", identity: identity) }
}

/// `AnyHashable`, for values that are also `Sendable`.
public struct AnyHashableSendable: Hashable, Sendable {
    // A boxed Hashable & Sendable value: AnyHashable itself is not declared Sendable.
    private let box: any HashableBox

    public init(_ value: some Hashable & Sendable) { box = Box(value: value) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.box.isEqual(to: rhs.box) }
    public func hash(into hasher: inout Hasher) { box.hash(into: &hasher) }
}

private protocol HashableBox: Sendable {
    func isEqual(to other: any HashableBox) -> Bool
    func hash(into hasher: inout Hasher)
}

private struct Box<T: Hashable & Sendable>: HashableBox {
    var value: T
    func isEqual(to other: any HashableBox) -> Bool { (other as? Box<T>)?.value == value }
    func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(T.self))
        hasher.combine(value)
    }
}

struct ErasedKey: Hashable, Sendable {
    var kind: String
    var value: String
    var identity: AnyHashableSendable
}

/// Objects shared by the providers of one daemon, by typed key, with the owners that use each.
/// The first to ask makes it.
public final class SharedResources: Sendable {
    private struct Entry {
        var value: any Sendable
        var label: String
        var owners: Set<String>
    }
    /// Keyed by the typed key and the generation that made the entry; nil for what the daemon
    /// provided, which every generation shares.
    private struct EntryKey: Hashable {
        var key: ErasedKey
        var generation: Int?
    }
    private let entries = Locked<[EntryKey: Entry]>([:])

    public init() {}

    /// The object for `key`: the one the daemon provided, or the one made for `generation`, made
    /// by `make` if nobody of that generation has asked for it yet; claimed for `owner`. `make`
    /// runs under the lock, so two providers asking at once get the same object.
    public func resource<Value: Sendable>(
        _ key: ResourceKey<Value>, owner: String, generation: Int = 1, make: () throws -> Value
    ) throws -> Value {
        try entries.withLock { entries in
            for entryKey in [EntryKey(key: key.erased, generation: nil), EntryKey(key: key.erased, generation: generation)] {
                guard let existing = entries[entryKey] else { continue }
                guard let value = existing.value as? Value else {
                    throw SharedResourceError(name: key.description, expected: "\(Value.self)", found: "\(type(of: existing.value))")
                }
                entries[entryKey]?.owners.insert(owner)
                return value
            }
            let value = try make()
            entries[EntryKey(key: key.erased, generation: generation)] = Entry(value: value, label: key.description, owners: [owner])
            return value
        }
    }

    /// Sets `key` to `value` for every owner, before any provider asks for it (the daemon's HTTP
    /// transport). A provided resource is never released.
    public func provide<Value: Sendable>(_ key: ResourceKey<Value>, _ value: Value) {
        entries.withLock { $0[EntryKey(key: key.erased, generation: nil)] = Entry(value: value, label: key.description, owners: [Self.daemon]) }
    }

    private static let daemon = "\u{0}daemon"

    /// Forgets the claims of every owner but `owners` (and the daemon's): their providers were
    /// rebuilt or removed, or never went into service.
    public func retainClaims(of owners: Set<String>) {
        entries.withLock { entries in
            for key in Array(entries.keys) {
                entries[key]?.owners.formIntersection(owners.union([Self.daemon]))
            }
        }
    }

    /// Removes and closes every resource no owner claims any more. Returns their labels (URLs and
    /// user names, never a secret) for the audit record.
    @discardableResult
    public func closeUnclaimed() -> [String] {
        let released = entries.withLock { entries -> [(String, any Sendable)] in
            let unclaimed = entries.filter { $0.value.owners.isEmpty }
            for key in unclaimed.keys { entries[key] = nil }
            return unclaimed.values.map { ($0.label, $0.value) }
        }
        // Outside the lock: closing may wait for a transport.
        for (_, value) in released { (value as? any ClosableResource)?.close() }
        return released.map(\.0).sorted()
    }

    /// Labels of the resources held now, for tests and status.
    public var labels: [String] { entries.withLock { $0.values.map(\.label) }.sorted() }
}

/// Two providers used one key for different things: a bug, reported rather than crashing.
public struct SharedResourceError: Error, CustomStringConvertible {
    public var name: String
    public var expected: String
    public var found: String
    public var description: String { "shared resource '\(name)' is a \(found), not a \(expected) (a bug)" }
}
