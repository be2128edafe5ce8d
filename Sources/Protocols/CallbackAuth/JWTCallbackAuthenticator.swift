import JWTKit
import MutewardenHTTP
import MutewardenModel

/// What a callback's JWT must satisfy.
public struct JWTCallbackSettings: Sendable, Hashable {
    /// Where the issuer's OpenID configuration (and through it the signing keys) is published.
    public var openIDConfigurationURL: String
    /// Accepted `iss` values, compared exactly.
    public var issuers: [String]
    /// Accepted audiences: the token's `aud` must name one of them.
    public var audiences: [String]
    /// Claims that must be present with exactly this value (Graph: `tid`, the tenant).
    public var requiredClaims: [String: String]
    /// `alg` values accepted in the token's header. Never `none`, never an HMAC algorithm: the
    /// keys are public.
    public var algorithms: Set<String>
    /// Slack for the difference between the issuer's clock and ours, on `exp` and `nbf`.
    public var clockSkew: Duration
    /// Tokens longer than this are refused unread.
    public var maximumTokenBytes: Int
    public var unknownKeyRefreshInterval: Duration
    public var keyRefreshInterval: Duration
    public var keyRetryInterval: Duration

    public init(
        openIDConfigurationURL: String, issuers: [String], audiences: [String], requiredClaims: [String: String] = [:],
        algorithms: Set<String> = ["RS256"], clockSkew: Duration = .seconds(60), maximumTokenBytes: Int = 16 << 10,
        unknownKeyRefreshInterval: Duration = .seconds(300), keyRefreshInterval: Duration = .seconds(86_400),
        keyRetryInterval: Duration = .seconds(10)
    ) {
        self.openIDConfigurationURL = openIDConfigurationURL
        self.issuers = issuers
        self.audiences = audiences
        self.requiredClaims = requiredClaims
        self.algorithms = algorithms.subtracting(Self.forbiddenAlgorithms)
        self.clockSkew = clockSkew
        self.maximumTokenBytes = maximumTokenBytes
        self.unknownKeyRefreshInterval = unknownKeyRefreshInterval
        self.keyRefreshInterval = keyRefreshInterval
        self.keyRetryInterval = keyRetryInterval
    }

    /// `none` and the HMAC family: with them, anyone holding the public key could sign.
    public static let forbiddenAlgorithms: Set<String> = ["none", "None", "NONE", "HS256", "HS384", "HS512"]

    /// Azure Communication Services Call Automation: tokens issued by
    /// `https://acscallautomation.communication.azure.com` for the ACS resource's immutable id
    /// (Microsoft Learn, "Secure webhook endpoint" for Call Automation).
    public static func acs(resourceID: String) -> JWTCallbackSettings {
        JWTCallbackSettings(
            openIDConfigurationURL: "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration",
            issuers: ["https://acscallautomation.communication.azure.com"], audiences: [resourceID])
    }

    /// Microsoft Graph calling bots: tokens issued by `https://api.botframework.com` for the
    /// bot's app id, in the app's tenant (MicrosoftDocs/msteams-docs, call-notifications.md).
    public static func graph(appID: String, tenant: String) -> JWTCallbackSettings {
        JWTCallbackSettings(
            openIDConfigurationURL: "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration",
            issuers: ["https://api.botframework.com"], audiences: [appID], requiredClaims: ["tid": tenant])
    }

    /// Why these settings cannot work, for check-config.
    public func problem() -> String? {
        let url = openIDConfigurationURL.lowercased()
        if !url.hasPrefix("https://"), !url.hasPrefix("http://127.0.0.1"), !url.hasPrefix("http://[::1]"), !url.hasPrefix("http://localhost") {
            return "the OpenID configuration URL must be https:// (plain http:// on loopback only, for tests)"
        }
        if issuers.isEmpty || issuers.contains(where: \.isEmpty) { return "at least one issuer is needed, none empty" }
        if audiences.isEmpty || audiences.contains(where: \.isEmpty) { return "at least one audience is needed, none empty" }
        if algorithms.isEmpty { return "no signing algorithm is allowed" }
        if clockSkew < .zero || clockSkew > .seconds(600) { return "the clock skew must be between 0 and 10 minutes" }
        return nil
    }
}

/// Validates the bearer JWT of a platform's callback (ACS, Graph): its signature against the
/// issuer's published keys (jwt-kit; the keys through ``SigningKeyCache``), then issuer,
/// audience, expiry and not-before with a skew, and the extra claims. Each refusal says which
/// check failed; none shows the token.
///
/// For an ingress: `authenticate(_:)` reads the `Authorization` header of the request's head.
public final class JWTCallbackAuthenticator: CallbackAuthenticating, CustomStringConvertible {
    public let settings: JWTCallbackSettings
    public let keyCache: SigningKeyCache
    private let wallClock: @Sendable () -> Int64

    public init(
        settings: JWTCallbackSettings, fetcher: any SigningKeyFetching, clock: any MonotonicClock = SystemClock(),
        wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds
    ) {
        self.settings = settings
        self.wallClock = wallClock
        keyCache = SigningKeyCache(
            fetcher: fetcher, clock: clock, unknownKeyRefreshInterval: settings.unknownKeyRefreshInterval,
            refreshInterval: settings.keyRefreshInterval, retryInterval: settings.keyRetryInterval)
    }

    /// Keys fetched from `settings.openIDConfigurationURL` over `http`.
    public convenience init(
        settings: JWTCallbackSettings, http: HTTPClient, budget: HTTPBudget? = nil, clock: any MonotonicClock = SystemClock(),
        wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds
    ) {
        self.init(
            settings: settings,
            fetcher: OpenIDSigningKeyFetcher(configurationURL: settings.openIDConfigurationURL, http: http, budget: budget),
            clock: clock, wallClock: wallClock)
    }

    public func authenticate(_ request: CallbackRequestHead) async -> CallbackAuthDecision {
        await validate(authorizationHeader: request.header("Authorization"))
    }

    /// Decides on the `Authorization` header's value (nil when there is none).
    public func validate(authorizationHeader: String?) async -> CallbackAuthDecision {
        guard let header = authorizationHeader, !header.allSatisfy({ $0 == " " || $0 == "\t" }) else {
            return .refused(.missing, detail: "no Authorization header")
        }
        guard header.utf8.count <= settings.maximumTokenBytes + 64 else {
            return .refused(.malformed, detail: "the Authorization header is longer than \(settings.maximumTokenBytes) bytes")
        }
        let trimmed = header.drop(while: { $0 == " " || $0 == "\t" })
        let scheme = trimmed.prefix(while: { $0 != " " })
        guard scheme.lowercased() == "bearer" else {
            return .refused(.malformed, detail: "the Authorization header is not a Bearer token")
        }
        let token = Array(
            trimmed.dropFirst(scheme.count).utf8.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
                .drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed())
        return await validate(token: token)
    }

    /// Decides on the token alone (the part after `Bearer `).
    public func validate(token: [UInt8]) async -> CallbackAuthDecision {
        guard !token.isEmpty else { return .refused(.missing, detail: "an empty Bearer token") }
        guard token.count <= settings.maximumTokenBytes else {
            return .refused(.malformed, detail: "the token is longer than \(settings.maximumTokenBytes) bytes")
        }
        // The header is read before the signature is checked, to choose the key; nothing in it
        // is trusted but the key id and the algorithm, and both are checked against what is allowed.
        let header: JWTHeader
        do {
            header = try DefaultJWTParser().parse(token, as: CallbackClaims.self).header
        } catch {
            return .refused(.malformed, detail: "not a readable JWT")
        }
        guard let algorithm = header.alg, settings.algorithms.contains(algorithm) else {
            let named = header.alg.map { CallbackAuthDecision.shown($0, limit: 16) } ?? "none"
            return .refused(.disallowedAlgorithm, detail: "signed with algorithm \(named), not one of \(settings.algorithms.sorted())")
        }
        if header.crit != nil {
            return .refused(.malformed, detail: "the token has critical header extensions (crit), which are not supported")
        }
        guard let keyID = header.kid, !keyID.isEmpty else {
            return .refused(.malformed, detail: "the token names no signing key (kid)")
        }
        let keys: SigningKeySet
        switch await keyCache.keys(for: keyID) {
        case .found(let set): keys = set
        case .unknownKey:
            return .refused(.unknownKey, detail: "signed with key \(CallbackAuthDecision.shown(keyID, limit: 64)), which the issuer does not publish")
        case .unavailable(let error):
            return .refused(.keysUnavailable, detail: "the issuer's signing keys are unavailable: \(error)")
        }
        let claims: CallbackClaims
        do {
            claims = try await keys.keys.verify(token, as: CallbackClaims.self)
        } catch let error as JWTError where error.errorType == .malformedToken {
            return .refused(.malformed, detail: "the token's claims cannot be read")
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            return .refused(.badSignature, detail: "the signature does not verify with key \(CallbackAuthDecision.shown(keyID, limit: 64))")
        } catch {
            return .refused(
                .badSignature, detail: "key \(CallbackAuthDecision.shown(keyID, limit: 64)) cannot verify a token signed with \(algorithm)")
        }
        return check(claims, keyID: keyID)
    }

    /// The claim checks, after the signature verified.
    func check(_ claims: CallbackClaims, keyID: String) -> CallbackAuthDecision {
        guard let issuer = claims.issuer, settings.issuers.contains(issuer) else {
            return .refused(
                .wrongIssuer, detail: "issuer \(claims.issuer.map { CallbackAuthDecision.shown($0) } ?? "missing") is not the configured one")
        }
        guard let audience = claims.audiences.first(where: { settings.audiences.contains($0) }) else {
            let named =
                claims.audiences.isEmpty ? "missing" : claims.audiences.prefix(4).map { CallbackAuthDecision.shown($0) }.joined(separator: ", ")
            return .refused(.wrongAudience, detail: "audience \(named) is not the configured one")
        }
        let now = Double(wallClock()) / 1e9
        let skew = settings.clockSkew.seconds
        guard let expiration = claims.expiration else { return .refused(.malformed, detail: "the token has no expiry (exp)") }
        guard now <= expiration + skew else {
            return .refused(.expired, detail: "expired \(Int(min(now - expiration, 1e9))) s ago (skew \(settings.clockSkew.compact))")
        }
        if let notBefore = claims.notBefore, now + skew < notBefore {
            return .refused(.notYetValid, detail: "valid only in \(Int(min(notBefore - now, 1e9))) s (skew \(settings.clockSkew.compact))")
        }
        for (name, expected) in settings.requiredClaims.sorted(by: { $0.key < $1.key }) where claims.strings[name] != expected {
            return .refused(
                .wrongClaim,
                detail:
                    "claim \(CallbackAuthDecision.shown(name, limit: 32)) is \(claims.strings[name] == nil ? "missing" : "not the configured value")")
        }
        return .accepted(CallbackIdentity(issuer: issuer, audience: audience, subject: claims.subject, keyID: keyID, expiresAt: claims.expiration))
    }

    public var description: String {
        "JWT callbacks from \(settings.issuers.joined(separator: ", ")) for \(settings.audiences.joined(separator: ", "))"
    }
}
