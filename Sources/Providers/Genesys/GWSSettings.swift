import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit
import MutewardenSupervisor

/// Settings of the `genesys` feed and target (docs/providers/genesys.md).
public struct GWSSettings: FeedSettings, TargetSettings, Sendable, Hashable {
    public var baseURL: String
    public var username: String
    public var password: Secret
    public var cometdPath = "/api/v2/notifications"
    public var channels = ["/v2/me/calls"]
    /// The agent's DN for calls listed by a resync, which GWS lists without it.
    public var agentExtension: String?
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()
    public var reconnect = ReconnectPolicy()
    /// `long-polling` (GWS 8.5 offers nothing else) or `websocket` (CometD servers that offer it).
    public var transport = BayeuxConnectionType.longPolling
    /// A notification larger than this is logged and skipped: no call event is anywhere near it,
    /// and its attributes would be held in memory for the whole call.
    public var maximumMessageBytes = 256 << 10
    /// This feed's or target's own share of the connections to GWS (`max_connections`): the feed
    /// needs its long poll and a resync; the target as many actions as may be under way at once.
    public var maxConnections: Int
    public var isFeed: Bool

    public var summary: String {
        "genesys: \(baseURL) as \(username) (password \(password))"
            + (isFeed ? ", CometD \(cometdPath) on \(channels.joined(separator: ", ")), \(transport.rawValue)" : ", voice API")
            + (tls.insecure ? ", TLS verification OFF" : "")
    }

    public var confirmsByEvent: Bool { true }

    /// What a login is made of. A feed and a target of one configuration with the same server,
    /// user, password and TLS options share one login: the target's first action then needs no
    /// login of its own. The session's default timeouts are those of the first of them built; the
    /// target and the feed's long polls set their own per request. A reload that changes a
    /// provider's settings (a rotated password behind the same `${file:…}` included) builds it
    /// with a new session, since resources are never shared across generations; the old session is
    /// closed once nothing uses it.
    struct SessionIdentity: Hashable, Sendable {
        var baseURL: String
        var username: String
        var password: Secret
        var tls: TLSOptions
    }

    /// The thread of the transport a provider makes when its context provides none.
    public static let ownTransportThreadName = "mw-http-gws"

    func session(context: ProviderContext) throws -> GWSSession {
        let configuration = HTTPClientConfiguration(
            name: "genesys \(baseURL)", timeout: timeout, connectTimeout: connectTimeout,
            // Long polls are held by the server: the Bayeux client sets each one's own deadline.
            tls: tls, cookieSession: true)
        // The daemon provides its transport, run by the engine thread; providers built on their
        // own (tests, tools) share one with a thread of its own, named so that it can be told
        // from other transports' threads.
        let transport = try context.resource(.httpTransport) {
            try HTTPTransport(options: HTTPTransport.Options(threadName: Self.ownTransportThreadName))
        }
        // GWS ties the CometD session and the voice API to the same cookie and CSRF token.
        let key = ResourceKey<GWSSession>(
            kind: "genesys session", label: "\(baseURL) as \(username)",
            identity: SessionIdentity(baseURL: baseURL, username: username, password: password, tls: tls))
        return try context.resource(key) {
            try GWSSession(
                baseURL: baseURL, username: username, password: password.reveal(), configuration: configuration,
                transport: transport, report: { message in context.report(.warning, message, [:]) })
        }
    }

    public func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed {
        GWSFeed(name: name, session: try session(context: context), settings: self, context: context)
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        GWSTarget(name: name, session: try session(context: context), timeout: timeout, maxConnections: maxConnections)
    }

    static func decode(_ section: any SettingsReader, feed: Bool) -> GWSSettings? {
        let baseURL = section.requiredString("base_url")
        if let baseURL, !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) {
            section.error("'base_url' must start with https:// (or http:// in a lab); found '\(baseURL)'", key: "base_url")
        }
        let username = section.requiredString("username")
        let password = section.requiredSecret("password")
        var settings = GWSSettings(
            baseURL: baseURL ?? "", username: username ?? "", password: password ?? Secret(reference: "inline", value: ""),
            maxConnections: feed ? 4 : 8, isFeed: feed)
        if feed {
            if let path = section.string("cometd_path") {
                if path.hasPrefix("/") {
                    settings.cometdPath = path
                } else {
                    section.error("'cometd_path' must start with '/'", key: "cometd_path")
                }
            }
            if let channels = section.stringList("channels") {
                if channels.isEmpty { section.error("'channels' needs at least one channel", key: "channels") }
                settings.channels = channels
            }
            if let transport = section.choice("transport", BayeuxConnectionType.self) { settings.transport = transport }
            // Up to the transports' own limit (the HTTP body cap, the WebSocket frame cap).
            if let bytes = section.int("max_message_size", in: 1024...(4 << 20)) { settings.maximumMessageBytes = bytes }
            settings.agentExtension = section.string("agent_extension")
            if let maximum = section.positiveDuration("reconnect_max") { settings.reconnect.maximumDelay = maximum }
        }
        if let count = section.int("max_connections", in: 1...64) { settings.maxConnections = count }
        if let timeout = section.positiveDuration("timeout") { settings.timeout = timeout }
        if let timeout = section.positiveDuration("connect_timeout") { settings.connectTimeout = timeout }
        if let tls = section.tlsOptions() { settings.tls = tls }
        guard baseURL != nil, username != nil, password != nil else { return nil }
        return settings
    }

    public static let feedProvider = FeedProvider(type: "genesys") { decode($0, feed: true) }
    public static let targetProvider = TargetProvider(type: "genesys") { decode($0, feed: false) }
}

/// The Bayeux connection types the feed speaks.
public enum BayeuxConnectionType: String, Sendable, Hashable, CaseIterable {
    case longPolling = "long-polling"
    case websocket
}

extension GWSSession: ClosableResource {}
