import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// How the feed logs in to the Real-Time API: `POST {login_url}/Login/{Token|User|Account}`.
public enum VoicenterCredentials: Sendable, Hashable, CustomStringConvertible {
    /// A monitor token from the Voicenter control panel.
    case token(Secret)
    /// A user's e-mail address and PIN.
    case user(email: String, pin: Secret)
    /// An account's user name and password.
    case account(username: String, password: Secret)

    /// The last segment of the login path.
    public var pathSegment: String {
        switch self {
        case .token: "Token"
        case .user: "User"
        case .account: "Account"
        }
    }

    /// The JSON body, with the secret revealed: only for the request that carries it.
    func body() -> String {
        let members: [(String, JSONValue)] =
            switch self {
            case .token(let token): [("token", .string(token.reveal()))]
            case .user(let email, let pin): [("email", .string(email)), ("pin", .string(pin.reveal()))]
            case .account(let username, let password): [("username", .string(username)), ("password", .string(password.reveal()))]
            }
        return JSONValue.object(members).serialized
    }

    public var description: String {
        switch self {
        case .token(let token): "token \(token)"
        case .user(let email, let pin): "user \(email) (pin \(pin))"
        case .account(let username, let password): "account \(username) (password \(password))"
        }
    }
}

/// What a login or a refresh gave: the socket token and where to use it. Prints no token.
public struct VoicenterSocketLogin: Sendable, Hashable, CustomStringConvertible {
    public var token: Secret
    /// Wall-clock nanoseconds since the epoch; nil when the answer said nothing readable.
    public var tokenExpiry: Int64?
    public var refreshToken: Secret?
    public var refreshTokenExpiry: Int64?
    /// The monitor server the login assigned (`Url`), then its alternatives (`URLList`).
    public var url: String?
    public var urlList: [String]
    /// `Client`, the socket.io client the vendor's SDK would load (`…?v=1.3.7`): kept for the
    /// record of which protocol the server expects.
    public var client: String?
    /// When the answer arrived (wall clock), to place the refresh within the token's life.
    public var obtainedAt: Int64

    public init(
        token: Secret, tokenExpiry: Int64? = nil, refreshToken: Secret? = nil, refreshTokenExpiry: Int64? = nil,
        url: String? = nil, urlList: [String] = [], client: String? = nil, obtainedAt: Int64
    ) {
        self.token = token
        self.tokenExpiry = tokenExpiry
        self.refreshToken = refreshToken
        self.refreshTokenExpiry = refreshTokenExpiry
        self.url = url
        self.urlList = urlList
        self.client = client
        self.obtainedAt = obtainedAt
    }

    public var description: String {
        var text = "socket token \(token)"
        // Whole seconds: the answer took some milliseconds, which "3599.9s" would only blur.
        text +=
            tokenExpiry.map { ", expires in \(Duration.seconds(($0 - obtainedAt + 500_000_000) / 1_000_000_000).compact)" } ?? ", no expiry stated"
        text += refreshToken == nil ? ", no refresh token" : ", refreshable"
        text += ", \(urlList.count + (url == nil ? 0 : 1)) server(s) named"
        return text
    }

    /// When to refresh: ahead of the expiry by a fifth of the token's life, between 1 s and 60 s
    /// (the vendor's SDK refreshes 5 s ahead, which leaves no room for a slow answer). nil when
    /// no expiry is known: the token is then renewed only when the server refuses it.
    public var refreshAt: Int64? {
        guard let tokenExpiry else { return nil }
        let life = max(tokenExpiry - obtainedAt, 0)
        let lead = min(max(life / 5, 1_000_000_000), 60_000_000_000)
        return tokenExpiry - lead
    }

    /// Whether the token can still open a connection at `now` (wall clock).
    public func isUsable(at now: Int64) -> Bool {
        guard let tokenExpiry else { return true }
        return now < tokenExpiry
    }

    /// Whether a refresh may work at `now`, rather than a new login.
    public func canRefresh(at now: Int64) -> Bool {
        guard refreshToken != nil else { return false }
        guard let refreshTokenExpiry else { return true }
        return now < refreshTokenExpiry
    }

    /// The servers to try, in order: the login's `Url`, its `URLList`, then `configured`. Names
    /// without a scheme get `https://`, as the vendor's SDK does; anything but an `http(s)` URL
    /// of a plausible host is dropped, and repeats are dropped.
    public func socketURLs(configured: [String]) -> [String] {
        var seen: Set<String> = []
        var urls: [String] = []
        for candidate in (url.map { [$0] } ?? []) + urlList + configured {
            guard let normalized = VoicenterLoginAnswer.normalizedServer(candidate), seen.insert(normalized).inserted else {
                continue
            }
            urls.append(normalized)
        }
        return urls
    }
}

/// Why a login or a refresh failed, in an operator's words: never a token, a password, a body.
public enum VoicenterLoginError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request did not complete (DNS, connect, TLS, timeout).
    case transport(String)
    /// An HTTP status other than 2xx.
    case http(status: Int, what: String)
    /// The API answered but gave no token: wrong credentials, a disabled account.
    case refused(String)
    /// An answer that cannot be read.
    case malformed(String)

    public var description: String {
        switch self {
        case .transport(let why): "Voicenter login: \(why)"
        case .http(let status, let what): "Voicenter \(what) answered HTTP \(status)"
        case .refused(let why): "Voicenter login refused: \(why)"
        case .malformed(let why): "Voicenter login answer not understood: \(why)"
        }
    }

    /// The server says the credentials (or the refresh token) are not accepted: retrying them
    /// unchanged is pointless.
    public var isRefusal: Bool {
        switch self {
        case .refused: true
        case .http(let status, _): status == 401 || status == 403
        case .transport, .malformed: false
        }
    }
}

/// Reads login and refresh answers. Pure: every conversion is checked, and nothing of the
/// answer's content but its status reaches an error.
public enum VoicenterLoginAnswer {
    /// Tokens longer than this are refused: no signed token comes near it, and it bounds what a
    /// broken answer makes the feed hold and send.
    static let maximumTokenBytes = 16 << 10
    /// More server names than this are ignored.
    static let maximumServers = 32

    /// Reads `{StatusCode, Status, Data: {Socket: {Token, TokenExpiry, RefreshToken,
    /// RefreshTokenExpiry, Url, URLList, Client, …}}}`. The refresh answer's shape is not
    /// documented, and the vendor's SDK reads the socket fields at the top of it: so the socket
    /// object is looked for at `Data.Socket`, at `Data`, then at the top. `previous` (a refresh)
    /// supplies what the answer leaves out: the refresh token and the servers.
    public static func parse(_ body: JSONValue, obtainedAt: Int64, previous: VoicenterSocketLogin? = nil) throws(VoicenterLoginError)
        -> VoicenterSocketLogin
    {
        guard case .object = body else { throw .malformed("the answer is not a JSON object") }
        let data = member(body, "Data")
        let candidates = [data.flatMap { member($0, "Socket") }, data, body]
        guard let socket = candidates.lazy.compactMap({ $0 }).first(where: { member($0, "Token") != nil }) else {
            let code = member(body, "StatusCode").flatMap(\.scalarText).map { "StatusCode \(bounded($0, 32))" }
            let status = member(body, "Status").flatMap(\.scalarText).map { "'\(bounded($0, 120))'" }
            let detail = [code, status].compactMap { $0 }.joined(separator: ", ")
            throw .refused(detail.isEmpty ? "the answer holds no token" : "no token (\(detail))")
        }
        guard let token = member(socket, "Token")?.string, !token.isEmpty else { throw .malformed("Token is not a non-empty string") }
        guard token.utf8.count <= maximumTokenBytes else { throw .malformed("Token is longer than \(maximumTokenBytes) bytes") }
        var login = VoicenterSocketLogin(
            token: Secret(reference: "voicenter socket token", value: token),
            tokenExpiry: VoicenterTime.expiry(member(socket, "TokenExpiry")), obtainedAt: obtainedAt)
        if let refresh = member(socket, "RefreshToken")?.string, !refresh.isEmpty, refresh.utf8.count <= maximumTokenBytes {
            login.refreshToken = Secret(reference: "voicenter refresh token", value: refresh)
            login.refreshTokenExpiry = VoicenterTime.expiry(member(socket, "RefreshTokenExpiry"))
        } else if let previous {
            login.refreshToken = previous.refreshToken
            login.refreshTokenExpiry = previous.refreshTokenExpiry
        }
        login.url = member(socket, "Url")?.string.flatMap(normalizedServer)
        login.urlList = (member(socket, "URLList")?.array ?? []).prefix(maximumServers).compactMap { $0.string.flatMap(normalizedServer) }
        if login.url == nil, login.urlList.isEmpty, let previous {
            login.url = previous.url
            login.urlList = previous.urlList
        }
        login.client = member(socket, "Client")?.string.map { bounded($0, 200) }
        return login
    }

    /// `https://host[:port][/path]` for a server name as Voicenter writes them (`monitor1.voicenter.co`,
    /// `https://monitor1.voicenter.co/`); nil for anything that is not a plausible http(s) URL.
    public static func normalizedServer(_ text: String) -> String? {
        var value = Substring(text)
        let scheme = value.hasPrefix("https://") ? 8 : value.hasPrefix("http://") ? 7 : 0
        guard scheme > 0 || !value.contains(":/") else { return nil }
        while value.count > scheme, value.last == "/" { value = value.dropLast() }
        guard !value.isEmpty, value.utf8.count <= 512 else { return nil }
        let hasScheme = scheme > 0
        let url = hasScheme ? String(value) : "https://" + value
        let host = url.drop(while: { $0 != "/" }).dropFirst(2).prefix(while: { $0 != "/" && $0 != ":" })
        guard !host.isEmpty,
            host.utf8.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            }),
            !url.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
        else { return nil }
        return url
    }

    /// A member by name, whatever its case: the vendor's own code spells `Url` and `URL`.
    static func member(_ object: JSONValue, _ name: String) -> JSONValue? {
        if let exact = object[name] { return exact }
        guard let members = object.object else { return nil }
        let lowered = name.lowercased()
        return members.first { $0.0.lowercased() == lowered }?.1
    }

    static func bounded(_ text: String, _ limit: Int) -> String {
        text.count > limit ? text.prefix(limit) + "…" : text
    }
}

/// The login and refresh requests, over the daemon's HTTP transport.
public final class VoicenterLoginClient: Sendable {
    public let loginURL: String
    let credentials: VoicenterCredentials
    let http: HTTPClient
    let budget: HTTPBudget
    let wallClock: @Sendable () -> Int64

    init(
        loginURL: String, credentials: VoicenterCredentials, http: HTTPClient, budget: HTTPBudget,
        wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds
    ) {
        self.loginURL = loginURL.hasSuffix("/") ? String(loginURL.dropLast()) : loginURL
        self.credentials = credentials
        self.http = http
        self.budget = budget
        self.wallClock = wallClock
    }

    /// `POST {login_url}/Login/{Token|User|Account}` with the credentials as JSON.
    public func login() async throws(VoicenterLoginError) -> VoicenterSocketLogin {
        let what = "login (POST /Login/\(credentials.pathSegment))"
        var request = HTTPRequest(
            .post, loginURL + "/Login/" + credentials.pathSegment, headers: [HTTPHeader("Content-Type", "application/json")],
            text: credentials.body())
        request.budget = budget
        let body = try await exchange(request, what: what)
        return try VoicenterLoginAnswer.parse(body, obtainedAt: wallClock())
    }

    /// `GET {login_url}/RefreshIdentityToken` with `Authorization: Bearer <RefreshToken>`.
    public func refresh(_ current: VoicenterSocketLogin) async throws(VoicenterLoginError) -> VoicenterSocketLogin {
        guard let refreshToken = current.refreshToken else { throw .refused("no refresh token") }
        var request = HTTPRequest(
            .get, loginURL + "/RefreshIdentityToken",
            headers: [HTTPHeader("Authorization", "Bearer " + refreshToken.reveal(), secret: true)])
        request.budget = budget
        let body = try await exchange(request, what: "token refresh (GET /RefreshIdentityToken)")
        return try VoicenterLoginAnswer.parse(body, obtainedAt: wallClock(), previous: current)
    }

    private func exchange(_ request: HTTPRequest, what: String) async throws(VoicenterLoginError) -> JSONValue {
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            throw .transport("\(what): \(error)")
        }
        guard response.isSuccess else { throw .http(status: response.status, what: what) }
        do {
            return try JSONValue.parse(response.body)
        } catch {
            throw .malformed("\(what): \(error)")
        }
    }
}
