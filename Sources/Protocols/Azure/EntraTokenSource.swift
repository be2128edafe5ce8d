import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit

/// An app registration's client credentials for Microsoft Entra ID (OAuth2 client credentials
/// grant), and the scope it asks a token for.
public struct EntraClientCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The directory: a tenant id (GUID) or a verified domain (`contoso.onmicrosoft.com`).
    public var tenant: String
    /// The application (client) id.
    public var clientID: String
    public var clientSecret: Secret
    /// `https://communication.azure.com//.default` (ACS: the double slash is what Microsoft's
    /// SDK asks for) or `https://graph.microsoft.com/.default` (Graph).
    public var scope: String
    /// `https://login.microsoftonline.com`, or a national cloud's, or a test's fake.
    public var authority: String

    public static let acsScope = "https://communication.azure.com//.default"
    public static let graphScope = "https://graph.microsoft.com/.default"

    public init(
        tenant: String, clientID: String, clientSecret: Secret, scope: String,
        authority: String = "https://login.microsoftonline.com"
    ) throws(EntraTokenError) {
        guard !tenant.isEmpty, tenant.utf8.count <= 256,
            tenant.utf8.allSatisfy({ EntraTokenSource.isNameByte($0) || $0 == UInt8(ascii: ".") })
        else {
            throw .configuration("the tenant must be a tenant id or domain name (letters, digits, '-', '.')")
        }
        guard !clientID.isEmpty, clientID.utf8.count <= 256, clientID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .configuration("the client id must be the application (client) id, a GUID")
        }
        guard !clientSecret.reveal().isEmpty else { throw .configuration("the client secret (\(clientSecret)) is empty") }
        var authority = Substring(authority)
        while authority.hasSuffix("/") { authority = authority.dropLast() }
        guard authority.hasPrefix("https://") || authority.hasPrefix("http://127.0.0.1") || authority.hasPrefix("http://[::1]")
        else {
            throw .configuration("the authority must be an https:// URL (plain http:// on loopback only, for tests)")
        }
        self.tenant = tenant
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
        self.authority = String(authority)
    }

    public var tokenURL: String { "\(authority)/\(tenant)/oauth2/v2.0/token" }

    public var description: String { "Entra ID app \(clientID) in tenant \(tenant) (secret \(clientSecret)), scope \(scope)" }
}

/// Why no token could be had, in an operator's words: never the secret, never a token.
public enum EntraTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The settings cannot make a request.
    case configuration(String)
    /// The request did not complete (DNS, connect, TLS, timeout).
    case transport(String)
    /// Entra answered with an OAuth2 error: `error` (`invalid_client`), its AADSTS codes, and the
    /// first line of `error_description`, with a hint for the codes a configuration causes.
    case refused(status: Int, error: String, codes: [Int], detail: String)
    /// An answer that is neither a token nor an OAuth2 error.
    case malformed(status: Int, detail: String)

    /// The credentials, tenant or scope are wrong: retrying them unchanged is pointless, an
    /// operator has to act.
    public var isConfigurationProblem: Bool {
        switch self {
        case .configuration: true
        case .refused(let status, let error, _, _):
            ["invalid_client", "unauthorized_client", "invalid_scope", "invalid_request", "invalid_grant"].contains(error)
                || status == 400 || status == 401
        case .transport, .malformed: false
        }
    }

    public var description: String {
        switch self {
        case .configuration(let why): "Entra ID token: \(why)"
        case .transport(let why): "Entra ID token request failed: \(why)"
        case .refused(let status, let error, let codes, let detail):
            "Entra ID refused the token request (HTTP \(status), \(error)"
                + (codes.isEmpty ? "" : ", " + codes.map { "AADSTS\($0)" }.joined(separator: ", ")) + "): \(detail)"
                + (EntraTokenError.hint(codes).map { " — \($0)" } ?? "")
        case .malformed(let status, let detail): "Entra ID token answer not understood (HTTP \(status)): \(detail)"
        }
    }

    /// What the operator should check, for the codes a configuration causes.
    static func hint(_ codes: [Int]) -> String? {
        for code in codes {
            switch code {
            case 90002, 900023, 90072: return "check the tenant (id or domain)"
            case 700016, 700038, 900144: return "check the client id: no such application in this tenant"
            case 7_000_215: return "check the client secret: use the secret's value, not its id"
            case 7_000_222: return "the client secret has expired: make a new one"
            case 70011, 500011, 1_002_012: return "check the scope and that the resource exists in this tenant"
            case 7_000_112, 700024: return "the application is disabled or its credentials are not valid now"
            default: continue
            }
        }
        return nil
    }
}

/// Tokens from Entra ID's v2.0 token endpoint with the client credentials grant, cached and
/// refreshed ahead of their expiry, one request at a time (``AccessTokenCache``):
///
/// ```
/// POST {authority}/{tenant}/oauth2/v2.0/token
/// Content-Type: application/x-www-form-urlencoded
/// client_id=…&client_secret=…&scope=…&grant_type=client_credentials
/// → {"token_type":"Bearer","expires_in":3599,"access_token":"…"}
/// → {"error":"invalid_client","error_description":"AADSTS7000215: …","error_codes":[7000215],…}
/// ```
public final class EntraTokenSource: Sendable, CustomStringConvertible {
    public let credentials: EntraClientCredentials
    private let http: HTTPClient
    private let budget: HTTPBudget?
    private let cache: AccessTokenCache<EntraTokenError>
    /// Tokens longer than this are refused: it bounds what a broken answer makes us hold.
    static let maximumTokenBytes = 32 << 10

    public init(
        credentials: EntraClientCredentials, http: HTTPClient, budget: HTTPBudget? = nil,
        retryAfterFailure: Duration = .seconds(10), wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds
    ) {
        self.credentials = credentials
        self.http = http
        self.budget = budget
        cache = AccessTokenCache(retryAfterFailure: retryAfterFailure, wallClock: wallClock) {
            await EntraTokenSource.request(credentials, http: http, budget: budget, wallClock: wallClock)
        }
    }

    /// A token usable now.
    public func token() async throws(EntraTokenError) -> AccessToken {
        try await cache.token().get()
    }

    /// `Authorization: Bearer …`, a secret header.
    public func authorizationHeader() async throws(EntraTokenError) -> HTTPHeader {
        HTTPHeader("Authorization", "Bearer " + (try await token()).value.reveal(), secret: true)
    }

    /// After the platform answered 401 to `token`: the next call fetches a new one.
    public func invalidate(_ token: AccessToken) async { await cache.invalidate(token) }

    /// Token requests made so far.
    public var fetches: Int { get async { await cache.fetches } }

    public var description: String { "Entra ID token source for \(credentials)" }

    static func request(
        _ credentials: EntraClientCredentials, http: HTTPClient, budget: HTTPBudget?, wallClock: @Sendable () -> Int64
    ) async -> Result<AccessToken, EntraTokenError> {
        let form = [
            ("client_id", credentials.clientID), ("client_secret", credentials.clientSecret.reveal()),
            ("scope", credentials.scope), ("grant_type", "client_credentials"),
        ].map { formEncoded($0.0) + "=" + formEncoded($0.1) }.joined(separator: "&")
        var request = HTTPRequest(
            .post, credentials.tokenURL, headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(form.utf8))
        request.budget = budget
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            return .failure(.transport("POST \(credentials.authority)/\(credentials.tenant)/oauth2/v2.0/token: \(error)"))
        }
        return parse(status: response.status, body: response.body, obtainedAt: wallClock(), secret: credentials.clientSecret)
    }

    /// Reads the token endpoint's answer. Pure, for tests and the fuzz target: nothing of the
    /// answer but its error fields reaches an error, and `secret`'s value never does.
    public static func parse(status: Int, body: [UInt8], obtainedAt: Int64, secret: Secret) -> Result<AccessToken, EntraTokenError> {
        guard let value = try? JSONValue.parse(body), case .object = value else {
            return .failure(.malformed(status: status, detail: "the answer is not a JSON object (\(body.count) bytes)"))
        }
        if let error = value["error"]?.string {
            let codes = (value["error_codes"]?.array ?? []).prefix(8).compactMap(\.int)
            let description = value["error_description"]?.string ?? ""
            return .failure(
                .refused(status: status, error: clean(error, secret: secret, limit: 64), codes: codes, detail: firstLine(description, secret: secret))
            )
        }
        guard (200..<300).contains(status) else {
            return .failure(.malformed(status: status, detail: "an HTTP \(status) without an OAuth2 error"))
        }
        guard let token = value["access_token"]?.string, !token.isEmpty, token.utf8.count <= maximumTokenBytes else {
            return .failure(.malformed(status: status, detail: "no usable access_token"))
        }
        if let type = value["token_type"]?.string, type.lowercased() != "bearer" {
            return .failure(.malformed(status: status, detail: "token_type is not Bearer"))
        }
        // A number in v2.0 answers; a string in v1.0's, which some proxies and fakes still give.
        let expiresIn = value["expires_in"]?.int ?? value["expires_in"]?.string.flatMap { Int($0) }
        guard let expiresIn, expiresIn > 0, expiresIn <= 86_400 * 7 else {
            return .failure(.malformed(status: status, detail: "expires_in is missing or out of range"))
        }
        return .success(
            AccessToken(
                value: Secret(reference: "entra access token", value: token),
                expiresAt: obtainedAt &+ Int64(expiresIn) * 1_000_000_000, obtainedAt: obtainedAt))
    }

    /// `AADSTS7000215: Invalid client secret provided. …` up to the line break before the trace
    /// and correlation ids, bounded, and never holding the secret.
    static func firstLine(_ description: String, secret: Secret) -> String {
        let line = description.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return clean(line, secret: secret, limit: 300)
    }

    static func clean(_ text: String, secret: Secret, limit: Int) -> String {
        var text = text
        let value = secret.reveal()
        if value.count >= 4 { text = text.replacingAll(value, with: "<redacted>") }
        let printable = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        return printable.count > limit ? printable.prefix(limit) + "…" : printable
    }

    /// application/x-www-form-urlencoded: unreserved characters as they are, the rest as %XX.
    static func formEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            if isNameByte(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~") {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789ABCDEF")
                result += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
            }
        }
        return result
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
