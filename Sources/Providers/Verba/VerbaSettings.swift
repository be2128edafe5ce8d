import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// Whether MuteRecording carries a token: `login: basic` (RequestToken with Basic credentials)
/// or `none` (an API key without "Requires Authentication").
public enum VerbaLogin: String, Sendable, Hashable, CaseIterable {
    case basic, none
}

/// Settings of the `verba` target (docs/providers/verba.md).
public struct VerbaTargetSettings: TargetSettings, Sendable, Hashable {
    /// The Media Repository's API URL, `https://host/verba/api`, without a query.
    public var baseURL: String
    public var apiKey: Secret
    public var login = VerbaLogin.basic
    public var username = ""
    public var password: Secret?
    public var method = VerbaMethod.get
    /// `mute` for the apply and for the undo. The page's list of values is not public: "3" and
    /// "0" are the caller/callee bitmask the low-level recorder API suggests (both channels, none).
    public var muteValue = "3"
    public var unmuteValue = "0"
    /// `status` with `extension`: the calls to look among.
    public var status = "ongoing"
    /// Which of the call's identifiers (from the feed) is Verba's call id for `by: call`; nil:
    /// the primary id.
    public var callIDKey: String?
    /// Verba's tokens last an hour; renewed ahead of that.
    public var tokenLifetime: Duration = .seconds(3600)
    public var tokenRenewAfter: Duration = .seconds(3000)
    public var maxConnections = 8
    public var timeout: Duration = .seconds(10)
    public var connectTimeout: Duration = .seconds(5)
    public var tls = TLSOptions()

    public init(baseURL: String, apiKey: Secret) {
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    /// Verba sends no event: the API's `code="0"` is the confirmation.
    public var confirmsByEvent: Bool { false }

    public var summary: String {
        let authentication =
            login == .basic ? "RequestToken as \(username) (password \(password.map { "\($0)" } ?? "none"))" : "no token"
        return "verba: MuteRecording at \(baseURL) by \(method == .get ? "GET" : "POST form"), api key \(apiKey), \(authentication); "
            + "mute=\(muteValue) to pause, mute=\(unmuteValue) to resume; by extension with status=\(status)"
            + (callIDKey.map { ", by call with the call's '\($0)' id" } ?? ", by call with the call's primary id")
            + "; confirmed by the API's answer (no event)" + (tls.insecure ? ", TLS verification OFF" : "")
    }

    public func refusal(of kind: ActionKind, by addressing: Addressing) -> String? {
        guard kind == .mute else { return nil }
        return "Verba's MuteRecording mutes the *recording's* channels, not the agent's audio: the customer still hears "
            + "the agent. Use 'kind: pause-recording' on this target, and a telephony target for 'mute'"
    }

    struct ClientIdentity: Hashable, Sendable {
        var baseURL: String
        var tls: TLSOptions
        var timeout: Duration
        var connectTimeout: Duration
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        try makeVerbaTarget(name: name, context: context)
    }

    func makeVerbaTarget(
        name: String, context: ProviderContext, clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) throws -> VerbaTarget {
        let http = try ProviderHTTPClient.client(
            context: context, kind: "verba client", label: baseURL,
            identity: ClientIdentity(baseURL: baseURL, tls: tls, timeout: timeout, connectTimeout: connectTimeout),
            configuration: HTTPClientConfiguration(
                name: "verba \(baseURL)", timeout: timeout, connectTimeout: connectTimeout,
                maxResponseBytes: VerbaXML.maximumBytes, tls: tls, maxRedirects: 0),
            ownThreadName: "mw-http-verba")
        return VerbaTarget(name: name, settings: self, http: http.client, clock: clock)
    }

    /// Values that go into a query as they are: they must not need explaining in a log.
    static func isPlainValue(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
                    || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    static let statusValues: Set<String> = ["ongoing", "next", "last"]

    static func decode(_ section: any SettingsReader) -> VerbaTargetSettings? {
        var valid = true
        var url: String?
        if let given = section.requiredString("base_url") {
            if !(given.hasPrefix("https://") || given.hasPrefix("http://")) {
                section.error("'base_url' must start with https:// (or http:// in a lab); found '\(given)'", key: "base_url")
            } else if given.contains("?") || given.contains("#") || given.unicodeScalars.contains(where: { $0.value <= 0x20 }) {
                section.error("'base_url' must be the API's URL (https://host/verba/api) without a query, a fragment or spaces", key: "base_url")
            } else {
                url = given.hasSuffix("/") ? String(given.dropLast()) : given
            }
        }
        let apiKey = section.requiredSecret("api_key")
        let login = section.choice("login", VerbaLogin.self) ?? (section.string("login") == nil ? .basic : nil)
        if login == nil { valid = false }
        let username = section.string("username")
        let password = section.secret("password")
        var settings = VerbaTargetSettings(baseURL: url ?? "", apiKey: apiKey ?? Secret(reference: "inline", value: ""))
        switch login {
        case .basic?:
            settings.login = .basic
            if username == nil {
                section.error("'login: basic' needs 'username' (a user with the System Administrator and System Supervisor roles)", key: "login")
            }
            if password == nil { section.error("'login: basic' needs 'password'", key: "login") }
            if username == nil || password == nil { valid = false }
            settings.username = username ?? ""
            settings.password = password
        case .none?:
            settings.login = .none
            for key in ["username", "password"] where (key == "username" ? username != nil : password != nil) {
                section.error("'\(key)' is read only with 'login: basic'; this target has 'login: none'", key: key)
                valid = false
            }
        case nil:
            break
        }
        if section.string("method") != nil {
            if let method = section.choice("method", VerbaMethod.self) { settings.method = method } else { valid = false }
        }
        for (key, apply) in [("mute_value", true), ("unmute_value", false)] {
            guard let value = section.string(key) else { continue }
            if isPlainValue(value) {
                if apply { settings.muteValue = value } else { settings.unmuteValue = value }
            } else {
                section.error("'\(key)' must be the value of Verba's 'mute' parameter, such as 3 or 0; found '\(value)'", key: key)
                valid = false
            }
        }
        if settings.muteValue == settings.unmuteValue {
            section.error(
                "'mute_value' and 'unmute_value' are both '\(settings.muteValue)': the undo would not resume the recording", key: "unmute_value")
            valid = false
        }
        if let status = section.string("status") {
            let values = status.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmed }
            if values.isEmpty || !values.allSatisfy(statusValues.contains) {
                section.error("'status' must be ongoing, next or last, or a comma-separated list of them; found '\(status)'", key: "status")
                valid = false
            } else {
                settings.status = values.joined(separator: ",")
            }
        }
        if let key = section.string("call_id_key") {
            if key.isEmpty || key.utf8.count > 64 {
                section.error("'call_id_key' must name one of the call's identifiers from its feed (e.g. callUuid)", key: "call_id_key")
                valid = false
            } else {
                settings.callIDKey = key == "primary" ? nil : key
            }
        }
        if let lifetime = section.positiveDuration("token_lifetime") {
            if lifetime < .seconds(10) || lifetime > .seconds(86_400) {
                section.error("'token_lifetime' must be between 10s and 24h", key: "token_lifetime")
                valid = false
            } else {
                settings.tokenLifetime = lifetime
                // The default renewal keeps its place: ten minutes ahead, or a sixth of a short life.
                settings.tokenRenewAfter = lifetime > .seconds(3600) ? lifetime - .seconds(600) : lifetime * 5 / 6
            }
        }
        if let renew = section.positiveDuration("token_renew_after") {
            if renew >= settings.tokenLifetime {
                section.error(
                    "'token_renew_after' must be shorter than the token's life (\(settings.tokenLifetime.compact))", key: "token_renew_after")
                valid = false
            } else {
                settings.tokenRenewAfter = renew
            }
        }
        if section.bool("verify_with_get_mute_state") == true {
            section.error(
                "GetMuteState exists only on Verba's low-level XML recorder API, not on the HTTP Business API this target uses: "
                    + "there is no read-back over HTTP, and the API's answer is the confirmation (docs/providers/verba.md)",
                key: "verify_with_get_mute_state")
            valid = false
        }
        if let count = section.int("max_connections", in: 1...64) { settings.maxConnections = count }
        if let value = section.positiveDuration("timeout") { settings.timeout = value }
        if let value = section.positiveDuration("connect_timeout") { settings.connectTimeout = value }
        if let options = section.tlsOptions() { settings.tls = options }
        guard valid, url != nil, apiKey != nil else { return nil }
        return settings
    }

    public static let targetProvider = TargetProvider(type: "verba") { decode($0) }
}
