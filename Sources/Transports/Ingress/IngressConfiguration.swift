import MutewardenModel

/// How the callback ingress listens, and the limits every caller is held to. Compared by value at
/// a reload: an unchanged configuration keeps its listener.
public struct IngressConfiguration: Sendable, Hashable {
    /// TLS, or plain HTTP only when the configuration says so.
    public enum Security: Sendable, Hashable {
        /// PEM files: the server certificate (with its chain) and its private key.
        case tls(certificate: String, key: String)
        /// Plain HTTP. On a loopback address, for a proxy on the same machine; on any other only
        /// when `behindProxy` says a reverse proxy terminates TLS in front of it.
        case plain(behindProxy: Bool)
    }

    /// An IP address to listen on; "0.0.0.0" or "::" for every address.
    public var address: String
    /// 0: the kernel picks one (tests).
    public var port: Int
    public var security: Security
    /// Larger bodies are refused with 413, by their Content-Length before any byte is read.
    public var maximumBodySize: Int = 1 << 20
    /// The request line and headers together; a larger head closes the connection.
    public var maximumHeaderSize: Int = 8 * 1024
    /// From the connection's start (or the end of its previous answer) to the end of the headers;
    /// past it the connection is closed without an answer (a slow-loris client).
    public var headerTimeout: Duration = .seconds(10)
    /// From the end of the headers to the end of the body; past it, 408 and the connection closed.
    public var bodyTimeout: Duration = .seconds(30)
    /// How long a deferred authentication may take; past it, 503.
    public var authenticationTimeout: Duration = .seconds(10)
    /// How long a route's handler may take; past it, 503.
    public var handlerTimeout: Duration = .seconds(30)
    /// Connections open at once; more are closed as they arrive.
    public var maximumConnections: Int = 256
    /// At most one refusal record per reason in this interval; the others are counted into the next.
    public var refusalRecordInterval: Duration = .seconds(60)
    /// What the listener is called in records and errors: the daemon runs a second one for metrics.
    public var label = "callback ingress"

    public init(address: String, port: Int, security: Security) {
        self.address = address
        self.port = port
        self.security = security
    }

    public var isTLS: Bool {
        if case .tls = security { return true }
        return false
    }

    /// Whether `address` only reaches this machine.
    public static func isLoopback(_ address: String) -> Bool {
        address == "::1" || address == "localhost" || address.hasPrefix("127.")
    }

    /// What is wrong with these settings, in an operator's words; empty when they are usable.
    public var problems: [String] {
        var problems: [String] = []
        if case .plain(let behindProxy) = security, !behindProxy, !Self.isLoopback(address) {
            problems.append(
                "plain HTTP on \(address), which is not a loopback address: give a certificate and key, "
                    + "or say behind_proxy: true if a reverse proxy terminates TLS in front of the daemon")
        }
        if !(0...65535).contains(port) { problems.append("port \(port) is not between 0 and 65535") }
        if maximumBodySize < 1 { problems.append("the body cap must be at least 1 byte") }
        if !(1024...65535).contains(maximumHeaderSize) { problems.append("the header cap must be between 1024 and 65535 bytes") }
        if !(1...65535).contains(maximumConnections) { problems.append("the connection cap must be between 1 and 65535") }
        for (name, value) in [
            ("header", headerTimeout), ("body", bodyTimeout), ("authentication", authenticationTimeout), ("handler", handlerTimeout),
        ] where value <= .zero {
            problems.append("the \(name) timeout must be positive")
        }
        return problems
    }

    /// "https://0.0.0.0:8443" and how it is protected, for records; no file contents.
    public var summary: String {
        switch security {
        case .tls: "https://\(address):\(port)"
        case .plain(let behindProxy): "http://\(address):\(port)" + (behindProxy ? " (behind a reverse proxy)" : "")
        }
    }
}
