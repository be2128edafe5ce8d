import MutewardenJSON
import MutewardenModel
import MutewardenWebSocket

/// Which Engine.IO revision to ask for.
public enum SocketIOVersionChoice: String, Sendable, Hashable, CustomStringConvertible {
    case v3 = "3"
    case v4 = "4"
    /// v4 first; when a server refuses it as unsupported (HTTP 400 on the handshake), v3 at once,
    /// and the version that worked from then on (the other again should that one be refused).
    case auto

    public var description: String { self == .auto ? "auto" : "Engine.IO v\(rawValue)" }
}

/// A query parameter of the handshake URL. Its value is a secret as far as logs go (Voicenter's
/// token travels there): descriptions show only its name.
public struct SocketIOQueryItem: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=<redacted>" }
}

/// Everything a ``SocketIOClient`` needs. Its description shows no query value, header value or
/// auth payload.
public struct SocketIOConfiguration: Sendable, CustomStringConvertible {
    /// Scheme, host, port and path of the server; its query, if any, is sent as it is.
    public var url: WebSocketURL
    /// Added to `EIO` and `transport`, percent-encoded; each value is kept out of logs.
    public var query: [SocketIOQueryItem]
    public var headers: [WebSocketHeader]
    public var tls: TLSOptions
    public var version: SocketIOVersionChoice
    public var namespace: String
    /// The CONNECT payload on Engine.IO v4 (`40{"token":…}`); never logged. v3 has none.
    public var auth: JSONValue?
    /// Name resolution, TCP, TLS and the WebSocket upgrade, together.
    public var connectTimeout: Duration
    /// The Engine.IO open packet, then the socket.io CONNECT, each within this.
    public var handshakeTimeout: Duration
    public var closeTimeout: Duration
    /// A larger frame closes the connection (1009).
    public var maximumMessageSize: Int
    public var receiveBufferLimit: Int

    /// - Parameter url: `ws://`, `wss://`, `http://` or `https://` (what Voicenter's login answer
    ///   gives), with the socket.io path (`/socket.io/` when the URL has none). The error
    ///   (`SocketIOError.invalidConfiguration`) never quotes the URL, which may carry a token.
    public init(
        url: String, query: [SocketIOQueryItem] = [], headers: [WebSocketHeader] = [], tls: TLSOptions = TLSOptions(),
        version: SocketIOVersionChoice = .auto, namespace: String = "/", auth: JSONValue? = nil,
        connectTimeout: Duration = .seconds(10), handshakeTimeout: Duration = .seconds(10), closeTimeout: Duration = .seconds(2),
        maximumMessageSize: Int = 4 << 20, receiveBufferLimit: Int = 8 << 20
    ) throws(SocketIOError) {
        var text = url
        if text.hasPrefix("https://") {
            text = "wss://" + text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            text = "ws://" + text.dropFirst(7)
        }
        var parsed: WebSocketURL
        do {
            parsed = try WebSocketURL(text)
        } catch {
            throw .invalidConfiguration(Self.reason(error))
        }
        if parsed.path == "/" { parsed.path = "/socket.io/" }
        self.url = parsed
        self.query = query
        self.headers = headers
        self.tls = tls
        self.version = version
        self.namespace = namespace
        self.auth = auth
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self.maximumMessageSize = maximumMessageSize
        self.receiveBufferLimit = receiveBufferLimit
    }

    public func validate() throws(SocketIOError) {
        guard namespace.hasPrefix("/"), !namespace.contains(","), namespace.utf8.count <= 256 else {
            throw .invalidConfiguration("the namespace must start with / and have no comma")
        }
        guard query.allSatisfy({ !$0.name.isEmpty }) else { throw .invalidConfiguration("a query parameter has no name") }
        for (name, value) in [("handshake timeout", handshakeTimeout), ("connect timeout", connectTimeout)] where value <= .zero {
            throw .invalidConfiguration("the \(name) must be positive")
        }
        do {
            try webSocket(for: .v4).validate()
        } catch {
            throw .invalidConfiguration(Self.reason(error))
        }
    }

    /// The WebSocket layer's reason, without its own "invalid WebSocket configuration" in front.
    private static func reason(_ error: any Error) -> String {
        if case WebSocketError.invalidConfiguration(let text)? = error as? WebSocketError { return text }
        return "\(error)"
    }

    /// The WebSocket side of one handshake at `version`.
    ///
    /// No WebSocket pings and no idle limit: the Engine.IO heartbeat is what says whether the
    /// server is there, with the server's own timing.
    func webSocket(for version: EngineIOVersion) -> WebSocketConfiguration {
        var target = url
        var items = ["EIO=\(version.rawValue)", "transport=websocket"]
        if !url.query.isEmpty { items.append(url.query) }
        items += query.map { "\(Self.percentEncoded($0.name))=\(Self.percentEncoded($0.value))" }
        target.query = items.joined(separator: "&")
        return WebSocketConfiguration(
            url: target, headers: headers, tls: tls, pingInterval: nil, idleTimeout: nil, connectTimeout: connectTimeout,
            closeTimeout: closeTimeout, maximumMessageSize: maximumMessageSize, receiveBufferLimit: receiveBufferLimit)
    }

    /// Everything but RFC 3986's unreserved characters, as `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                output.unicodeScalars.append("%")
                output.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                output.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0f)]))
            }
        }
        return output
    }

    public var description: String {
        var parts = ["\(url)", "version=\(version)"]
        if namespace != "/" { parts.append("namespace=\(namespace)") }
        if !query.isEmpty { parts.append("query=[\(query.map(\.name).joined(separator: ","))]") }
        if !headers.isEmpty { parts.append("headers=[\(headers.map(\.name).joined(separator: ","))]") }
        if auth != nil { parts.append("auth=<redacted>") }
        if url.secure || tls.insecure { parts.append("tls=(\(tls))") }
        return parts.joined(separator: " ")
    }
}

/// What the socket.io client throws. Messages are for operators and never carry a token, a
/// header value or a packet's content.
public enum SocketIOError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server refused the credentials: HTTP 401 or 403 on the handshake (Engine.IO v3
    /// servers), or a `44` CONNECT error (v4). Log in again before reconnecting.
    case authRefused(String)
    /// The server does not speak this Engine.IO version (HTTP 400 on the handshake).
    case versionRefused(EngineIOVersion, status: Int)
    /// The handshake was answered with another HTTP status.
    case handshakeRefused(status: Int)
    /// The WebSocket connection could not be made; why, in the WebSocket layer's words.
    case connectionFailed(String)
    /// The session ended (before its CONNECT, for a reason other than a refusal, or after).
    case ended(SocketIOSessionEnd)
    /// An emit on a session that is not (or no longer) connected.
    case notConnected
    /// An emit while more than the WebSocket's send limit waits to be written.
    case sendQueueFull
    case invalidConfiguration(String)

    /// Whether the credentials must be renewed before the next connection: retrying with the
    /// same token would only be refused again.
    public var requiresLogin: Bool {
        switch self {
        case .authRefused: true
        case .ended(let end): end.requiresLogin
        default: false
        }
    }

    public var description: String {
        switch self {
        case .authRefused(let text): "auth refused: \(text); a new login is needed"
        case .versionRefused(let version, let status):
            "the server refused \(version) (HTTP \(status)): it speaks another Engine.IO version"
        case .handshakeRefused(let status): "the server refused the socket.io handshake with HTTP \(status)"
        case .connectionFailed(let text): text
        case .ended(let end): "\(end)"
        case .notConnected: "the socket.io session is not connected"
        case .sendQueueFull: "the send queue is full"
        case .invalidConfiguration(let text): "invalid socket.io configuration: \(text)"
        }
    }
}
