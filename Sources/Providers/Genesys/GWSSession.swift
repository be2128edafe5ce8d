import Foundation
import MutewardenHTTP
import MutewardenJSON
import MutewardenModel
import MutewardenWebSocket

/// One login to GWS, shared by the feed and the target that name the same server and user: GWS
/// ties the CometD session and the voice API to the same `JSESSIONID` cookie and CSRF token.
public final class GWSSession: Sendable {
    public let baseURL: String
    private let authorization: String
    private let client: HTTPClient
    private let csrf = Locked<(header: String, token: String)?>(nil)
    /// The cookies the last login set (`name=value`), for the WebSocket upgrade, which does not
    /// go through the HTTP client's cookie jar.
    private let cookies = Locked<[String: String]>([:])
    private let report: @Sendable (String) -> Void

    init(
        baseURL: String, username: String, password: String, configuration: HTTPClientConfiguration,
        transport: HTTPTransport, report: @escaping @Sendable (String) -> Void
    ) throws {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        authorization = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        self.report = report
        client = try HTTPClient(configuration: configuration, transport: transport) { httpReport in report("\(httpReport)") }
    }

    /// `GET /api/v2/me` with Basic credentials: sets the `JSESSIONID` cookie and reads the CSRF
    /// header name and token, if the server uses CSRF protection.
    public func login() async throws {
        let response = try await client.send(
            HTTPRequest(.get, baseURL + "/api/v2/me", headers: [HTTPHeader("Authorization", authorization, secret: true)]))
        guard response.isSuccess else {
            throw GWSError.login("GWS answered HTTP \(response.status) to the login (GET /api/v2/me)")
        }
        if let header = response.header("X-CSRF-HEADER"), let token = response.header("X-CSRF-TOKEN") {
            csrf.withLock { $0 = (header, token) }
        }
        let set = response.headers.filter { $0.name.lowercased() == "set-cookie" }.compactMap { header -> (String, String)? in
            let pair = header.value.split(separator: ";", maxSplits: 1).first ?? ""
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
            return name.isEmpty ? nil : (name, String(pair[pair.index(after: equals)...]))
        }
        if !set.isEmpty { cookies.withLock { jar in for (name, value) in set { jar[name] = value } } }
    }

    /// What a WebSocket upgrade to the CometD endpoint carries: the same credentials and session
    /// cookie as every HTTP request.
    public func upgradeHeaders() -> [WebSocketHeader] {
        var headers = [WebSocketHeader("Authorization", authorization)]
        let jar = cookies.withLock { $0 }
        if !jar.isEmpty {
            headers.append(
                WebSocketHeader("Cookie", jar.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")))
        }
        return headers
    }

    /// Sends a request with the session's credentials and CSRF header. A 401, or a 403 from a
    /// stale CSRF token or a lost session, is answered by logging in again and retrying once.
    /// `budget`: whose share of the connections to GWS the request counts against (the feed's or
    /// the target's), so that a hanging voice API cannot hold up the feed's long poll.
    public func send(
        _ method: HTTPMethod, _ path: String, json body: String? = nil, timeout: Duration? = nil, budget: HTTPBudget? = nil
    ) async throws -> HTTPResponse {
        let first = try await sendOnce(method, path, body: body, timeout: timeout, budget: budget)
        guard first.status == 401 || first.status == 403 else { return first }
        report("GWS answered HTTP \(first.status) to \(method) \(path): logging in again")
        try await login()
        return try await sendOnce(method, path, body: body, timeout: timeout, budget: budget)
    }

    private func sendOnce(_ method: HTTPMethod, _ path: String, body: String?, timeout: Duration?, budget: HTTPBudget?)
        async throws -> HTTPResponse
    {
        var headers = [HTTPHeader("Authorization", authorization, secret: true)]
        if method != .get, let csrf = csrf.withLock({ $0 }) { headers.append(HTTPHeader(csrf.header, csrf.token, secret: true)) }
        if body != nil { headers.append(HTTPHeader("Content-Type", "application/json")) }
        var request = HTTPRequest(method, baseURL + path, headers: headers, body: Array((body ?? "").utf8), timeout: timeout)
        request.budget = budget
        return try await client.send(request)
    }

    public func close() { client.close() }
}

public enum GWSError: Error, Sendable, Hashable, CustomStringConvertible {
    case login(String)
    case malformedAnswer(String)

    public var description: String {
        switch self {
        case .login(let why): "GWS login failed: \(why)"
        case .malformedAnswer(let why): "GWS answer not understood: \(why)"
        }
    }
}
