import MutewardenHTTP
import MutewardenModel

/// An HTTP client on the daemon's transport, shared by the providers that would make the same
/// one (same `identity`) and closed once none of them is left.
public final class ProviderHTTPClient: ClosableResource {
    public let client: HTTPClient

    private init(client: HTTPClient) { self.client = client }

    public func close() { client.close() }

    /// The client for `identity`, made from `configuration` by the first provider that asks.
    /// `ownThreadName` names the transport's thread when the context provides no transport.
    public static func client(
        context: ProviderContext, kind: String, label: String, identity: some Hashable & Sendable,
        configuration: HTTPClientConfiguration, ownThreadName: String
    ) throws -> ProviderHTTPClient {
        // The daemon provides its transport, run by the engine thread; providers built on their
        // own (tests, tools) share one with a thread of its own.
        let transport = try context.resource(.httpTransport) {
            try HTTPTransport(options: HTTPTransport.Options(threadName: ownThreadName))
        }
        return try context.resource(ResourceKey<ProviderHTTPClient>(kind: kind, label: label, identity: identity)) {
            ProviderHTTPClient(
                client: try HTTPClient(configuration: configuration, transport: transport) { report in
                    let severity: AuditSeverity =
                        switch report.severity {
                        case .critical: .critical
                        case .warning: .warning
                        case .info: .info
                        }
                    context.report(severity, "\(report)", [:])
                })
        }
    }
}

/// Keys that providers speaking HTTP read alike.
public enum HTTPSettingsReading {
    /// `url` when it is an absolute http(s) URL without a query or fragment; reports it otherwise.
    public static func httpURL(_ url: String, key: String, in section: any SettingsReader) -> String? {
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            section.error("'\(key)' must start with https:// (or http:// in a lab); found '\(url)'", key: key)
            return nil
        }
        guard !url.contains("?"), !url.contains("#"), !url.unicodeScalars.contains(where: { $0.value <= 0x20 }) else {
            section.error("'\(key)' must be a URL without a query, a fragment or spaces", key: key)
            return nil
        }
        return url
    }

    /// A positive duration between `low` and `high`; reports it otherwise.
    public static func duration(_ key: String, in section: any SettingsReader, from low: Duration, to high: Duration) -> Duration? {
        guard let value = section.positiveDuration(key) else { return nil }
        guard value >= low, value <= high else {
            section.error("'\(key)' must be between \(low.compact) and \(high.compact)", key: key)
            return nil
        }
        return value
    }

    /// `max_connections`, `timeout`, `connect_timeout` and `tls`, each kept as it is when absent.
    public static func http(
        _ section: any SettingsReader, maxConnections: inout Int, timeout: inout Duration, connectTimeout: inout Duration,
        tls: inout TLSOptions
    ) {
        if let count = section.int("max_connections", in: 1...64) { maxConnections = count }
        if let value = section.positiveDuration("timeout") { timeout = value }
        if let value = section.positiveDuration("connect_timeout") { connectTimeout = value }
        if let options = section.tlsOptions() { tls = options }
    }
}
