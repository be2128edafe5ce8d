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

    /// The bounds advice is held to: a server's number never becomes a trap, a ten-minute sleep
    /// between connects, or a connect that never times out. Bayeux leaves them open; CometD's own
    /// defaults are a 30 s timeout and a 0 interval. Over long-polling the interval is time in
    /// which events wait in the server unseen, and a CometD server drops a client that has not
    /// connected within interval + maxInterval (10 s by default): more than 10 s helps nobody.
    public static let timeoutRange: ClosedRange<Duration> = .zero ... .seconds(120)
    public static let intervalRange: ClosedRange<Duration> = .zero ... .seconds(10)

    /// The advice with whatever `json` says laid over it, and a warning for each value that was
    /// out of range (clamped) or not a number at all (ignored).
    public func updated(with json: JSONValue?) -> (advice: BayeuxAdvice, warnings: [String]) {
        guard let json, case .object = json else { return (self, []) }
        var advice = self
        var warnings: [String] = []
        if let reconnect = json["reconnect"]?.string.flatMap(Reconnect.init(rawValue:)) { advice.reconnect = reconnect }
        if let value = json["timeout"] {
            if let timeout = Self.milliseconds(value, in: Self.timeoutRange, name: "timeout", warnings: &warnings) {
                advice.timeout = timeout
            }
        }
        if let value = json["interval"] {
            if let interval = Self.milliseconds(value, in: Self.intervalRange, name: "interval", warnings: &warnings) {
                advice.interval = interval
            }
        }
        return (advice, warnings)
    }

    /// A count of milliseconds from the server, checked before any conversion: a non-number is
    /// ignored, anything outside `range` (1e300, -5, infinity) is clamped to it.
    static func milliseconds(
        _ value: JSONValue, in range: ClosedRange<Duration>, name: String, warnings: inout [String]
    ) -> Duration? {
        guard let number = value.number, !number.isNaN else {
            warnings.append("the server's advice has a \(name) that is not a number; ignored")
            return nil
        }
        let low = Double(range.lowerBound.nanosecondsClamped) / 1e6
        let high = Double(range.upperBound.nanosecondsClamped) / 1e6
        guard number >= low, number <= high else {
            let clamped = number < low ? range.lowerBound : range.upperBound
            warnings.append(
                "the server advised a \(name) of \(number) ms, outside \(Int64(low))–\(Int64(high)) ms; using \(clamped.compact)")
            return clamped
        }
        return .nanoseconds(Int64(number * 1e6))
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
