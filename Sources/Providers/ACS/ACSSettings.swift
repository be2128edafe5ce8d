import MutewardenAzure
import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// How the `acs` feed knows a callback comes from Call Automation.
public enum ACSCallbackAuthentication: Sendable, Hashable, CustomStringConvertible {
    /// The JWT Call Automation puts in every callback's `Authorization` header (the strong way).
    case jwt(JWTCallbackSettings)
    /// A secret the deployment put in the callback URI's query when it answered the call (the
    /// weaker way: the secret travels in every URL, and proxies may log URLs).
    case querySecret(parameter: String, secret: Secret)

    public var description: String {
        switch self {
        case .jwt(let settings): "JWT for audience \(settings.audiences.joined(separator: ", ")) from \(settings.issuers.joined(separator: ", "))"
        case .querySecret(let parameter, let secret): "query secret '\(parameter)' (\(secret))"
        }
    }
}

/// Settings of the `acs` feed (docs/providers/acs.md).
public struct ACSFeedSettings: FeedSettings, Sendable, Hashable {
    /// The ingress path Call Automation posts to (the callback URI's path).
    public var path: String
    public var authentication: ACSCallbackAuthentication
    public var core: ACSFeedCore.Configuration
    /// The HTTP client that fetches the OpenID configuration and the signing keys.
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()

    public static let ownTransportThreadName = "mw-http-acs"

    public var summary: String {
        "acs: callbacks on \(path), authenticated by \(authentication); agent = first participant of kind "
            + core.agentKinds.sorted().joined(separator: "/") + (core.agentIDPrefix.map { " starting '\($0)'" } ?? "")
            + "; '\(core.keyingAttribute)' while tones arrive, quiet after \(core.keyingQuietPeriod.compact)"
    }

    public func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed {
        var core = self.core
        core.feed = name
        let authenticator: any CallbackAuthenticating
        switch authentication {
        case .jwt(let jwt):
            let http = try ProviderHTTPClient.client(
                context: context, kind: "acs keys client", label: jwt.openIDConfigurationURL,
                identity: KeysClientIdentity(url: jwt.openIDConfigurationURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
                configuration: HTTPClientConfiguration(
                    name: "acs keys \(jwt.openIDConfigurationURL)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
                ownThreadName: Self.ownTransportThreadName)
            authenticator = JWTCallbackAuthenticator(settings: jwt, http: http.client)
        case .querySecret(let parameter, let secret):
            authenticator = QuerySecretAuthenticator(parameterName: parameter, secret: secret)
        }
        return ACSFeed(name: name, path: path, core: core, authenticator: authenticator, context: context)
    }

    struct KeysClientIdentity: Hashable, Sendable {
        var url: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    static func decode(_ section: any SettingsReader) -> ACSFeedSettings? {
        var valid = true
        let path = section.requiredString("path")
        if let path, !path.hasPrefix("/") || path.contains("?") || path.contains("#") {
            section.error("'path' must be the callback URI's path, starting with '/', without a query", key: "path")
            valid = false
        }
        var authentication: ACSCallbackAuthentication?
        let kind = section.choice("authentication", among: ["jwt", "query-secret"]) ?? (section.string("authentication") == nil ? "jwt" : nil)
        // Both kinds' keys are read whatever the kind, so that one given with the other kind is
        // named as such rather than reported as unknown.
        let resourceID = section.string("resource_id")
        let openID = section.string("openid_configuration")
        let issuer = section.string("issuer")
        let skew = HTTPSettingsReading.duration("clock_skew", in: section, from: .milliseconds(1), to: .seconds(600))
        let secret = section.secret("secret")
        let parameter = section.string("secret_parameter")
        switch kind {
        case "jwt"?:
            if secret != nil || parameter != nil {
                section.error(
                    "'secret' and 'secret_parameter' are read only with 'authentication: query-secret'",
                    key: secret != nil ? "secret" : "secret_parameter")
                valid = false
            }
            guard let resourceID, !resourceID.isEmpty else {
                section.error("'authentication: jwt' needs 'resource_id', the ACS resource's immutable id (the tokens' audience)", key: "resource_id")
                valid = false
                break
            }
            var jwt = JWTCallbackSettings.acs(resourceID: resourceID)
            if let openID {
                if HTTPSettingsReading.httpURL(openID, key: "openid_configuration", in: section) != nil {
                    jwt.openIDConfigurationURL = openID
                } else {
                    valid = false
                }
            }
            if let issuer { jwt.issuers = [issuer] }
            if let skew { jwt.clockSkew = skew }
            if let problem = jwt.problem() {
                section.error(problem, key: "authentication")
                valid = false
            }
            authentication = .jwt(jwt)
        case "query-secret"?:
            if resourceID != nil || openID != nil || issuer != nil {
                section.error("'resource_id', 'openid_configuration' and 'issuer' are read only with 'authentication: jwt'", key: "authentication")
                valid = false
            }
            guard let secret else {
                section.error("'authentication: query-secret' needs 'secret'", key: "authentication")
                valid = false
                break
            }
            if secret.reveal().utf8.count < 16 {
                section.error("'secret' must be at least 16 characters: it is all that stands between the endpoint and anyone", key: "secret")
                valid = false
            }
            authentication = .querySecret(parameter: parameter ?? "secret", secret: secret)
        default:
            valid = false
        }
        var core = ACSFeedCore.Configuration(feed: "")
        if let kinds = section.stringList("agent_kinds") {
            let known = ["communicationUser", "microsoftTeamsUser", "phoneNumber", "microsoftTeamsApp", "unknown"]
            for unknown in kinds where !known.contains(unknown) {
                section.error("'agent_kinds': '\(unknown)' is not one of \(known.joined(separator: ", "))", key: "agent_kinds")
                valid = false
            }
            if kinds.isEmpty {
                section.error("'agent_kinds' needs at least one kind", key: "agent_kinds")
                valid = false
            }
            core.agentKinds = Set(kinds)
        }
        core.agentIDPrefix = section.string("agent_id_prefix")
        if let attribute = section.string("keying_attribute") { core.keyingAttribute = attribute }
        if let quiet = HTTPSettingsReading.duration("keying_quiet_period", in: section, from: .milliseconds(100), to: .seconds(600)) {
            core.keyingQuietPeriod = quiet
        }
        if let idle = HTTPSettingsReading.duration("idle_limit", in: section, from: .seconds(60), to: .seconds(7 * 86_400)) {
            core.idleLimit = idle
        }
        if let maximum = section.int("max_calls", in: 1...1_000_000) { core.maximumCalls = maximum }
        var settings = ACSFeedSettings(
            path: path ?? "/", authentication: authentication ?? .querySecret(parameter: "secret", secret: Secret(reference: "inline", value: "")),
            core: core)
        if let value = section.positiveDuration("timeout") { settings.timeout = value }
        if let value = section.positiveDuration("connect_timeout") { settings.connectTimeout = value }
        if let options = section.tlsOptions() { settings.tls = options }
        guard valid, path != nil, authentication != nil else { return nil }
        return settings
    }

    public static let feedProvider = FeedProvider(type: "acs") { decode($0) }
}

/// Settings of the `acs` target (docs/providers/acs.md).
public struct ACSTargetSettings: TargetSettings, Sendable, Hashable {
    /// `https://<resource>.communication.azure.com`, no trailing slash.
    public var endpoint: String
    public var credential: ACSCredential
    public var apiVersion = ACSCallAutomationAPI.stableAPIVersion
    /// A preview api-version that has `participants:unmute`; without one, the target cannot undo
    /// a mute and check-config refuses `kind: mute` on it.
    public var unmuteAPIVersion: String?
    /// Which of the call's identifiers holds the recording id (the `acs` feed puts the one of
    /// `RecordingStateChanged` under `recordingId`).
    public var recordingIDKey = "recordingId"
    /// A call attribute that holds the recording id, for a call whose recording the feed has not
    /// seen start (a recording started by another application, a feed of another platform).
    public var recordingIDAttribute: String?
    public var confirmsByEvent = true
    public var maxConnections = 8
    public var timeout: Duration = .seconds(5)
    public var connectTimeout: Duration = .seconds(3)
    public var tls = TLSOptions()

    public var summary: String {
        "acs: Call Automation at \(endpoint), api-version \(apiVersion)"
            + (unmuteAPIVersion.map { ", unmute with \($0)" } ?? ", no unmute (mute refused)") + ", signed with \(credential)"
            + (confirmsByEvent ? ", confirmed by the feed's events" : ", confirmed by the API's answer alone")
            + (tls.insecure ? ", TLS verification OFF" : "")
    }

    public func refusal(of kind: ActionKind, by addressing: Addressing) -> String? {
        if addressing == .agentExtension {
            return "ACS Call Automation mutes and pauses one call connection at a time; it has no extension to address: use 'by: call'"
        }
        if kind == .mute, unmuteAPIVersion == nil {
            return "ACS's stable api-version (\(apiVersion)) has participants:mute but no participants:unmute, so a muted agent could "
                + "not be unmuted when the window closes: set 'unmute_api_version' to a preview that has it ("
                + ACSCallAutomationAPI.unmuteAPIVersions.sorted().joined(separator: ", ") + "), or use 'kind: pause-recording'"
        }
        return nil
    }

    struct ClientIdentity: Hashable, Sendable {
        var endpoint: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        let http = try ProviderHTTPClient.client(
            context: context, kind: "acs client", label: endpoint,
            identity: ClientIdentity(endpoint: endpoint, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(name: "acs \(endpoint)", timeout: timeout, connectTimeout: connectTimeout, tls: tls),
            ownThreadName: ACSFeedSettings.ownTransportThreadName)
        return try ACSTarget(name: name, settings: self, http: http.client, tokenHTTP: nil)
    }

    static func decode(_ section: any SettingsReader) -> ACSTargetSettings? {
        var valid = true
        let connection = section.secret("connection_string")
        let endpoint = section.string("endpoint")
        let tenant = section.string("tenant")
        let clientID = section.string("client_id")
        let clientSecret = section.secret("client_secret")
        let authority = section.string("authority_url")
        var credential: ACSCredential?
        var base: String?
        switch (connection, tenant ?? clientID) {
        case (let connection?, nil):
            if endpoint != nil || clientSecret != nil {
                section.error(
                    "with 'connection_string', the endpoint and key come from it: leave out 'endpoint' and 'client_secret'", key: "connection_string")
                valid = false
            }
            do {
                let parsed = try ACSConnectionString(parsing: connection)
                credential = .accessKey(parsed)
                base = parsed.endpoint
            } catch {
                section.error("'connection_string' (\(connection)): \(error)", key: "connection_string")
                valid = false
            }
        case (nil, .some):
            guard let endpoint, let tenant, let clientID, let clientSecret else {
                section.error("Entra ID authentication needs 'endpoint', 'tenant', 'client_id' and 'client_secret'", key: nil)
                valid = false
                break
            }
            do {
                let parsed = try ACSConnectionString(endpoint: endpoint, accessKey: Secret(reference: "none", value: "AA=="))
                base = parsed.endpoint
                credential = .entra(
                    try EntraClientCredentials(
                        tenant: tenant, clientID: clientID, clientSecret: clientSecret, scope: EntraClientCredentials.acsScope,
                        authority: authority ?? "https://login.microsoftonline.com"))
            } catch let error as ACSCredentialError {
                section.error("'endpoint': \(error)", key: "endpoint")
                valid = false
            } catch {
                section.error("\(error)", key: "tenant")
                valid = false
            }
        case (.some, .some):
            section.error("give either 'connection_string' (HMAC) or 'tenant', 'client_id' and 'client_secret' (Entra ID), not both", key: "tenant")
            valid = false
        case (nil, nil):
            section.error("missing 'connection_string' (or 'endpoint', 'tenant', 'client_id' and 'client_secret' for Entra ID)", key: nil)
            valid = false
        }
        let apiVersion = section.string("api_version")
        let unmuteVersion = section.string("unmute_api_version")
        if let unmuteVersion, !unmuteVersion.hasSuffix("-preview") {
            section.error(
                "'unmute_api_version' must be a preview api-version that has participants:unmute (such as 2024-09-01-preview)",
                key: "unmute_api_version")
            valid = false
        }
        let recordingIDKey = section.string("recording_id_key")
        let recordingIDAttribute = section.string("recording_id_attribute")
        let confirm = section.bool("confirm_by_event")
        var maxConnections = 8
        var timeout: Duration = .seconds(5)
        var connectTimeout: Duration = .seconds(3)
        var tls = TLSOptions()
        HTTPSettingsReading.http(section, maxConnections: &maxConnections, timeout: &timeout, connectTimeout: &connectTimeout, tls: &tls)
        guard valid, let credential, let base else { return nil }
        var settings = ACSTargetSettings(endpoint: base, credential: credential)
        settings.apiVersion = apiVersion ?? settings.apiVersion
        settings.unmuteAPIVersion = unmuteVersion
        settings.recordingIDKey = recordingIDKey ?? settings.recordingIDKey
        settings.recordingIDAttribute = recordingIDAttribute
        settings.confirmsByEvent = confirm ?? true
        settings.maxConnections = maxConnections
        settings.timeout = timeout
        settings.connectTimeout = connectTimeout
        settings.tls = tls
        return settings
    }

    public static let targetProvider = TargetProvider(type: "acs") { decode($0) }
}
