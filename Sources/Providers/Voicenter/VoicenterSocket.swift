import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

// The seam between the Voicenter feed and a socket.io client. The feed owns everything above
// the wire (login, token refresh, server fail-over, keepalive, resync, mapping), and asks a
// connector for one socket.io connection at a time; the connector owns the wire (Engine.IO
// open, ping/pong, packets) and never reconnects by itself, so that fail-over to the next server
// and a new login after a refused token stay decisions of the feed.

/// The Engine.IO protocol version a connection speaks. Voicenter's own SDK bundles socket.io
/// 1.3.7, which is Engine.IO 3; `auto` tries 4 and falls back to 3 when the handshake is refused
/// as an unsupported version (HTTP 400).
public enum VoicenterSocketIOVersion: String, Sendable, Hashable, CaseIterable {
    case v3 = "3"
    case v4 = "4"
    case auto
}

/// What the feed asks a connector to open.
public struct VoicenterSocketRequest: Sendable, Hashable, CustomStringConvertible {
    /// The monitor server, `https://monitor1.voicenter.co`; the socket.io path (`/socket.io/`)
    /// is the client's to add, with `EIO`, `transport=websocket` and `token` in the query.
    public var serverURL: String
    /// The login's `Token`, sent as the `token` query parameter: a secret, which no description
    /// of the request shows.
    public var token: Secret
    public var version: VoicenterSocketIOVersion
    public var tls: TLSOptions
    /// Up to the socket.io CONNECT (EIO3: the open packet and the server's `40`; EIO4: `40{sid}`).
    public var connectTimeout: Duration

    public init(serverURL: String, token: Secret, version: VoicenterSocketIOVersion, tls: TLSOptions, connectTimeout: Duration) {
        self.serverURL = serverURL
        self.token = token
        self.version = version
        self.tls = tls
        self.connectTimeout = connectTimeout
    }

    public var description: String { "socket.io (EIO \(version.rawValue)) to \(serverURL)" }
}

/// One socket.io event from the server: `42["name", data]`, with `data` the first argument
/// (`null` when the event has none). Acks and other namespaces are the client's business.
///
/// The data stays a parsed but unbuilt document, which the feed reads in place; ``data`` builds it.
public struct VoicenterSocketMessage: Sendable, Hashable {
    public var name: String
    public var node: JSONNode

    public init(name: String, data: JSONValue) {
        self.init(name: name, node: JSONDocument(data).root)
    }

    public init(name: String, node: JSONNode) {
        self.name = name
        self.node = node
    }

    public var data: JSONValue { node.value }

    public static func == (lhs: VoicenterSocketMessage, rhs: VoicenterSocketMessage) -> Bool {
        lhs.name == rhs.name && lhs.data == rhs.data
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(data)
    }
}

/// One socket.io connection, open until it ends or is closed. One task reads it (``nextBatch()``);
/// ``emit(_:_:)`` and ``close()`` may be called from any task meanwhile (the feed's timers emit
/// `keepalive` while its reader waits).
public protocol VoicenterSocketSession: Sendable {
    /// The next events, in arrival order, as many as one read brought (at least one). Returns
    /// nil once the connection has ended cleanly (a server disconnect, `41`, or ``close()``);
    /// throws the reason it ended otherwise (a missed ping deadline, a reset). Waiting here is
    /// what holds the server back: a client stops reading the socket while its consumer is
    /// behind.
    func nextBatch() async throws -> [VoicenterSocketMessage]?
    /// Sends `42["event", data]`. Throws if the connection is gone; never blocks on the network.
    func emit(_ event: String, _ data: JSONValue) throws
    /// Closes the connection (idempotent); ``nextBatch()`` then returns nil.
    func close() async
}

/// Opens socket.io connections for the feed.
public protocol VoicenterSocketConnector: Sendable {
    /// Opens one connection and returns once socket.io is connected to the default namespace.
    /// Throws ``VoicenterSocketError/tokenRefused(_:)`` when the server refuses the token (HTTP
    /// 401 on the WebSocket handshake, or a `44` CONNECT error, after which the client closes the
    /// Engine.IO session itself): the feed then logs in again rather than retrying the token.
    ///
    /// `report` takes the client's own operator messages (a version fallback, a skipped
    /// malformed packet): never a token or a packet's content.
    func connect(
        _ request: VoicenterSocketRequest, report: @escaping @Sendable (String) -> Void
    ) async throws -> any VoicenterSocketSession
}

/// Failures a connector reports in terms the feed acts on; anything else it throws means "this
/// server, this time": the feed moves to the next server after a backoff.
public enum VoicenterSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server refused the token: log in again before the next attempt.
    case tokenRefused(String)
    /// No socket.io client in this build.
    case unavailable(String)

    public var description: String {
        switch self {
        case .tokenRefused(let why): "the monitor server refused the login token: \(why)"
        case .unavailable(let why): why
        }
    }
}

/// The connector of a build without a socket.io client: every attempt fails with a reason an
/// operator can read, so the feed shows as down (and retries with backoff) while the rest of the
/// daemon, the `voicenter` target included, runs.
public struct UnavailableSocketConnector: VoicenterSocketConnector {
    public init() {}

    public func connect(
        _ request: VoicenterSocketRequest, report: @escaping @Sendable (String) -> Void
    ) async throws -> any VoicenterSocketSession {
        throw VoicenterSocketError.unavailable("this build has no socket.io client for the voicenter feed")
    }
}
