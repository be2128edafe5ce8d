import MutewardenModel

/// What the ingress knows of a request once its headers are in and before any of its body is read:
/// all an authenticator may look at.
public struct IngressRequestHead: Sendable, Hashable {
    /// "POST", "GET", ...
    public var method: String
    /// The path, without the query, as libwebsockets decoded it.
    public var path: String
    /// The query's `name=value` pairs, decoded, in order; a bare `name` has an empty value.
    public var query: [IngressField]
    /// Every header libwebsockets parsed, names in lower case, values as received.
    public var headers: [IngressField]
    /// The address the connection came from (the proxy's, behind a reverse proxy).
    public var peer: String
    /// The declared body length; nil when the request has none.
    public var contentLength: Int?

    public init(
        method: String, path: String, query: [IngressField] = [], headers: [IngressField] = [], peer: String,
        contentLength: Int? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.peer = peer
        self.contentLength = contentLength
    }

    /// The first header called `name` (any case).
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }

    /// The first query parameter called `name` (exact case, as URLs are).
    public func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
}

/// One header or query parameter.
public struct IngressField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// An accepted request with its whole body, handed to its route's handler.
public struct IngressRequest: Sendable {
    public var head: IngressRequestHead
    public var body: [UInt8]
    /// What the authenticator said of the caller (a token's subject), for the handler's records.
    public var principal: String?
}

/// The handler's answer: a status and a small body.
public struct IngressResponse: Sendable, Hashable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String = "application/json", body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public init(status: Int, json: String) { self.init(status: status, body: Array(json.utf8)) }
}

/// Why a callback was refused, in words an audit record may carry: never the credential, never
/// the body. `reason` is a short stable code ("missing-token", "bad-signature"), which is also
/// what the refusal records are rate-limited by.
public struct IngressRefusal: Sendable, Hashable, Error {
    public var reason: String
    public var detail: String?
    /// 401 for a caller who is not who it must be; 503 when the authenticator cannot tell now (the
    /// platform's signing keys are unreachable), so that the platform retries later rather than
    /// taking the callback as refused.
    public var status: Int

    public init(reason: String, detail: String? = nil, status: Int = 401) {
        self.reason = reason
        self.detail = detail
        self.status = status
    }
}

/// An authenticator's answer for one request head.
public enum IngressDecision: Sendable, Hashable {
    /// Read the body and hand it to the handler; `principal` names the caller for the handler.
    case accept(principal: String?)
    case refuse(IngressRefusal)
}

/// How an authenticator answers: at once, or later.
public enum IngressAuthentication: Sendable {
    /// Decided now, on the ingress thread: the common case (a signature against cached keys).
    case decided(IngressDecision)
    /// Decided by an asynchronous step (fetching the signing keys for an unknown key id). The
    /// ingress stops reading the connection until it answers, so no byte of the body is taken
    /// before the caller is known, and answers 503 if it does not answer within the route's
    /// authentication timeout.
    case deferred(@Sendable () async -> IngressDecision)
}

/// Decides whether a request may be read, from its head alone.
///
/// `authenticate` runs on the ingress's service thread, which serves every connection: it must
/// not block. Anything that may wait (a network fetch) goes in ``IngressAuthentication/deferred(_:)``.
public protocol IngressAuthenticator: Sendable {
    func authenticate(_ head: IngressRequestHead) -> IngressAuthentication
}

/// A route: one path, the methods it takes, who owns it, how its callers are authenticated and
/// what handles their requests.
public struct IngressRoute: Sendable {
    /// Exact match on the decoded path.
    public var path: String
    public var methods: Set<String>
    /// Who registered it ("feed acs"), for records and errors.
    public var owner: String
    public var authenticator: any IngressAuthenticator
    /// Runs on a task for each accepted request; the ingress waits for it up to the handler
    /// timeout (then answers 503 and drops the late answer).
    public var handler: @Sendable (IngressRequest) async -> IngressResponse
    /// The route's own body cap, below the listener's; nil keeps the listener's.
    public var maximumBodySize: Int?

    public init(
        path: String, methods: Set<String> = ["POST"], owner: String, authenticator: any IngressAuthenticator,
        maximumBodySize: Int? = nil, handler: @escaping @Sendable (IngressRequest) async -> IngressResponse
    ) {
        self.path = path
        self.methods = methods
        self.owner = owner
        self.authenticator = authenticator
        self.maximumBodySize = maximumBodySize
        self.handler = handler
    }
}

/// Where providers ask for a route. The daemon gives its feeds one through the provider kit and
/// starts its listener only when the first route is registered.
public protocol IngressRouter: Sendable {
    /// Registers `route`; the latest registration of a path wins, so a feed rebuilt at a reload
    /// takes its path over from its predecessor. Throws when no ingress is configured or the path
    /// is reserved.
    func register(_ route: IngressRoute) throws -> IngressRegistration
}

/// A route's hold on its path; `cancel()` removes the route unless a later registration has taken
/// the path over.
public final class IngressRegistration: Sendable {
    private let onCancel: @Sendable () -> Void

    public init(onCancel: @escaping @Sendable () -> Void) { self.onCancel = onCancel }

    public func cancel() { onCancel() }
}

/// What `/healthz` reports: each check by name, and healthy only when all pass.
public struct IngressHealth: Sendable, Hashable {
    public var checks: [IngressField]
    public var healthy: Bool

    public init(checks: [(name: String, ok: Bool)]) {
        self.checks = checks.map { IngressField($0.name, $0.ok ? "up" : "down") }
        healthy = checks.allSatisfy(\.ok)
    }
}

/// Refuses unless the request carries `Authorization: Bearer <token>` with the configured token,
/// compared in constant time. For tests and for a deployment behind a proxy that adds a shared
/// secret; platforms' own callbacks are checked by their feeds' authenticators.
public struct BearerTokenAuthenticator: IngressAuthenticator {
    private let token: [UInt8]

    public init(token: String) { self.token = Array(token.utf8) }

    public func authenticate(_ head: IngressRequestHead) -> IngressAuthentication {
        guard let value = head.header("authorization") else {
            return .decided(.refuse(IngressRefusal(reason: "missing-token")))
        }
        let scheme = "bearer "
        guard value.count > scheme.count, value.prefix(scheme.count).lowercased() == scheme else {
            return .decided(.refuse(IngressRefusal(reason: "not-a-bearer-token")))
        }
        let presented = Array(value.utf8.dropFirst(scheme.utf8.count))
        return .decided(
            ConstantTime.equals(presented, token) ? .accept(principal: nil) : .refuse(IngressRefusal(reason: "wrong-token")))
    }
}
