import MutewardenModel
import MutewardenProviderKit

/// The weaker way to authenticate callbacks: a per-deployment secret in the callback URL's query
/// (`https://daemon.example/acs/callbacks?secret=…`), for deployments that cannot validate the
/// platform's JWT. Weaker because the secret travels in every URL: proxies, load balancers and
/// the platform's own logs may record it, and it never expires on its own (docs/threat_model.md).
public struct QuerySecretAuthenticator: CallbackAuthenticating, CustomStringConvertible {
    public let parameterName: String
    private let secret: Secret

    public init(parameterName: String = "secret", secret: Secret) {
        self.parameterName = parameterName
        self.secret = secret
    }

    public func authenticate(_ request: CallbackRequestHead) async -> CallbackAuthDecision {
        validate(query: request.query)
    }

    /// Checks the query's `parameterName` (percent-decoded; `+` is taken literally, so use a
    /// secret of letters, digits, `-` and `_`). Present twice is refused, as ambiguous.
    public func validate(query: String?) -> CallbackAuthDecision {
        var found: [UInt8]?
        for pair in (query ?? "").utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            guard let name = Self.percentDecoded(pair[pair.startIndex..<equals]), name.elementsEqual(parameterName.utf8) else {
                continue
            }
            guard found == nil else {
                return .refused(.malformed, detail: "the query names \(parameterName) more than once")
            }
            let value = equals == pair.endIndex ? pair[pair.endIndex...] : pair[pair.index(after: equals)...]
            guard let decoded = Self.percentDecoded(value) else {
                return .refused(.malformed, detail: "the query's \(parameterName) is not validly percent-encoded")
            }
            found = decoded
        }
        guard let found, !found.isEmpty else { return .refused(.missing, detail: "no \(parameterName) in the query") }
        guard ConstantTime.equals(found, Array(secret.reveal().utf8)) else {
            return .refused(.wrongSecret, detail: "the query's \(parameterName) does not match")
        }
        return .accepted(.sharedSecret)
    }

    /// nil for a `%` not followed by two hex digits.
    static func percentDecoded(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                result.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            result.append(high << 4 | low)
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var description: String { "query secret '\(parameterName)' (\(secret))" }
}
