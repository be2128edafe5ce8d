/// TLS settings of one client (a target, or a feed over HTTP or WebSocket). Verification is on
/// unless `insecure` is set. One type for both transports, so that a provider whose feed and
/// actions use different transports (Bayeux over WebSocket plus a REST API) configures TLS once.
public struct TLSOptions: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// PEM file of the CAs to trust *instead of* the system store (e.g. a private PKI). nil: the
    /// system store (`/etc/ssl/certs/ca-certificates.crt` on Debian).
    public var caBundlePath: String?
    /// PEM client certificate for mutual TLS; may also hold the key.
    public var clientCertificatePath: String?
    /// PEM private key of the client certificate, when it is a separate file.
    public var clientKeyPath: String?
    /// Passphrase of an encrypted key. Never printed.
    public var clientKeyPassword: String?
    /// Accept any certificate and any host name. For a lab only: the client reports it at
    /// `critical` when it is created, because anyone on the path can then read the credentials.
    public var insecure: Bool

    public init(
        caBundlePath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil,
        clientKeyPassword: String? = nil, insecure: Bool = false
    ) {
        self.caBundlePath = caBundlePath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
        self.clientKeyPassword = clientKeyPassword
        self.insecure = insecure
    }

    public var description: String {
        var parts = [insecure ? "INSECURE (no verification)" : "verified"]
        parts.append("CA \(caBundlePath ?? "system store")")
        if let clientCertificatePath { parts.append("client certificate \(clientCertificatePath)") }
        if let clientKeyPath { parts.append("key \(clientKeyPath)") }
        if clientKeyPassword != nil { parts.append("key passphrase \("<redacted>")") }
        return parts.joined(separator: ", ")
    }

    public var customMirror: Mirror { Mirror(self, children: ["tls": description], displayStyle: .struct) }
}
