import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// Where requests go through a proxy.
public enum HTTPProxy: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// Read once, when the client is created, from the standard variables (see
    /// ``ProxySettings/resolve(_:environment:)`` for the exact rules).
    case environment
    /// Never a proxy, whatever the environment says.
    case none
    /// This proxy (`http://host:port`, `socks5h://host:port`; user info allowed) for http and
    /// https, except for hosts in `noProxy` (comma-separated, libcurl's `NO_PROXY` syntax).
    case url(String, noProxy: String? = nil)

    public var description: String {
        switch self {
        case .environment: "from the environment"
        case .none: "none"
        case .url(let url, let noProxy):
            Redaction.redactedURL(url) + (noProxy.map { " except \($0)" } ?? "")
        }
    }

    // A proxy URL may carry a user and password: dump() must not print them.
    public var customMirror: Mirror { Mirror(self, children: ["proxy": description], displayStyle: .enum) }
}

/// The proxy each scheme uses, resolved once so that libcurl never reads the environment itself.
public struct ProxySettings: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// Proxy URL for `https://` requests, and the variable it came from.
    public var https: String?
    public var httpsSource: String?
    /// Proxy URL for `http://` requests, and the variable it came from.
    public var http: String?
    public var httpSource: String?
    /// Hosts that bypass the proxy (libcurl `CURLOPT_NOPROXY` syntax).
    public var noProxy: String?

    /// The rules libcurl itself applies, made explicit:
    /// - `https://`: `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`, then `ALL_PROXY`;
    /// - `http://`: `http_proxy`, then `all_proxy`, then `ALL_PROXY`. Upper-case `HTTP_PROXY` is
    ///   **ignored**: a CGI-style environment can set it from a request's `Proxy:` header (httpoxy);
    /// - bypass list: `no_proxy`, then `NO_PROXY`; `*` bypasses the proxy for every host;
    /// - an empty variable counts as unset.
    public static func resolve(_ proxy: HTTPProxy, environment: (String) -> String?) -> ProxySettings {
        switch proxy {
        case .none:
            return ProxySettings()
        case .url(let url, let noProxy):
            return ProxySettings(
                https: url, httpsSource: "configuration", http: url, httpSource: "configuration", noProxy: noProxy)
        case .environment:
            func first(_ names: [String]) -> (String, String)? {
                for name in names {
                    if let value = environment(name), !value.isEmpty { return (value, name) }
                }
                return nil
            }
            let https = first(["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
            let http = first(["http_proxy", "all_proxy", "ALL_PROXY"])
            return ProxySettings(
                https: https?.0, httpsSource: https?.1, http: http?.0, httpSource: http?.1,
                noProxy: first(["no_proxy", "NO_PROXY"])?.0)
        }
    }

    /// The process environment, read with `getenv`.
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    func proxy(forURL url: String) -> String? { isHTTPS(url) ? https : http }

    public var description: String {
        if https == nil && http == nil { return "no proxy" }
        var parts: [String] = []
        if let https { parts.append("https via \(Redaction.redactedURL(https)) (from \(httpsSource ?? "?"))") }
        if let http { parts.append("http via \(Redaction.redactedURL(http)) (from \(httpSource ?? "?"))") }
        if let noProxy { parts.append("except \(noProxy)") }
        return parts.joined(separator: ", ")
    }

    public var customMirror: Mirror { Mirror(self, children: ["proxy": description], displayStyle: .struct) }
}

/// Whether a URL's scheme is `https`, without allocating: this runs for every request.
func isHTTPS(_ url: String) -> Bool {
    Redaction.hasPrefixIgnoringCase(url, "https:")
}

/// Which HTTP version to ask for.
public enum HTTPVersionPreference: String, Sendable, Hashable {
    /// HTTP/2 over TLS when the server offers it in ALPN (multiplexed on one connection), else 1.1.
    case http2WhenOffered = "http2-when-offered"
    case http1_1 = "http1.1"
}

/// Everything about one client: one platform target, its trust, its proxy, its session.
public struct HTTPClientConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    /// Names the client in reports (the target's configured name).
    public var name: String
    /// Default total time for one exchange, from `send` to the last byte.
    public var timeout: Duration
    /// Default time to establish a connection (TCP and TLS).
    public var connectTimeout: Duration
    /// The largest response body accepted; a larger one fails with `responseTooLarge`.
    public var maxResponseBytes: Int
    public var tls: TLSOptions
    public var proxy: HTTPProxy
    /// Keep cookies from this client's responses and send them back on its later requests (GWS
    /// `JSESSIONID`). Cookies never cross to another client.
    public var cookieSession: Bool
    public var httpVersion: HTTPVersionPreference
    /// Redirects a GET or HEAD may follow (0: none). Other methods never follow a redirect: the
    /// 3xx is returned as the response.
    public var maxRedirects: Int
    public var userAgent: String

    public init(
        name: String, timeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(5),
        maxResponseBytes: Int = 4 << 20, tls: TLSOptions = TLSOptions(), proxy: HTTPProxy = .environment,
        cookieSession: Bool = false, httpVersion: HTTPVersionPreference = .http2WhenOffered, maxRedirects: Int = 5,
        userAgent: String = "mutewarden"
    ) {
        self.name = name
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
        self.proxy = proxy
        self.cookieSession = cookieSession
        self.httpVersion = httpVersion
        self.maxRedirects = maxRedirects
        self.userAgent = userAgent
    }

    public var description: String {
        "HTTP client \(name): timeout \(timeout.compact), connect \(connectTimeout.compact), "
            + "max response \(maxResponseBytes) bytes, TLS \(tls), proxy \(proxy), "
            + "cookies \(cookieSession ? "kept" : "off"), \(httpVersion.rawValue), redirects \(maxRedirects) (GET only)"
    }

    public var customMirror: Mirror { Mirror(self, children: ["configuration": description], displayStyle: .struct) }

    /// Why this configuration cannot work, checked when the client is created rather than on the
    /// first mute.
    func problem() -> String? {
        if timeout <= .zero { return "timeout must be positive" }
        if connectTimeout <= .zero { return "connect timeout must be positive" }
        if maxResponseBytes <= 0 { return "the response size cap must be positive" }
        if maxRedirects < 0 { return "max redirects cannot be negative" }
        if tls.clientKeyPath != nil && tls.clientCertificatePath == nil {
            return "a client key is set without a client certificate"
        }
        for (what, path) in [
            ("CA bundle", tls.caBundlePath), ("client certificate", tls.clientCertificatePath),
            ("client key", tls.clientKeyPath),
        ] {
            guard let path else { continue }
            if access(path, R_OK) != 0 {
                return "the \(what) \(path) cannot be read: \(String(cString: strerror(errno)))"
            }
        }
        return nil
    }
}

/// Something an operator should know about a client, e.g. that it does not verify TLS.
public struct HTTPReport: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        case info, warning, critical
    }

    public var severity: Severity
    /// The client's configured name.
    public var client: String
    /// Operator words; never a secret.
    public var message: String

    public var description: String { "[\(severity.rawValue)] HTTP client \(client): \(message)" }
}
