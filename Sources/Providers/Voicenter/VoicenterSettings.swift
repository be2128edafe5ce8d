import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit
import MutewardenSupervisor

/// How the feed logs in: `login: token | user | account`.
public enum VoicenterLoginKind: String, Sendable, Hashable, CaseIterable {
    case token, user, account
}

/// A socket.io client for the feed, compared by its name: settings are compared at every reload,
/// and the build's one connector stays the same object for the daemon's life.
public struct VoicenterConnectorChoice: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let connector: any VoicenterSocketConnector

    public init(name: String, connector: any VoicenterSocketConnector) {
        self.name = name
        self.connector = connector
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
    public var description: String { name }

    /// A build without a socket.io client.
    public static let unavailable = VoicenterConnectorChoice(name: "none", connector: UnavailableSocketConnector())
    /// The build's socket.io client (`MutewardenSocketIO`), which the daemon uses.
    public static let socketIO = VoicenterConnectorChoice(name: "socket.io", connector: SocketIOVoicenterConnector())
}

/// Settings of the `voicenter` feed (docs/providers/voicenter.md).
public struct VoicenterFeedSettings: FeedSettings, Sendable, Hashable {
    public static let defaultLoginURL = "https://loginapi.voicenter.co.il/monitorAPI"
    /// The vendor's SDK's own fail-over list (VoicenterEventsSDK `src/config.js`), tried after the
    /// servers the login names.
    public static let defaultServers = [
        "https://monitor1.voicenter.co", "https://monitor3.voicenter.co.il", "https://monitor4.voicenter.co.il",
        "https://monitor11.voicenter.co", "https://monitor5.voicenter.co.il",
    ]

    public var loginURL = defaultLoginURL
    public var credentials: VoicenterCredentials
    public var servers = defaultServers
    /// Engine.IO 3 by default: the vendor's SDK speaks socket.io 1.3.7, and a client of the other
    /// version is refused with HTTP 400.
    public var socketIOVersion = VoicenterSocketIOVersion.v3
    public var keepalive: Duration = .seconds(60)
    public var resyncInterval: Duration = .seconds(300)
    public var extensionField = VoicenterExtensionField.extenUser
    /// The feed's own share of the connections to the login API (logins and refreshes only).
    public var maxConnections = 2
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()
    public var reconnect = ReconnectPolicy()
    public var connector: VoicenterConnectorChoice

    public var summary: String {
        "voicenter: login \(loginURL) by \(credentials), then socket.io (EIO \(socketIOVersion.rawValue), client \(connector)) "
            + "to the servers the login names, then \(servers.count) more; keepalive \(keepalive.compact); extensions by "
            + extensionField.rawValue + (tls.insecure ? ", TLS verification OFF" : "")
            + (connector == .unavailable ? " (this build has no socket.io client: the feed cannot connect)" : "")
    }

    /// The feed logic's settings for the feed named `feed`.
    public func coreConfiguration(feed: String) -> VoicenterFeedCore.Configuration {
        VoicenterFeedCore.Configuration(
            feed: feed, extensionField: extensionField, keepaliveAfter: keepalive, resyncInterval: resyncInterval)
    }

    /// What the login's HTTP client is made of.
    struct LoginClientIdentity: Hashable, Sendable {
        var loginURL: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    /// The thread of the transport a provider makes when its context provides none.
    public static let ownTransportThreadName = "mw-http-voicenter"

    public func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed {
        let http = try ProviderHTTPClient.client(
            context: context, kind: "voicenter login client", label: loginURL,
            identity: LoginClientIdentity(loginURL: loginURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(name: "voicenter login \(loginURL)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
            ownThreadName: VoicenterFeedSettings.ownTransportThreadName)
        let login = VoicenterLoginClient(
            loginURL: loginURL, credentials: credentials, http: http.client,
            budget: HTTPBudget(name: "voicenter feed \(name)", maxConnections: maxConnections))
        return VoicenterFeed(name: name, settings: self, login: login, context: context)
    }

    static func decode(_ section: any SettingsReader, connector: VoicenterConnectorChoice) -> VoicenterFeedSettings? {
        var valid = true
        let loginURL = section.string("login_url").map { url in
            if HTTPSettingsReading.httpURL(url, key: "login_url", in: section) == nil { valid = false }
            return url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        let kind = section.choice("login", VoicenterLoginKind.self) ?? (section.string("login") == nil ? .token : nil)
        if kind == nil { valid = false }
        // Every credential key is read whatever the kind, so that one given with the wrong kind is
        // named as such rather than reported as unknown.
        let token = section.secret("token")
        let email = section.string("email")
        let pin = section.secret("pin")
        let username = section.string("username")
        let password = section.secret("password")
        let given: [(key: String, present: Bool, kind: VoicenterLoginKind)] = [
            ("token", token != nil, .token), ("email", email != nil, .user), ("pin", pin != nil, .user),
            ("username", username != nil, .account), ("password", password != nil, .account),
        ]
        var credentials: VoicenterCredentials?
        if let kind {
            for entry in given where entry.present && entry.kind != kind {
                section.error(
                    "'\(entry.key)' is read only with 'login: \(entry.kind.rawValue)'; this feed has 'login: \(kind.rawValue)'", key: entry.key)
                valid = false
            }
            func required(_ keys: [String]) -> Bool {
                let missing = keys.filter { key in !given.contains { $0.key == key && $0.present } }
                for key in missing {
                    section.error("'login: \(kind.rawValue)' needs '\(key)'", key: "login")
                }
                return missing.isEmpty
            }
            switch kind {
            case .token:
                if required(["token"]), let token { credentials = .token(token) }
            case .user:
                if required(["email", "pin"]), let email, let pin { credentials = .user(email: email, pin: pin) }
            case .account:
                if required(["username", "password"]), let username, let password {
                    credentials = .account(username: username, password: password)
                }
            }
        }
        var settings = VoicenterFeedSettings(
            credentials: credentials ?? .token(Secret(reference: "inline", value: "")), connector: connector)
        if let loginURL { settings.loginURL = loginURL }
        if let servers = section.stringList("servers") {
            settings.servers = []
            for server in servers {
                if let normalized = VoicenterLoginAnswer.normalizedServer(server) {
                    settings.servers.append(normalized)
                } else {
                    section.error("'servers': '\(server)' is not a server name or an http(s) URL", key: "servers")
                    valid = false
                }
            }
        }
        if let version = section.choice("socketio_version", VoicenterSocketIOVersion.self) { settings.socketIOVersion = version }
        if let keepalive = HTTPSettingsReading.duration("keepalive", in: section, from: .seconds(1), to: .seconds(600)) {
            settings.keepalive = keepalive
        }
        if let interval = HTTPSettingsReading.duration("resync_interval", in: section, from: .seconds(10), to: .seconds(86_400)) {
            settings.resyncInterval = interval
        }
        if let field = section.choice("extension_field", VoicenterExtensionField.self) { settings.extensionField = field }
        if let maximum = section.positiveDuration("reconnect_max") { settings.reconnect.maximumDelay = maximum }
        HTTPSettingsReading.http(
            section, maxConnections: &settings.maxConnections, timeout: &settings.timeout, connectTimeout: &settings.connectTimeout,
            tls: &settings.tls)
        guard valid, credentials != nil else { return nil }
        return settings
    }

    /// The `voicenter` feed with the socket.io client `connector` (tests pass
    /// another; ``feedProvider`` has the build's socket.io client).
    public static func feedProvider(connector: VoicenterConnectorChoice) -> FeedProvider {
        FeedProvider(type: "voicenter") { decode($0, connector: connector) }
    }

    public static let feedProvider = feedProvider(connector: .socketIO)
}

/// `MuteUnmuteCalls` request form: `method: post-json | get`.
public enum VoicenterMuteMethod: String, Sendable, Hashable, CaseIterable {
    case postJSON = "post-json"
    case get
}

/// Settings of the `voicenter` target (docs/providers/voicenter.md).
public struct VoicenterTargetSettings: TargetSettings, Sendable, Hashable {
    /// The whole `MuteUnmuteCalls` URL: `{monitor_url}/api/MuteUnmuteCalls`, or `mute_url` as given.
    public var muteURL: String
    public var method = VoicenterMuteMethod.postJSON
    /// Success is `recording.IsMuted` on the feed, not the API's ErrorCode 200, which only says the
    /// request was taken.
    public var confirmsByEvent = true
    public var maxConnections = 8
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()

    public static let apiPath = "/api/MuteUnmuteCalls"

    public var summary: String {
        "voicenter: MuteUnmuteCalls at \(muteURL) by \(method == .get ? "GET" : "POST JSON"), "
            + (confirmsByEvent ? "confirmed by the feed's recording.IsMuted" : "confirmed by ErrorCode 200 alone")
            + (tls.insecure ? ", TLS verification OFF" : "")
    }

    public func refusal(of kind: ActionKind, by addressing: Addressing) -> String? {
        guard kind == .mute else { return nil }
        return "Voicenter's MuteUnmuteCalls stops the call *recording*, not the agent's audio: use 'kind: pause-recording' "
            + "on this target, and a target that can mute the agent for 'mute'"
    }

    struct ClientIdentity: Hashable, Sendable {
        var muteURL: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        let http = try ProviderHTTPClient.client(
            context: context, kind: "voicenter monitor client", label: muteURL,
            identity: ClientIdentity(muteURL: muteURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(name: "voicenter \(muteURL)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
            ownThreadName: VoicenterFeedSettings.ownTransportThreadName)
        return VoicenterTarget(name: name, settings: self, http: http.client)
    }

    static func decode(_ section: any SettingsReader) -> VoicenterTargetSettings? {
        var valid = true
        let monitorURL = section.string("monitor_url")
        let muteURL = section.string("mute_url")
        var url: String?
        switch (monitorURL, muteURL) {
        case (let base?, nil):
            if let checked = HTTPSettingsReading.httpURL(base, key: "monitor_url", in: section) {
                url = (checked.hasSuffix("/") ? String(checked.dropLast()) : checked) + apiPath
            }
        case (nil, let whole?):
            url = HTTPSettingsReading.httpURL(whole, key: "mute_url", in: section)
        case (.some, .some):
            section.error("give either 'monitor_url' (the monitor server) or 'mute_url' (the whole MuteUnmuteCalls URL), not both", key: "mute_url")
        case (nil, nil):
            section.error("missing required key 'monitor_url' (or 'mute_url', the whole MuteUnmuteCalls URL)", key: nil)
        }
        var settings = VoicenterTargetSettings(muteURL: url ?? "")
        if section.string("method") != nil {
            if let method = section.choice("method", VoicenterMuteMethod.self) { settings.method = method } else { valid = false }
        }
        if let confirm = section.bool("confirm_by_event") { settings.confirmsByEvent = confirm }
        HTTPSettingsReading.http(
            section, maxConnections: &settings.maxConnections, timeout: &settings.timeout, connectTimeout: &settings.connectTimeout,
            tls: &settings.tls)
        guard valid, url != nil else { return nil }
        return settings
    }

    public static let targetProvider = TargetProvider(type: "voicenter") { decode($0) }
}
