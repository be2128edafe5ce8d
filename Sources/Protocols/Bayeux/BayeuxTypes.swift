import MutewardenJSON

/// Carries Bayeux message batches to the server and back, over long-polling or WebSocket.
///
/// `exchange` sends one batch and returns the messages that answer it: the HTTP response body for
/// long-polling, the replies matching the batch's ids for WebSocket. Delivered events may come
/// mixed with them. A transport throws ``BayeuxHTTPStatus`` for a non-2xx answer, so that the
/// client can tell an authentication failure from anything else.
///
/// A transport whose server writes events whenever it likes (WebSocket) hands them to the `push`
/// handler given to ``open(push:)``; the client delivers them exactly as it delivers events that
/// came in an exchange's answer.
public protocol BayeuxTransport: Sendable {
    /// `long-polling` or `websocket`: what the handshake offers.
    var connectionType: String { get }
    /// Before every handshake: sets up what one session runs on (a WebSocket connection).
    func open(push: @escaping @Sendable (BayeuxMessages) -> Void) async throws
    func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages
    /// After every session, however it ended.
    func close() async
}

extension BayeuxTransport {
    /// Long-polling needs nothing per session: each exchange is a request of its own.
    public func open(push: @escaping @Sendable (BayeuxMessages) -> Void) async throws {}
    public func close() async {}
}

/// Messages as they came from the server, in one long-poll answer or one WebSocket frame.
public struct BayeuxMessages: Sendable {
    public var messages: [JSONValue]
    /// The size of that answer or frame: no message in it can be larger, which lets a consumer
    /// skip measuring messages one by one when the whole is small.
    public var byteCount: Int

    public init(_ messages: [JSONValue], byteCount: Int) {
        self.messages = messages
        self.byteCount = byteCount
    }
}

/// A non-2xx HTTP answer from the Bayeux endpoint.
public struct BayeuxHTTPStatus: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: Int
    public init(status: Int) { self.status = status }
    public var description: String { "HTTP \(status) from the Bayeux endpoint" }
}

/// A Bayeux error string, `code:args:message` (e.g. `402:xj3s:Unknown Client ID`, `403::Unknown client`).
public struct BayeuxErrorString: Sendable, Hashable, CustomStringConvertible {
    public var code: Int?
    public var arguments: [String]
    public var message: String

    public init(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3, let code = Int(parts[0]) {
            self.code = code
            arguments = parts[1].isEmpty ? [] : parts[1].split(separator: ",").map(String.init)
            message = parts[2]
        } else {
            code = nil
            arguments = []
            message = text
        }
    }

    public var description: String { code.map { "\($0): \(message)" } ?? message }

    /// The server no longer knows the client: a new handshake is the cure. CometD says 402;
    /// some servers (Salesforce) say `403::Unknown client`; CometD's own server `session_unknown`.
    public var meansUnknownClient: Bool {
        let lowered = message.lowercased()
        return code == 402 || lowered.contains("unknown client") || lowered.contains("session_unknown")
    }

    /// Refused credentials or permissions, which a new handshake alone will not fix.
    public var meansAuthenticationFailure: Bool {
        (code == 401 || code == 403) && !meansUnknownClient
    }
}

/// The server's advice. "Advice received always supersedes any previous received advice."
public struct BayeuxAdvice: Sendable, Hashable {
    public enum Reconnect: String, Sendable, Hashable {
        case retry, handshake, none
    }

    public var reconnect: Reconnect = .retry
    /// How long the server may hold a `/meta/connect` (CometD's default is 30 s).
    public var timeout: Duration = .seconds(30)
    /// How long to wait before the next `/meta/connect`.
    public var interval: Duration = .zero

    public init() {}

    /// The advice with whatever `json` says laid over it.
    func updated(with json: JSONValue?) -> BayeuxAdvice {
        guard let json, case .object = json else { return self }
        var advice = self
        if let reconnect = json["reconnect"]?.string.flatMap(Reconnect.init(rawValue:)) { advice.reconnect = reconnect }
        if let timeout = json["timeout"]?.number, timeout >= 0 { advice.timeout = .milliseconds(Int64(timeout)) }
        if let interval = json["interval"]?.number, interval >= 0 { advice.interval = .milliseconds(Int64(interval)) }
        return advice
    }
}

/// A message delivered on a subscribed channel.
public struct BayeuxEvent: Sendable, Hashable {
    public var channel: String
    public var data: JSONValue
    public var id: String?
    /// The size of the answer or frame it came in: an upper bound of its own size.
    public var envelopeBytes: Int = 0
}

/// Why a session ended, in an operator's words; the supervisor logs it and backs off.
public enum BayeuxFailure: Error, Sendable, Hashable, CustomStringConvertible {
    case handshakeRefused(String)
    /// Credentials or permissions refused (HTTP 401/403, or Bayeux 401/403 that is not an unknown client).
    case authenticationFailed(String)
    case unknownClient(String)
    case subscriptionDenied(channel: String, reason: String)
    case serverSaidStop(String)
    case malformedReply(String)
    case connectFailed(String)
    /// The connection a session ran on failed or closed (WebSocket).
    case connectionLost(String)

    public var description: String {
        switch self {
        case .handshakeRefused(let why): "handshake refused: \(why)"
        case .authenticationFailed(let why): "authentication failed: \(why)"
        case .unknownClient(let why): "the server no longer knows this client (\(why)); handshaking again"
        case .subscriptionDenied(let channel, let why): "subscription to \(channel) denied: \(why)"
        case .serverSaidStop(let why): "the server advised not to reconnect (\(why)); retrying with backoff anyway"
        case .malformedReply(let why): "malformed reply: \(why)"
        case .connectFailed(let why): "/meta/connect failed: \(why)"
        case .connectionLost(let why): "connection lost: \(why)"
        }
    }
}
