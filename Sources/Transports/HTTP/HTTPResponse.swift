import MutewardenModel

/// The HTTP version a response came over.
public enum HTTPVersion: String, Sendable, Hashable {
    case http1_0 = "HTTP/1.0"
    case http1_1 = "HTTP/1.1"
    case http2 = "HTTP/2"
    case http3 = "HTTP/3"
    case unknown
}

/// A complete answer from the server, whatever its status.
///
/// Any status is a *result*, not an error: only the provider knows whether a 404 means "no such
/// call" (call-gone) or "wrong URL" (permanent). The provider kit's `HTTPResponse.disposition`
/// gives the generic reading.
public struct HTTPResponse: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var status: Int
    /// Headers of the final response (after any redirect GET followed), in the order received.
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    public var version: HTTPVersion
    /// Connections this exchange had to open: 0 when it reused a kept-alive connection.
    public var connectionsOpened: Int
    /// From `send` to the last byte of the answer, including time waiting for a free connection.
    public var duration: Duration

    public init(
        status: Int, headers: [HTTPHeader] = [], body: [UInt8] = [], version: HTTPVersion = .http1_1,
        connectionsOpened: Int = 0, duration: Duration = .zero
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version
        self.connectionsOpened = connectionsOpened
        self.duration = duration
    }

    /// The first header with this name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }

    /// Every header with this name (e.g. several `Set-Cookie`).
    public func headers(named name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var text: String { String(decoding: body, as: UTF8.self) }

    public var isSuccess: Bool { (200..<300).contains(status) }

    public var description: String {
        "HTTP \(status) (\(version.rawValue), \(headers.count) headers, body \(body.count) bytes)"
    }

    // Response headers can carry a session (Set-Cookie) and bodies a token: redact like requests.
    public var debugDescription: String {
        let shown = headers.map(\.description).joined(separator: ", ")
        return "HTTP \(status) \(version.rawValue) headers: [\(shown)] body: \(body.count) bytes (not shown)"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "status": status,
                "version": version.rawValue,
                "headers": headers.map(\.description),
                "body": "\(body.count) bytes (not shown)",
                "connectionsOpened": connectionsOpened,
                "duration": duration.compact,
            ],
            displayStyle: .struct)
    }
}
