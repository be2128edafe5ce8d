import MutewardenModel
import MutewardenSupervisor

/// Where to connect: `ws://` or `wss://`, a host, a port, a path and a query.
///
/// The query is kept apart from the path because platforms put tokens in it (Voicenter's socket.io
/// feed takes `?token=`): ``description`` never shows it.
public struct WebSocketURL: Sendable, Hashable, CustomStringConvertible {
    public var secure: Bool
    /// A DNS name or a numeric address, without the brackets of an IPv6 literal.
    public var host: String
    public var port: Int
    /// Starts with `/`; no query.
    public var path: String
    /// Without the `?`; empty when there is none.
    public var query: String

    public init(secure: Bool, host: String, port: Int? = nil, path: String = "/", query: String = "") throws {
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") }) else {
            throw WebSocketError.invalidConfiguration("the host is empty or has characters a host cannot have")
        }
        let port = port ?? (secure ? 443 : 80)
        guard (1...65535).contains(port) else {
            throw WebSocketError.invalidConfiguration("port \(port) is outside 1...65535")
        }
        guard path.hasPrefix("/"), path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "?") }) else {
            throw WebSocketError.invalidConfiguration("the path must start with / and be printable ASCII without spaces")
        }
        // Neither check quotes the query: it may hold a token.
        guard query.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "#") }) else {
            throw WebSocketError.invalidConfiguration("the query must be printable ASCII without spaces (percent-encode it)")
        }
        self.secure = secure
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }

    /// Parses `ws[s]://host[:port][/path][?query]`. The error never quotes the text, which may
    /// carry a token.
    public init(_ text: String) throws {
        let secure: Bool
        var rest: Substring
        if text.hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6)
        } else if text.hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5)
        } else {
            throw WebSocketError.invalidConfiguration("a WebSocket URL starts with ws:// or wss://")
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        var path = "/"
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        guard !rest.contains("@") else {
            throw WebSocketError.invalidConfiguration("credentials in the URL are not supported: use a header")
        }
        var host = rest
        var port: Int?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw WebSocketError.invalidConfiguration("an IPv6 address in a URL needs its closing ]")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else {
                    throw WebSocketError.invalidConfiguration("the port is not a number")
                }
                port = value
            } else if !after.isEmpty {
                throw WebSocketError.invalidConfiguration("unexpected text after the IPv6 address")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else {
                throw WebSocketError.invalidConfiguration("the port is not a number")
            }
            port = value
        }
        try self.init(secure: secure, host: String(host), port: port, path: path, query: query)
    }

    /// The request target: path and query.
    var target: String { query.isEmpty ? path : path + "?" + query }

    /// The Host header: the port only when it is not the scheme's default, as browsers do.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// For logs: the query is replaced by `?…` because it may carry a token.
    public var description: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return "\(secure ? "wss" : "ws")://\(name):\(port)\(path)\(query.isEmpty ? "" : "?…")"
    }
}

/// A request header, such as `Authorization` or `Cookie`. Its value never appears in a
/// description, a log line or an error.
public struct WebSocketHeader: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name): <redacted>" }
}

/// Everything a ``WebSocketClient`` needs. Its description is safe to log: header values and the
/// query are never shown.
public struct WebSocketConfiguration: Sendable, CustomStringConvertible {
    public var url: WebSocketURL
    public var headers: [WebSocketHeader]
    /// Offered in `Sec-WebSocket-Protocol`, in order of preference.
    public var subprotocols: [String]
    /// The `Origin` header, sent as given; none when nil.
    public var origin: String?
    public var tls: TLSOptions
    /// How often to ping; nil for never.
    public var pingInterval: Duration?
    /// How long a ping may go unanswered before the connection is dropped.
    public var pongTimeout: Duration
    /// Drop the connection when nothing at all (message or pong) arrived for this long; nil for never.
    public var idleTimeout: Duration?
    /// Name resolution, TCP, TLS and the upgrade, together.
    public var connectTimeout: Duration
    /// How long to wait for the peer's answer to our close frame.
    public var closeTimeout: Duration
    /// A larger message closes the connection with 1009 (and it reconnects).
    public var maximumMessageSize: Int
    /// Received bytes not yet taken by the consumer beyond which the socket is no longer read, so
    /// that a slow consumer slows the peer down (TCP flow control) instead of growing memory.
    public var receiveBufferLimit: Int
    public var reconnect: ReconnectPolicy

    public init(
        url: WebSocketURL, headers: [WebSocketHeader] = [], subprotocols: [String] = [], origin: String? = nil,
        tls: TLSOptions = TLSOptions(), pingInterval: Duration? = .seconds(20), pongTimeout: Duration = .seconds(10),
        idleTimeout: Duration? = .seconds(60), connectTimeout: Duration = .seconds(10),
        closeTimeout: Duration = .seconds(2), maximumMessageSize: Int = 1 << 20, receiveBufferLimit: Int = 8 << 20,
        reconnect: ReconnectPolicy = ReconnectPolicy()
    ) {
        self.url = url
        self.headers = headers
        self.subprotocols = subprotocols
        self.origin = origin
        self.tls = tls
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.closeTimeout = closeTimeout
        self.maximumMessageSize = maximumMessageSize
        self.receiveBufferLimit = receiveBufferLimit
        self.reconnect = reconnect
    }

    /// Throws for what can be known wrong before connecting. Messages never quote a header value.
    public func validate() throws {
        func isToken(_ text: String) -> Bool {
            !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
        }
        let reserved: Set<String> = [
            "host", "origin", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
            "sec-websocket-protocol", "sec-websocket-extensions", "content-length",
        ]
        for header in headers {
            guard isToken(header.name), header.name.utf8.count < 200 else {
                throw WebSocketError.invalidConfiguration("a header name must be an HTTP token")
            }
            guard !reserved.contains(header.name.lowercased()) else {
                throw WebSocketError.invalidConfiguration(
                    "header \(header.name) is set by the client itself (use url, origin or subprotocols)")
            }
            // A CR or LF would let a value inject headers of its own.
            guard header.value.utf8.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !header.value.utf8.contains(0x7f) else {
                throw WebSocketError.invalidConfiguration("the value of header \(header.name) has control characters")
            }
        }
        for subprotocol in subprotocols where !isToken(subprotocol) {
            throw WebSocketError.invalidConfiguration("subprotocol \(subprotocol) is not an HTTP token")
        }
        if let origin, !origin.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) {
            throw WebSocketError.invalidConfiguration("the origin must be printable ASCII without spaces")
        }
        guard (tls.clientCertificatePath == nil) == (tls.clientKeyPath == nil) else {
            throw WebSocketError.invalidConfiguration("a client certificate needs its key, and a key its certificate")
        }
        guard maximumMessageSize > 0 else {
            throw WebSocketError.invalidConfiguration("the maximum message size must be positive")
        }
        guard receiveBufferLimit > 0 else {
            throw WebSocketError.invalidConfiguration("the receive buffer limit must be positive")
        }
        for (name, value) in [
            ("pong timeout", pongTimeout), ("connect timeout", connectTimeout), ("close timeout", closeTimeout),
        ] where value <= .zero {
            throw WebSocketError.invalidConfiguration("the \(name) must be positive")
        }
        if let pingInterval, pingInterval <= .zero {
            throw WebSocketError.invalidConfiguration("the ping interval must be positive")
        }
        if let idleTimeout, idleTimeout <= .zero {
            throw WebSocketError.invalidConfiguration("the idle timeout must be positive")
        }
    }

    /// Every string that must never reach a log: header values, the query and each of its values.
    var secrets: [String] {
        var secrets = headers.map(\.value)
        if !url.query.isEmpty {
            secrets.append(url.query)
            for item in url.query.split(separator: "&") {
                if let equals = item.firstIndex(of: "=") { secrets.append(String(item[item.index(after: equals)...])) }
            }
        }
        // Short values would blank out ordinary words in error messages and protect little.
        return secrets.filter { $0.utf8.count >= 4 }.sorted { $0.utf8.count > $1.utf8.count }
    }

    public var description: String {
        var parts = ["\(url)"]
        if !headers.isEmpty { parts.append("headers=[\(headers.map(\.name).joined(separator: ","))]") }
        if !subprotocols.isEmpty { parts.append("subprotocols=\(subprotocols.joined(separator: ","))") }
        if url.secure || tls.insecure { parts.append("tls=(\(tls))") }
        parts.append("ping=\(pingInterval?.compact ?? "off")")
        parts.append("idle=\(idleTimeout?.compact ?? "off")")
        parts.append("max-message=\(maximumMessageSize)")
        return parts.joined(separator: " ")
    }
}

/// What the client throws or reports. Messages are for operators and never carry a header value,
/// a token or message content.
public enum WebSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    case invalidConfiguration(String)
    /// `send` while no connection is up (or after the connection it was meant for went down).
    case notConnected
    /// `send` with more queued than the configured limit: the peer is not reading.
    case sendQueueFull
    case closed
    /// The libwebsockets context or its service thread could not be set up.
    case serviceUnavailable(String)
    /// A connection attempt failed or a connection ended; the text says why.
    case connection(String)
    /// The server answered the upgrade request with this HTTP status instead of 101.
    case handshakeRefused(status: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let text): "invalid WebSocket configuration: \(text)"
        case .notConnected: "not connected"
        case .sendQueueFull: "the send queue is full"
        case .closed: "the client is closed"
        case .serviceUnavailable(let text): "WebSocket service unavailable: \(text)"
        case .connection(let text): text
        case .handshakeRefused(let status): "the server refused the WebSocket upgrade with HTTP \(status)"
        }
    }

    /// The HTTP status of a refused upgrade; nil for every other error.
    public var httpStatus: Int? {
        if case .handshakeRefused(let status) = self { return status }
        return nil
    }
}

/// Replaces every secret in a text by `<redacted>`: applied to everything the C library says
/// before it is reported, in case an error ever echoes a request line or a header.
struct Redactor: Sendable {
    let secrets: [String]

    func callAsFunction(_ text: String) -> String {
        var text = text
        for secret in secrets where text.contains(secret) {
            text = text.replacing(secret, with: "<redacted>")
        }
        return text
    }
}
