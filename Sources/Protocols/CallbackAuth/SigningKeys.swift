import Foundation
import JWTKit
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel

/// Why the issuer's signing keys could not be had. Holds URLs without their query, never a body.
public struct SigningKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where a validator gets the issuer's JSON Web Key Set (the JWKS document's bytes).
public protocol SigningKeyFetching: Sendable {
    func fetchKeySet() async throws(SigningKeyError) -> [UInt8]
}

/// OpenID Connect discovery: the configuration document names `jwks_uri`, which holds the keys.
/// Both over the daemon's HTTP client.
public struct OpenIDSigningKeyFetcher: SigningKeyFetching, CustomStringConvertible {
    public let configurationURL: String
    private let http: HTTPClient
    private let budget: HTTPBudget?
    private let timeout: Duration

    public init(configurationURL: String, http: HTTPClient, budget: HTTPBudget? = nil, timeout: Duration = .seconds(10)) {
        self.configurationURL = configurationURL
        self.http = http
        self.budget = budget
        self.timeout = timeout
    }

    public func fetchKeySet() async throws(SigningKeyError) -> [UInt8] {
        let configuration = try await get(configurationURL, what: "the OpenID configuration")
        guard let document = try? JSONValue.parse(configuration), let jwksURI = document["jwks_uri"]?.string else {
            throw SigningKeyError("the OpenID configuration at \(Self.shown(configurationURL)) has no jwks_uri")
        }
        // The configuration is trusted only as far as its own transport: keys from plain http
        // would let anyone on the path sign callbacks, so they come over https unless the
        // configuration itself was plain http (a lab, a test).
        let secure = jwksURI.lowercased().hasPrefix("https://")
        guard secure || (jwksURI.lowercased().hasPrefix("http://") && configurationURL.lowercased().hasPrefix("http://")) else {
            throw SigningKeyError("the OpenID configuration's jwks_uri \(Self.shown(jwksURI)) is not an https URL")
        }
        return try await get(jwksURI, what: "the signing keys (jwks_uri)")
    }

    private func get(_ url: String, what: String) async throws(SigningKeyError) -> [UInt8] {
        var request = HTTPRequest(.get, url, headers: [HTTPHeader("Accept", "application/json")], timeout: timeout)
        request.budget = budget
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            throw SigningKeyError("cannot fetch \(what) from \(Self.shown(url)): \(error)")
        }
        guard response.isSuccess else {
            throw SigningKeyError("fetching \(what) from \(Self.shown(url)) answered HTTP \(response.status)")
        }
        return response.body
    }

    /// scheme://host/path, without a query, bounded.
    static func shown(_ url: String) -> String {
        let cut = url.prefix(while: { $0 != "?" && $0 != "#" })
        return cut.count > 200 ? String(cut.prefix(200)) + "…" : String(cut)
    }

    public var description: String { "OpenID configuration \(Self.shown(configurationURL))" }
}

/// One fetched key set, ready to verify with.
public struct SigningKeySet: Sendable {
    public let keys: JWTKeyCollection
    public let keyIDs: Set<String>
    /// Keys of the document that were left out (no `kid`, a symmetric or unsupported key, a key
    /// not for signatures): a count, for the status line.
    public let skipped: Int
    public let fetchedAt: MonotonicInstant

    /// Reads a JWKS document. Keys jwt-kit cannot use are skipped one by one rather than failing
    /// the set: a provider that adds a key of a new type must not stop callbacks signed with the
    /// old ones. Symmetric (`oct`) keys are never taken: a shared key published in a key set
    /// would let anyone who reads it sign.
    public static func parse(_ document: [UInt8], fetchedAt: MonotonicInstant) async throws(SigningKeyError) -> SigningKeySet {
        guard let value = try? JSONValue.parse(document), let entries = value["keys"]?.array else {
            throw SigningKeyError("the signing keys document is not a JWKS (no \"keys\" list)")
        }
        let collection = JWTKeyCollection()
        var keyIDs: Set<String> = []
        var skipped = 0
        let decoder = JSONDecoder()
        for entry in entries.prefix(maximumKeys) {
            guard let kid = entry["kid"]?.string, !kid.isEmpty, let type = entry["kty"]?.string, type == "RSA" || type == "EC",
                entry["use"]?.string.map({ $0 == "sig" }) ?? true,
                let jwk = try? decoder.decode(JWK.self, from: Data(entry.serialized.utf8))
            else {
                skipped += 1
                continue
            }
            do {
                try await collection.add(jwk: jwk)
                keyIDs.insert(kid)
            } catch {
                skipped += 1
            }
        }
        skipped += max(entries.count - maximumKeys, 0)
        guard !keyIDs.isEmpty else {
            throw SigningKeyError("the signing keys document holds no usable key (\(entries.count) listed)")
        }
        return SigningKeySet(keys: collection, keyIDs: keyIDs, skipped: skipped, fetchedAt: fetchedAt)
    }

    /// Issuers publish a handful; this bounds the work a broken document makes.
    static let maximumKeys = 64
}

/// The issuer's keys, cached, and refreshed:
/// - when a token names a key id the cache does not know (keys rotate), at most once per
///   `unknownKeyRefreshInterval` since the last fetch, so a flood of tokens with made-up key ids
///   costs the issuer one request, not one each;
/// - when the keys are older than `refreshInterval`, in the background, the old keys serving
///   meanwhile (a key the issuer withdrew stops being accepted);
/// - while there are no keys at all (the first fetch failed), at most once per
///   `retryInterval`.
/// One fetch at a time: callers that need one while it runs wait for it.
public actor SigningKeyCache {
    public enum Lookup: Sendable {
        case found(SigningKeySet)
        case unknownKey
        case unavailable(SigningKeyError)
    }

    private let fetcher: any SigningKeyFetching
    private let clock: any MonotonicClock
    public let unknownKeyRefreshInterval: Duration
    public let refreshInterval: Duration
    public let retryInterval: Duration

    private var current: SigningKeySet?
    private var inFlight: Task<Result<SigningKeySet, SigningKeyError>, Never>?
    private var lastAttempt: MonotonicInstant?
    private var lastFailure: SigningKeyError?
    /// Fetches started, for tests and the status line.
    public private(set) var fetches = 0

    public init(
        fetcher: any SigningKeyFetching, clock: any MonotonicClock = SystemClock(),
        unknownKeyRefreshInterval: Duration = .seconds(300), refreshInterval: Duration = .seconds(86_400),
        retryInterval: Duration = .seconds(10)
    ) {
        self.fetcher = fetcher
        self.clock = clock
        self.unknownKeyRefreshInterval = unknownKeyRefreshInterval
        self.refreshInterval = refreshInterval
        self.retryInterval = retryInterval
    }

    /// The key set if it has `keyID`, after a refresh if one is allowed now.
    public func keys(for keyID: String) async -> Lookup {
        let now = clock.now()
        if let current, current.keyIDs.contains(keyID) {
            if now.since(current.fetchedAt) >= refreshInterval, inFlight == nil, mayAttempt(now, within: retryInterval) {
                _ = start(at: now)
            }
            return .found(current)
        }
        if let inFlight { return lookup(keyID, in: await inFlight.value) }
        let interval = current == nil ? retryInterval : unknownKeyRefreshInterval
        guard mayAttempt(now, within: interval) else {
            if current != nil { return .unknownKey }
            return .unavailable(lastFailure ?? SigningKeyError("the signing keys have not been fetched yet"))
        }
        return lookup(keyID, in: await start(at: now).value)
    }

    /// Fetches now (at start-up, so that the first callback does not wait), unless a fetch runs.
    @discardableResult
    public func refresh() async -> Result<SigningKeySet, SigningKeyError> {
        if let inFlight { return await inFlight.value }
        return await start(at: clock.now()).value
    }

    public var keySet: SigningKeySet? { current }

    private func mayAttempt(_ now: MonotonicInstant, within interval: Duration) -> Bool {
        guard let lastAttempt else { return true }
        return now.since(lastAttempt) >= interval
    }

    private func lookup(_ keyID: String, in result: Result<SigningKeySet, SigningKeyError>) -> Lookup {
        switch result {
        case .success(let set): return set.keyIDs.contains(keyID) ? .found(set) : .unknownKey
        case .failure(let error):
            // The old keys still serve when a refresh fails.
            if let current { return current.keyIDs.contains(keyID) ? .found(current) : .unknownKey }
            return .unavailable(error)
        }
    }

    private func start(at now: MonotonicInstant) -> Task<Result<SigningKeySet, SigningKeyError>, Never> {
        fetches += 1
        lastAttempt = now
        let fetcher = self.fetcher
        let clock = self.clock
        // The cache is updated before anyone waiting sees the result.
        let task = Task { () -> Result<SigningKeySet, SigningKeyError> in
            let result: Result<SigningKeySet, SigningKeyError>
            do throws(SigningKeyError) {
                let document = try await fetcher.fetchKeySet()
                result = .success(try await SigningKeySet.parse(document, fetchedAt: clock.now()))
            } catch {
                result = .failure(error)
            }
            self.finished(result)
            return result
        }
        inFlight = task
        return task
    }

    private func finished(_ result: Result<SigningKeySet, SigningKeyError>) {
        inFlight = nil
        switch result {
        case .success(let set):
            current = set
            lastFailure = nil
        case .failure(let error):
            lastFailure = error
        }
    }
}
