import JWTKit

/// The claims of a callback's JWT that the checks read, decoded by jwt-kit once the signature
/// has verified. Every other top-level string claim is kept in ``strings`` for the extra checks
/// (Graph's `tid`). A claim of the wrong type (`exp` as text) makes the token malformed.
public struct CallbackClaims: JWTPayload, Sendable, Hashable {
    public var issuer: String?
    /// `aud`, which may be one string or a list.
    public var audiences: [String]
    public var subject: String?
    /// NumericDate values, seconds since the epoch.
    public var expiration: Double?
    public var notBefore: Double?
    public var issuedAt: Double?
    public var strings: [String: String]

    public init(
        issuer: String? = nil, audiences: [String] = [], subject: String? = nil, expiration: Double? = nil, notBefore: Double? = nil,
        issuedAt: Double? = nil, strings: [String: String] = [:]
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.subject = subject
        self.expiration = expiration
        self.notBefore = notBefore
        self.issuedAt = issuedAt
        self.strings = strings
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Claims beyond this many are ignored: a token is a few dozen, and this bounds the work a
    /// hostile one makes (it is decoded only after its signature verified, but still).
    static let maximumClaims = 256

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.init()
        for key in container.allKeys.prefix(Self.maximumClaims) {
            switch key.stringValue {
            case "iss": issuer = try container.decode(String.self, forKey: key)
            case "sub": subject = try container.decode(String.self, forKey: key)
            case "aud":
                if let one = try? container.decode(String.self, forKey: key) {
                    audiences = [one]
                } else {
                    audiences = try container.decode([String].self, forKey: key)
                }
            case "exp": expiration = try Self.numericDate(container, key)
            case "nbf": notBefore = try Self.numericDate(container, key)
            case "iat": issuedAt = try Self.numericDate(container, key)
            default:
                if let value = try? container.decode(String.self, forKey: key) { strings[key.stringValue] = value }
            }
        }
    }

    private static func numericDate(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> Double {
        let value = try container.decode(Double.self, forKey: key)
        guard value.isFinite else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not a finite NumericDate")
        }
        return value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in strings { try container.encode(value, forKey: Key(name)) }
        try container.encodeIfPresent(issuer, forKey: Key("iss"))
        try container.encodeIfPresent(subject, forKey: Key("sub"))
        if audiences.count == 1 {
            try container.encode(audiences[0], forKey: Key("aud"))
        } else if !audiences.isEmpty {
            try container.encode(audiences, forKey: Key("aud"))
        }
        try container.encodeIfPresent(expiration, forKey: Key("exp"))
        try container.encodeIfPresent(notBefore, forKey: Key("nbf"))
        try container.encodeIfPresent(issuedAt, forKey: Key("iat"))
    }

    /// The checks are the validator's, with its clock and skew (``JWTCallbackAuthenticator``),
    /// so that each refusal says which claim failed.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}
