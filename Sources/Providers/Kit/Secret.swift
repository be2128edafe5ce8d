/// A credential from the configuration: a password, token or key.
///
/// The value is reachable only through ``reveal()``. Every textual form (`description`,
/// `debugDescription`, `dump`, string interpolation of a struct that holds one) shows the
/// reference instead, so a configuration or an error can be logged whole without leaking it.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Where the value came from: `env:NAME`, `file:/path`, `credential:NAME`, or `inline`.
    public var reference: String
    private let value: String

    public init(reference: String, value: String) {
        self.reference = reference
        self.value = value
    }

    /// The secret itself. Only transports (HTTP headers, login messages) call this, at the moment
    /// they send it.
    public func reveal() -> String { value }

    /// Two secrets are equal when their values are (and they came from the same place): a reload
    /// compares settings by value, so a rotated password behind the same `${file:…}` rebuilds the
    /// provider that uses it. Hashing the value stays in memory; nothing prints it.
    public static func == (lhs: Secret, rhs: Secret) -> Bool { lhs.reference == rhs.reference && lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(reference)
        hasher.combine(value)
    }

    public var description: String { "<secret \(reference)>" }
    public var debugDescription: String { description }
    // Without this, `dump()` and debuggers would walk the stored properties and print the value.
    public var customMirror: Mirror { Mirror(self, children: ["reference": reference], displayStyle: .struct) }
}
