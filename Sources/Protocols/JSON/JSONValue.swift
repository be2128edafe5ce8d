/// A JSON value. Objects keep their members in order (a small array, not a dictionary): platform
/// messages have a dozen keys, for which a linear lookup is faster than hashing, and the order is
/// kept when a message is written back.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .number(let value): hasher.combine(value)
        case .string(let value): hasher.combine(value)
        case .array(let values): hasher.combine(values)
        case .object(let members):
            for (key, value) in members {
                hasher.combine(key)
                hasher.combine(value)
            }
        }
    }

    /// The member named `key` of an object; nil for anything else or a missing key.
    public subscript(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name == key { return value }
        return nil
    }

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    public var int: Int? {
        guard case .number(let value) = self, value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    public var array: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var object: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// A scalar as text: strings as they are, numbers without a trailing ".0", booleans as
    /// true/false. For attached data, whose values platforms send as any scalar type.
    public var scalarText: String? {
        switch self {
        case .string(let value): value
        case .number(let value):
            value.rounded() == value && abs(value) < 9e15 ? String(Int(value)) : String(value)
        case .bool(let value): value ? "true" : "false"
        default: nil
        }
    }
}

extension JSONValue {
    /// Whether the value, written as JSON, takes more than `limit` bytes. Counts string bytes
    /// and punctuation (escapes and number digits approximately) and stops as soon as the limit
    /// is passed, so a huge message costs no more than a small one to reject.
    public func isLarger(than limit: Int) -> Bool {
        var remaining = limit
        return !fits(&remaining)
    }

    private func fits(_ remaining: inout Int) -> Bool {
        switch self {
        case .null, .bool: remaining -= 5
        case .number: remaining -= 8
        case .string(let text): remaining -= text.utf8.count + 2
        case .array(let values):
            remaining -= 2
            for value in values {
                remaining -= 1
                guard remaining >= 0, value.fits(&remaining) else { return false }
            }
        case .object(let members):
            remaining -= 2
            for (key, value) in members {
                remaining -= key.utf8.count + 4
                guard remaining >= 0, value.fits(&remaining) else { return false }
            }
        }
        return remaining >= 0
    }
}
