import MutewardenModel

/// A policy condition prepared for evaluation on every event: regexes compiled once, state sets as
/// bit masks.
indirect enum CompiledCondition: @unchecked Sendable {
    // @unchecked: `Regex<AnyRegexOutput>` is not declared Sendable, but a compiled Regex is an
    // immutable value that is only ever matched (read), never mutated, after compilation here.
    case all([CompiledCondition])
    case any([CompiledCondition])
    case equals(String, String)
    case notEquals(String, String)
    case oneOf(String, Set<String>)
    case matches(String, Regex<AnyRegexOutput>)
    case present(String)
    case absent(String)
    case state(UInt8)

    struct InvalidPattern: Error, CustomStringConvertible {
        var pattern: String
        var underlying: String
        var description: String { "invalid regular expression '\(pattern)': \(underlying)" }
    }

    init(_ condition: Condition) throws {
        switch condition {
        case .all(let items): self = .all(try items.map(CompiledCondition.init))
        case .any(let items): self = .any(try items.map(CompiledCondition.init))
        case .attributeEquals(let key, let value): self = .equals(key, value)
        case .attributeNotEquals(let key, let value): self = .notEquals(key, value)
        case .attributeIn(let key, let values): self = .oneOf(key, values)
        case .attributeMatches(let key, let pattern):
            do {
                self = .matches(key, try Regex(pattern))
            } catch {
                throw InvalidPattern(pattern: pattern, underlying: "\(error)")
            }
        case .attributePresent(let key): self = .present(key)
        case .attributeAbsent(let key): self = .absent(key)
        case .state(let states):
            var mask: UInt8 = 0
            for state in states { mask |= Self.bit(state) }
            self = .state(mask)
        }
    }

    static func bit(_ state: CallState) -> UInt8 {
        switch state {
        case .ringing: 1
        case .dialing: 2
        case .established: 4
        case .held: 8
        case .released: 16
        }
    }

    /// Attached data is usually a handful of pairs: comparing keys (short strings compare as two
    /// machine words) is cheaper than hashing the key with SipHash for a dictionary lookup.
    @inline(__always)
    static func lookup(_ key: String, in attributes: [String: String]) -> String? {
        guard attributes.count > 8 else {
            for (candidate, value) in attributes where candidate == key { return value }
            return nil
        }
        return attributes[key]
    }

    func holds(attributes: [String: String], state: CallState) -> Bool {
        switch self {
        case .all(let items):
            for item in items where !item.holds(attributes: attributes, state: state) { return false }
            return true
        case .any(let items):
            for item in items where item.holds(attributes: attributes, state: state) { return true }
            return false
        case .equals(let key, let value): return Self.lookup(key, in: attributes) == value
        case .notEquals(let key, let value): return Self.lookup(key, in: attributes) != value
        case .oneOf(let key, let values):
            guard let value = Self.lookup(key, in: attributes) else { return false }
            return values.contains(value)
        case .matches(let key, let regex):
            guard let value = Self.lookup(key, in: attributes) else { return false }
            return (try? regex.wholeMatch(in: value)) != nil
        case .present(let key): return Self.lookup(key, in: attributes) != nil
        case .absent(let key): return Self.lookup(key, in: attributes) == nil
        case .state(let mask): return mask & Self.bit(state) != 0
        }
    }
}
