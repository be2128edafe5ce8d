/// An HTTP method. The common ones are constants; any other token is accepted as it is.
public struct HTTPMethod: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let patch = HTTPMethod(rawValue: "PATCH")
    public static let delete = HTTPMethod(rawValue: "DELETE")

    public var description: String { rawValue }

    /// Only these may follow redirects: re-sending a command to wherever a server points is how a
    /// mute lands twice or on the wrong host.
    var mayFollowRedirects: Bool { self == .get || self == .head }
}

/// One request header. `secret` forces redaction for a header whose name does not say it is one.
public struct HTTPHeader: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    public var name: String
    public var value: String
    public var isSecret: Bool

    public init(_ name: String, _ value: String, secret: Bool = false) {
        self.name = name
        self.value = value
        self.isSecret = secret
    }

    /// Whether descriptions hide the value: marked secret, or named like a credential.
    public var isRedacted: Bool { isSecret || Redaction.isSensitiveHeaderName(name) }

    public var description: String { "\(name): \(isRedacted ? Redaction.placeholder : value)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["header": description], displayStyle: .struct) }
}

/// A request as handed to ``HTTPClient/send(_:)``.
///
/// A share of one host's connections for one user of a transport, such as a feed or a target:
/// requests of one budget never wait behind another's. A voice API that hangs then fills its own
/// budget and not the feed's, whose long poll still goes out at once. Requests beyond the budget
/// wait, in order, and one whose time runs out while waiting fails saying how many were ahead.
public struct HTTPBudget: Sendable, Hashable {
    public var name: String
    /// Transfers of this budget in libcurl at once, to one host.
    public var maxConnections: Int

    public init(name: String, maxConnections: Int) {
        self.name = name
        self.maxConnections = max(1, maxConnections)
    }
}

/// Printing, dumping or reflecting a request never shows its body, its credentials or its URL's
/// query and user info: a request body may carry a card-adjacent payload, and a query a token.
public struct HTTPRequest: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var method: HTTPMethod
    /// An absolute `http` or `https` URL.
    public var url: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// The whole exchange, from `send` to the last byte of the answer; nil: the client's default.
    public var timeout: Duration?
    /// Establishing the connection (TCP and TLS); nil: the client's default.
    public var connectTimeout: Duration?
    /// The connection budget the request counts against (see ``HTTPBudget``); nil: the
    /// transport's shared one for the request's host.
    public var budget: HTTPBudget?

    public init(
        _ method: HTTPMethod = .get, _ url: String, headers: [HTTPHeader] = [], body: [UInt8] = [],
        timeout: Duration? = nil, connectTimeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
    }

    /// A request with a UTF-8 text body, e.g. JSON.
    public init(
        _ method: HTTPMethod, _ url: String, headers: [HTTPHeader] = [], text: String, timeout: Duration? = nil
    ) {
        self.init(method, url, headers: headers, body: Array(text.utf8), timeout: timeout)
    }

    public var description: String {
        "\(method) \(Redaction.redactedURL(url)) (\(headers.count) headers, body \(body.count) bytes)"
    }

    public var debugDescription: String {
        let shown = headers.map(\.description).joined(separator: ", ")
        return "\(method) \(Redaction.redactedURL(url)) headers: [\(shown)] body: \(body.count) bytes (not shown)"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "method": method.rawValue,
                "url": Redaction.redactedURL(url),
                "headers": headers.map(\.description),
                "body": "\(body.count) bytes (not shown)",
                "timeout": timeout.map { $0.compact } ?? "default",
            ],
            displayStyle: .struct)
    }

    /// Why this request cannot be sent as it is, before it reaches libcurl.
    func validationProblem() -> String? {
        if let timeout, timeout <= .zero { return "the timeout must be positive" }
        if let connectTimeout, connectTimeout <= .zero { return "the connect timeout must be positive" }
        guard Redaction.hasPrefixIgnoringCase(url, "http://") || Redaction.hasPrefixIgnoringCase(url, "https://") else {
            return "the URL must start with http:// or https://"
        }
        if url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return "the URL contains a space or a control character"
        }
        guard !method.rawValue.isEmpty, method.rawValue.utf8.allSatisfy(Redaction.isTokenByte) else {
            return "the method \"\(method.rawValue)\" is not an HTTP token"
        }
        for header in headers {
            guard !header.name.isEmpty, header.name.utf8.allSatisfy(Redaction.isTokenByte) else {
                return "a header name is empty or not an HTTP token"
            }
            // A CR or LF in a value would let it smuggle a second header or a second request.
            if header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
                return "the value of header \(header.name) contains a line break"
            }
        }
        return nil
    }
}

/// The rules that keep credentials, bodies and tokens out of descriptions.
enum Redaction {
    static let placeholder = "<redacted>"

    /// Names that carry credentials or sessions in the APIs we talk to. Matching is generous on
    /// purpose: hiding a harmless header costs nothing, printing a token costs a rotation.
    static func isSensitiveHeaderName(_ name: String) -> Bool {
        let lowered = name.lowercased()
        if lowered == "authorization" || lowered == "proxy-authorization" || lowered == "cookie"
            || lowered == "set-cookie" || lowered.hasPrefix("x-csrf") || lowered.hasPrefix("x-xsrf")
        {
            return true
        }
        return ["token", "secret", "password", "passwd", "session", "api-key", "apikey", "auth", "signature"]
            .contains { lowered.contains($0) }
    }

    /// `scheme://host:port/path` with user info dropped and the query replaced, so that a URL can
    /// be logged even when it carries a token (Voicenter passes one in the query).
    static func redactedURL(_ url: String) -> String {
        var rest = Substring(url)
        var prefix = ""
        if let range = rest.range(of: "://") {
            prefix = String(rest[..<range.upperBound])
            rest = rest[range.upperBound...]
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]
        }
        let afterAuthority = rest[authorityEnd...]
        let pathEnd = afterAuthority.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? afterAuthority.endIndex
        let path = afterAuthority[..<pathEnd]
        let hasQuery = afterAuthority[pathEnd...].first == "?"
        return prefix + authority + path + (hasQuery ? "?\(placeholder)" : "")
    }

    /// ASCII case-insensitive equality, without the allocation of `lowercased()`: header names
    /// are compared on every request.
    static func namesEqual(_ name: String, _ lowercase: String) -> Bool {
        name.utf8.count == lowercase.utf8.count
            && zip(name.utf8, lowercase.utf8).allSatisfy { pair in
                pair.0 == pair.1 || (pair.0 >= 0x41 && pair.0 <= 0x5A && pair.0 | 0x20 == pair.1)
            }
    }

    /// For schemes: `prefix` is lower case, and `|0x20` folds only letters among its characters.
    static func hasPrefixIgnoringCase(_ text: String, _ prefix: String) -> Bool {
        text.utf8.count >= prefix.utf8.count && zip(text.utf8, prefix.utf8).allSatisfy { $0.0 | 0x20 == $0.1 }
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
