/// What an HTTP ingress knows of a callback before it reads the body: enough to authenticate it.
public struct CallbackRequestHead: Sendable, Hashable {
    public var method: String
    /// The path, without the query.
    public var path: String
    /// The query, without the `?`; nil when the URL has none.
    public var query: String?
    /// Header names and values as received (names compared case-insensitively).
    public var headers: [(name: String, value: String)]
    /// The peer's address, for the audit record of a refusal.
    public var peer: String

    public init(method: String, path: String, query: String? = nil, headers: [(name: String, value: String)] = [], peer: String = "") {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.peer = peer
    }

    /// The first header of that name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.query == rhs.query && lhs.peer == rhs.peer
            && lhs.headers.count == rhs.headers.count && zip(lhs.headers, rhs.headers).allSatisfy { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(path)
        hasher.combine(query)
        hasher.combine(peer)
        for header in headers {
            hasher.combine(header.name)
            hasher.combine(header.value)
        }
    }
}

/// Anything that decides whether a callback comes from the platform: a JWT check, a query secret.
/// May suspend (a JWT check may have to fetch the issuer's keys); never throws, never reads a body.
public protocol CallbackAuthenticating: Sendable {
    func authenticate(_ request: CallbackRequestHead) async -> CallbackAuthDecision
}

/// Why a callback was refused. The raw value is what an audit record and a metric label show.
public enum CallbackAuthRefusal: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// No credential at all: no `Authorization` header, or no secret in the query.
    case missing
    /// Not a bearer JWT (or not one this code can read), or an ambiguous query.
    case malformed
    /// A signing algorithm not allowed (`none`, `HS256` against a public key, …).
    case disallowedAlgorithm = "disallowed-algorithm"
    /// Signed with a key the issuer does not publish, even after a refresh of its keys.
    case unknownKey = "unknown-key"
    /// The signature does not verify with the issuer's key: forged or altered.
    case badSignature = "bad-signature"
    case expired
    case notYetValid = "not-yet-valid"
    case wrongIssuer = "wrong-issuer"
    case wrongAudience = "wrong-audience"
    /// An extra required claim (Graph: the tenant) is missing or different.
    case wrongClaim = "wrong-claim"
    /// The query secret does not match.
    case wrongSecret = "wrong-secret"
    /// The issuer's signing keys could not be fetched: nothing can be verified now. Not the
    /// caller's fault, so an ingress answers 503 and the platform retries later.
    case keysUnavailable = "keys-unavailable"

    public var description: String { rawValue }

    /// The HTTP status an ingress answers with.
    public var httpStatus: Int { self == .keysUnavailable ? 503 : 401 }
}

/// Who a validated token says sent the callback.
public struct CallbackIdentity: Sendable, Hashable, CustomStringConvertible {
    public var issuer: String?
    /// The audience that matched the configuration.
    public var audience: String?
    public var subject: String?
    public var keyID: String?
    /// `exp`, in seconds since the epoch.
    public var expiresAt: Double?

    public init(issuer: String? = nil, audience: String? = nil, subject: String? = nil, keyID: String? = nil, expiresAt: Double? = nil) {
        self.issuer = issuer
        self.audience = audience
        self.subject = subject
        self.keyID = keyID
        self.expiresAt = expiresAt
    }

    /// The identity of a callback authenticated by a shared secret: it names no one.
    public static let sharedSecret = CallbackIdentity()

    public var description: String {
        guard issuer != nil || keyID != nil else { return "shared secret" }
        return "issuer \(issuer ?? "?"), audience \(audience ?? "?"), key \(keyID ?? "?")"
    }
}

/// The outcome of authenticating one callback. Its texts never hold the token or the secret: a
/// refusal's detail names what was wrong (a claim's name, the issuer a valid token named), fit
/// for an audit record.
public enum CallbackAuthDecision: Sendable, Hashable, CustomStringConvertible {
    case accepted(CallbackIdentity)
    case refused(CallbackAuthRefusal, detail: String)

    public var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }

    public var refusal: CallbackAuthRefusal? {
        if case .refused(let reason, _) = self { return reason }
        return nil
    }

    public var description: String {
        switch self {
        case .accepted(let identity): "accepted (\(identity))"
        case .refused(let reason, let detail): "refused: \(reason) (\(detail))"
        }
    }

    /// A claim or issuer value for a detail text: printable, bounded.
    static func shown(_ text: String, limit: Int = 120) -> String {
        let printable = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        return printable.count > limit ? "'" + printable.prefix(limit) + "…'" : "'\(printable)'"
    }
}
