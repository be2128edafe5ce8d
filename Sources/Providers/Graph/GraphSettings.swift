import MutewardenAzure
import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// Settings of the `graph` feed (docs/providers/graph.md).
public struct GraphFeedSettings: FeedSettings, Sendable, Hashable {
    /// The ingress path Graph posts to (the bot's calling webhook's, or the call's `callbackUri`'s, path).
    public var path: String
    /// The bearer JWT every notification carries: issuer, the bot's app id as audience, the tenant.
    public var jwt: JWTCallbackSettings
    public var core: GraphFeedCore.Configuration
    /// The HTTP client that fetches the OpenID configuration and the signing keys.
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()

    public static let ownTransportThreadName = "mw-http-graph"

    public var summary: String {
        "graph: notifications on \(path), JWT for app \(jwt.audiences.joined(separator: ", ")) in tenant "
            + (jwt.requiredClaims["tid"] ?? "?") + " from \(jwt.issuers.joined(separator: ", ")); agent = \(core.agent)"
            + "; '\(core.keyingAttribute)' while tones arrive, quiet after \(core.keyingQuietPeriod.compact)"
    }

    public func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed {
        var core = self.core
        core.feed = name
        let http = try ProviderHTTPClient.client(
            context: context, kind: "graph keys client", label: jwt.openIDConfigurationURL,
            identity: KeysClientIdentity(url: jwt.openIDConfigurationURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(
                name: "graph keys \(jwt.openIDConfigurationURL)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
            ownThreadName: Self.ownTransportThreadName)
        return GraphFeed(
            name: name, path: path, core: core, authenticator: JWTCallbackAuthenticator(settings: jwt, http: http.client),
            router: try GraphOperationRouter.shared(context), context: context)
    }

    struct KeysClientIdentity: Hashable, Sendable {
        var url: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    static let agentKinds = ["user", "application", "applicationInstance", "phone", "guest", "device", "acsUser"]

    static func decode(_ section: any SettingsReader) -> GraphFeedSettings? {
        var valid = true
        let path = section.requiredString("path")
        if let path, !path.hasPrefix("/") || path.contains("?") || path.contains("#") {
            section.error("'path' must be the callback URI's path, starting with '/', without a query", key: "path")
            valid = false
        }
        let appID = section.requiredString("app_id")
        let tenant = section.requiredString("tenant")
        if let appID, appID.isEmpty {
            section.error("'app_id' is the bot's application (client) id, the tokens' audience: it cannot be empty", key: "app_id")
            valid = false
        }
        if let tenant, tenant.isEmpty {
            section.error("'tenant' is the tenant id the tokens' 'tid' must name: it cannot be empty", key: "tenant")
            valid = false
        }
        var jwt = JWTCallbackSettings.graph(appID: appID ?? "", tenant: tenant ?? "")
        if let openID = section.string("openid_configuration") {
            if HTTPSettingsReading.httpURL(openID, key: "openid_configuration", in: section) != nil {
                jwt.openIDConfigurationURL = openID
            } else {
                valid = false
            }
        }
        if let issuer = section.string("issuer") { jwt.issuers = [issuer] }
        if let skew = HTTPSettingsReading.duration("clock_skew", in: section, from: .milliseconds(1), to: .seconds(600)) {
            jwt.clockSkew = skew
        }
        if appID != nil, tenant != nil, let problem = jwt.problem() {
            section.error(problem, key: "openid_configuration")
            valid = false
        }
        let agent = section.choice("agent", among: ["bot", "participant"]) ?? (section.string("agent") == nil ? "bot" : nil)
        let kinds = section.stringList("agent_identities")
        let prefix = section.string("agent_id_prefix")
        var selection: GraphFeedCore.AgentSelection?
        switch agent {
        case "bot"?:
            if kinds != nil || prefix != nil {
                section.error("'agent_identities' and 'agent_id_prefix' are read only with 'agent: participant'", key: "agent")
                valid = false
            }
            selection = .bot(appID: appID ?? "")
        case "participant"?:
            let chosen = kinds ?? ["user"]
            for unknown in chosen where !agentKinds.contains(unknown) {
                section.error("'agent_identities': '\(unknown)' is not one of \(agentKinds.joined(separator: ", "))", key: "agent_identities")
                valid = false
            }
            if chosen.isEmpty {
                section.error("'agent_identities' needs at least one kind", key: "agent_identities")
                valid = false
            }
            selection = .participant(kinds: chosen, idPrefix: prefix)
        default:
            valid = false
        }
        var core = GraphFeedCore.Configuration(feed: "", agent: selection ?? .bot(appID: ""))
        if let attribute = section.string("keying_attribute") {
            if attribute.isEmpty {
                section.error("'keying_attribute' cannot be empty", key: "keying_attribute")
                valid = false
            }
            core.keyingAttribute = attribute
        }
        if let quiet = HTTPSettingsReading.duration("keying_quiet_period", in: section, from: .milliseconds(100), to: .seconds(600)) {
            core.keyingQuietPeriod = quiet
        }
        if let idle = HTTPSettingsReading.duration("idle_limit", in: section, from: .seconds(60), to: .seconds(7 * 86_400)) {
            core.idleLimit = idle
        }
        if let maximum = section.int("max_calls", in: 1...1_000_000) { core.maximumCalls = maximum }
        if let lifetime = HTTPSettingsReading.duration("operation_lifetime", in: section, from: .seconds(1), to: .seconds(86_400)) {
            core.operationLifetime = lifetime
        }
        var settings = GraphFeedSettings(path: path ?? "/", jwt: jwt, core: core)
        if let value = section.positiveDuration("timeout") { settings.timeout = value }
        if let value = section.positiveDuration("connect_timeout") { settings.connectTimeout = value }
        if let options = section.tlsOptions() { settings.tls = options }
        guard valid, path != nil, appID != nil, tenant != nil, selection != nil else { return nil }
        return settings
    }

    public static let feedProvider = FeedProvider(type: "graph") { decode($0) }
}

/// Which leg a `mute` action silences.
public enum GraphMuteLeg: String, Sendable, Hashable, CaseIterable {
    /// The bot's own (`calls/{id}/mute`, undone by `calls/{id}/unmute`).
    case bot
    /// The agent's participant (`participants/{id}/mute`), which Graph cannot unmute.
    case participant
}

/// Settings of the `graph` target (docs/providers/graph.md).
public struct GraphTargetSettings: TargetSettings, Sendable, Hashable {
    /// `https://graph.microsoft.com/v1.0`, no trailing slash.
    public var graphURL: String
    public var credentials: EntraClientCredentials
    public var leg: GraphMuteLeg = .bot
    public var confirmsByEvent = true
    public var maxConnections = 8
    public var timeout: Duration = .seconds(5)
    public var connectTimeout: Duration = .seconds(3)
    public var tls = TLSOptions()

    public static let defaultGraphURL = "https://graph.microsoft.com/v1.0"

    public var summary: String {
        "graph: calls API at \(graphURL), mute = the \(leg == .bot ? "bot's own leg" : "agent's participant (no unmute)"), "
            + "token from Entra ID app \(credentials.clientID) in tenant \(credentials.tenant) at \(credentials.authority)"
            + (confirmsByEvent ? ", confirmed by the feed" : ", confirmed by the API's answer alone") + (tls.insecure ? ", TLS verification OFF" : "")
    }

    public func refusal(of kind: ActionKind, by addressing: Addressing) -> String? {
        if addressing == .agentExtension {
            return "Graph mutes and sets the recording status of one call at a time; it has no extension to address: use 'by: call'"
        }
        if kind == .mute, leg == .participant {
            return "Graph can mute another participant (participants/{id}/mute) but has no way to unmute one, and every window "
                + "undoes its actions when it closes: the agent would stay muted for the rest of the call. Use 'leg: bot' (the bot "
                + "mutes and unmutes itself) or 'kind: pause-recording' (updateRecordingStatus)"
        }
        return nil
    }

    struct ClientIdentity: Hashable, Sendable {
        var graphURL: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        let http = try ProviderHTTPClient.client(
            context: context, kind: "graph client", label: graphURL,
            identity: ClientIdentity(graphURL: graphURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(name: "graph \(graphURL)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
            ownThreadName: GraphFeedSettings.ownTransportThreadName)
        return GraphTarget(name: name, settings: self, http: http.client, router: try GraphOperationRouter.shared(context))
    }

    static func decode(_ section: any SettingsReader) -> GraphTargetSettings? {
        var valid = true
        let tenant = section.requiredString("tenant")
        let clientID = section.requiredString("client_id")
        let clientSecret = section.requiredSecret("client_secret")
        let authority = section.string("authority_url")
        var graphURL = GraphTargetSettings.defaultGraphURL
        if let url = section.string("graph_url") {
            if let checked = HTTPSettingsReading.httpURL(url, key: "graph_url", in: section) {
                var trimmed = Substring(checked)
                while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
                graphURL = String(trimmed)
            } else {
                valid = false
            }
        }
        var credentials: EntraClientCredentials?
        if let tenant, let clientID, let clientSecret {
            do {
                credentials = try EntraClientCredentials(
                    tenant: tenant, clientID: clientID, clientSecret: clientSecret, scope: EntraClientCredentials.graphScope,
                    authority: authority ?? "https://login.microsoftonline.com")
            } catch {
                section.error("\(error)", key: authority != nil && "\(error)".contains("authority") ? "authority_url" : "tenant")
                valid = false
            }
        }
        let leg = section.choice("leg", GraphMuteLeg.self)
        if section.string("leg") != nil, leg == nil { valid = false }
        let confirm = section.bool("confirm_by_event")
        var maxConnections = 8
        var timeout: Duration = .seconds(5)
        var connectTimeout: Duration = .seconds(3)
        var tls = TLSOptions()
        HTTPSettingsReading.http(section, maxConnections: &maxConnections, timeout: &timeout, connectTimeout: &connectTimeout, tls: &tls)
        guard valid, let credentials else { return nil }
        var settings = GraphTargetSettings(graphURL: graphURL, credentials: credentials)
        settings.leg = leg ?? .bot
        settings.confirmsByEvent = confirm ?? true
        settings.maxConnections = maxConnections
        settings.timeout = timeout
        settings.connectTimeout = connectTimeout
        settings.tls = tls
        return settings
    }

    public static let targetProvider = TargetProvider(type: "graph") { decode($0) }
}
