import Foundation
import MutewardenJSON
import MutewardenTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Test support for the Genesys Web Services provider: the Ruby peer (Peers/gws_peer.rb, a Faye
// Bayeux server and a fake of the GWS REST API in one thin process) and a curl CLI client to
// drive it, on the test kit's managed processes.
//
// A missing ruby, ruby-faye, thin or curl throws, failing the test: `make test` installs them
// through TEST_PACKAGES, and a test that skips when its peer is missing tests nothing in CI.

struct GenesysPeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The peer process: one Ruby process on 127.0.0.1, port chosen by the kernel at the first start
/// and kept across `restart()`. It is killed when this object goes away, and exits by itself when
/// this test process dies (its standard input closes) or after `lifetime` seconds.
final class GenesysPeer: Sendable {
    static let user = "agent1"
    static let password = "agent-secret"
    static let agentPhoneNumber = "3001"

    /// Peers/, next to this file: the peer scripts live with the tests that run them.
    static let peersDirectory: String =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    let port: Int
    /// Faye's /meta/connect timeout (seconds): how long an idle long poll is held.
    let connectTimeout: Double
    private let lifetime: Int
    /// The running process; another after `restart()`.
    private let process: Mutex<PeerProcess?>

    var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The CometD endpoint (GWS's /api/v2/notifications), both connection types.
    var notificationsURL: String { baseURL + "/api/v2/notifications" }
    var webSocketURL: String { "ws://127.0.0.1:\(port)/api/v2/notifications" }
    func url(_ path: String) -> String { baseURL + path }

    /// Starts the peer on an ephemeral port (or `port`) and returns once it listens.
    static func start(port: Int = 0, connectTimeout: Double = 5, lifetime: Int = 600) async throws -> GenesysPeer {
        let (process, actualPort) = try await launch(port: port, connectTimeout: connectTimeout, lifetime: lifetime)
        return GenesysPeer(process: process, port: actualPort, connectTimeout: connectTimeout, lifetime: lifetime)
    }

    private init(process: PeerProcess, port: Int, connectTimeout: Double, lifetime: Int) {
        self.process = Mutex(process)
        self.port = port
        self.connectTimeout = connectTimeout
        self.lifetime = lifetime
    }

    /// Kills the peer (SIGKILL: connections drop without a goodbye, as when a GWS node dies).
    func stop() async {
        let process = process.withLock { $0 }
        await process?.stop(SIGKILL)
    }

    /// A new process on the same port: every Bayeux client, session, call and script is gone,
    /// so a client's next /meta/connect gets `401:<clientId>:Unknown client` with advice
    /// `reconnect: handshake`. Retries for a while should the port still be held.
    func restart() async throws {
        await stop()
        var lastError: (any Error)?
        for _ in 0..<25 {
            do {
                let (started, _) = try await Self.launch(port: port, connectTimeout: connectTimeout, lifetime: lifetime)
                process.withLock { $0 = started }
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw GenesysPeerError("the peer did not restart on port \(port): \(lastError.map { "\($0)" } ?? "")")
    }

    /// What the peer printed (its log), to explain a failure.
    var output: String { process.withLock { $0 }?.log ?? "" }

    private static func launch(port: Int, connectTimeout: Double, lifetime: Int) async throws -> (PeerProcess, Int) {
        let script = peersDirectory + "/gws_peer.rb"
        guard FileManager.default.fileExists(atPath: script) else { throw GenesysPeerError("no peer script at \(script)") }
        let process = try await PeerProcess.start(
            try locateTool("ruby"),
            [
                script, "--port", String(port), "--timeout", String(connectTimeout), "--lifetime", String(lifetime),
                "--user", user, "--password", password, "--phone-number", agentPhoneNumber, "--exit-on-stdin-eof",
            ], name: "gws_peer.rb")
        do {
            // A missing ruby-faye or thin shows in the log as a LoadError: the test fails, not skips.
            let line = try await process.waitForLine(
                timeout: .seconds(30), "the port line (make test installs ruby-faye, ruby-faye-websocket and thin)"
            ) { $0.hasPrefix("port ") }
            guard let actual = Int(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else {
                throw process.failure("not a port line: \(line)")
            }
            return (process, actual)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    // MARK: - The control API (see docs/providers/genesys.md, "Test peers")

    /// A control request; throws unless the peer answers 2xx. `body` is JSON text.
    @discardableResult
    func control(_ method: String, _ path: String, _ body: String? = nil) async throws -> JSONValue {
        let response = try await Curl().request(method, url(path), body: body)
        guard (200..<300).contains(response.status) else {
            throw GenesysPeerError("\(method) \(path) answered \(response.status): \(response.text)")
        }
        return try response.json()
    }

    /// Creates a call and publishes it (StatusChange) unless `notify` is false. `fields` are
    /// extra call fields as a JSON object's text (e.g. `{"callType":"Outbound"}`).
    @discardableResult
    func createCall(
        id: String, state: String = "Established", userData: [String: String]? = nil, notify: Bool = true,
        fields: String = "{}"
    ) async throws -> JSONValue {
        var members = try Self.members(fields)
        members.insert(("id", .string(id)), at: 0)
        members.append(("state", .string(state)))
        if let userData { members.append(("userData", Self.object(userData))) }
        members.append(("notify", .bool(notify)))
        return try await control("POST", "/test/calls", JSONValue.object(members).serialized)
    }

    /// Changes a call; `body` is a JSON object of call fields (null removes one) plus optional
    /// `notificationType`, `notify`, `phoneNumber`, `capabilities`.
    @discardableResult
    func updateCall(_ id: String, _ body: String) async throws -> JSONValue {
        try await control("PATCH", "/test/calls/\(id)", body)
    }

    /// Replaces the call's attached data: an AttachedDataChanged notification.
    @discardableResult
    func setUserData(_ id: String, _ userData: [String: String]) async throws -> JSONValue {
        try await updateCall(id, JSONValue.object([("userData", Self.object(userData))]).serialized)
    }

    /// Ends a call: a StatusChange with state Released (or `state`), and the call leaves the table.
    @discardableResult
    func endCall(_ id: String, state: String = "Released", notify: Bool = true) async throws -> JSONValue {
        try await control(
            "DELETE", "/test/calls/\(id)",
            JSONValue.object([("state", .string(state)), ("notify", .bool(notify))]).serialized)
    }

    func calls() async throws -> [JSONValue] {
        try await control("GET", "/test/calls")["calls"]?.array ?? []
    }

    /// One scripted answer to the next matching request.
    enum Answer: Sendable {
        /// HTTP 200 `{"statusCode":code,"statusMessage":…}`; nothing is changed or published.
        case status(Int, message: String? = nil)
        /// An HTTP error with this body (default: a small HTML page), e.g. 500, 502, 503.
        case http(Int, body: String? = nil)
        /// `{"statusCode":0}` but the call never changes and no notification follows.
        case acceptWithoutConfirming
        /// `{"statusCode":0}`, the confirming notification `milliseconds` later.
        case confirmAfter(milliseconds: Int)
        /// Any of the above, answered `milliseconds` late (for client time-outs).
        indirect case delayed(milliseconds: Int, Answer)

        var json: [(String, JSONValue)] {
            switch self {
            case .status(let code, let message):
                [("statusCode", .number(Double(code)))] + (message.map { [("statusMessage", .string($0))] } ?? [])
            case .http(let status, let body):
                [("httpStatus", .number(Double(status)))] + (body.map { [("body", .string($0))] } ?? [])
            case .acceptWithoutConfirming: [("statusCode", .number(0)), ("confirm", .bool(false))]
            case .confirmAfter(let milliseconds): [("statusCode", .number(0)), ("confirmDelayMs", .number(Double(milliseconds)))]
            case .delayed(let milliseconds, let answer): answer.json + [("delayMs", .number(Double(milliseconds)))]
            }
        }
    }

    /// Queues answers for the next requests of `operation` (an operationName such as "MuteCall",
    /// or "GET /api/v2/me" / "GET /api/v2/me/calls"; nil: any) on `callId` (nil: any call).
    func script(operation: String? = nil, callId: String? = nil, _ answers: Answer...) async throws {
        try await script(operation: operation, callId: callId, answers: answers)
    }

    func script(operation: String? = nil, callId: String? = nil, answers: [Answer]) async throws {
        var members: [(String, JSONValue)] = []
        if let operation { members.append(("operation", .string(operation))) }
        if let callId { members.append(("callId", .string(callId))) }
        members.append(("responses", .array(answers.map { .object($0.json) })))
        try await control("POST", "/test/script", JSONValue.object(members).serialized)
    }

    func clearScript() async throws { try await control("DELETE", "/test/script") }

    /// Every REST request the peer received, oldest first: method, path, operationName, callId,
    /// body, and what it carried: cookie (Bool), session/csrf/basicAuth ("valid", "invalid",
    /// "missing"/"none", "unknown"), with httpStatus and statusCode answered.
    func requests() async throws -> [JSONValue] {
        try await control("GET", "/test/requests")["requests"]?.array ?? []
    }

    func operations(named name: String? = nil) async throws -> [JSONValue] {
        try await requests().filter { request in
            guard let operation = request["operationName"]?.string else { return false }
            return name == nil || operation == name
        }
    }

    func clearRequests() async throws { try await control("DELETE", "/test/requests") }

    /// Gives every session a new CSRF token: the client's next POST gets 403 until it GETs again.
    func rotateCSRFTokens() async throws { try await control("POST", "/test/csrf/rotate") }

    /// Forgets every JSESSIONID: the next POST gets 403; a GET with Basic auth opens a new session.
    func expireSessions() async throws { try await control("POST", "/test/sessions/expire") }

    /// csrf: whether POSTs need the token (default true); enforceCapabilities: whether an
    /// operation absent from the call's capabilities gets statusCode 2 (default true).
    /// password: the user's new password; the old one is refused from then on.
    func configure(
        csrf: Bool? = nil, enforceCapabilities: Bool? = nil, phoneNumber: String? = nil, password: String? = nil
    ) async throws {
        var members: [(String, JSONValue)] = []
        if let password { members.append(("password", .string(password))) }
        if let csrf { members.append(("csrf", .bool(csrf))) }
        if let enforceCapabilities { members.append(("enforceCapabilities", .bool(enforceCapabilities))) }
        if let phoneNumber { members.append(("phoneNumber", .string(phoneNumber))) }
        try await control("POST", "/test/config", JSONValue.object(members).serialized)
    }

    /// Publishes `data` (any JSON text) through Faye on `channel`, `count` times, with a
    /// `padding` member of `padBytes` bytes added to an object.
    func publish(data: String, channel: String = "/v2/me/calls", count: Int = 1, padBytes: Int = 0) async throws {
        _ = try Self.parse(data)
        try await control(
            "POST", "/test/publish",
            #"{"channel":\#(JSONValue.string(channel).serialized),"data":\#(data),"count":\#(count),"padBytes":\#(padBytes)}"#)
    }

    /// The next long-polling /meta/connect is answered with these bytes instead of by Faye.
    /// Lays `advice` (a JSON object's text) over the advice of the next `count` successful
    /// /meta/connect replies, over either connection type.
    func adviseConnects(_ advice: String, count: Int = 1) async throws {
        let members: [(String, JSONValue)] = [("advice", try Self.parse(advice)), ("count", .number(Double(count)))]
        try await control("POST", "/test/bayeux/advice", JSONValue.object(members).serialized)
    }

    func rawConnectReply(_ body: String, status: Int = 200, contentType: String = "application/json") async throws {
        try await control(
            "POST", "/test/bayeux/raw-connect-reply",
            JSONValue.object([
                ("body", .string(body)), ("status", .number(Double(status))), ("contentType", .string(contentType)),
            ]).serialized)
    }

    /// Faye forgets every remote client (the server's own publishing client stays): their next
    /// /meta/connect gets `401:<clientId>:Unknown client`, advice `reconnect: handshake`; held
    /// long polls return at once, websockets are closed. The process and port stay.
    @discardableResult
    func dropBayeuxClients() async throws -> [String] {
        try await control("POST", "/test/bayeux/drop-clients")["dropped"]?.array?.compactMap(\.string) ?? []
    }

    /// Faye's view: clients (remote ids), subscriptions (channel: count), meta (channel: count),
    /// connectionTypes (type: count) and messages (each remote Bayeux message with the
    /// credentials it carried, like `requests()`).
    func bayeux() async throws -> JSONValue { try await control("GET", "/test/bayeux") }

    /// Waits (bounded) until `count` remote clients are subscribed to `channel`.
    func waitForSubscribers(_ count: Int = 1, channel: String = "/v2/me/calls", within seconds: Double = 20)
        async throws
    {
        try await eventually("\(count) subscriber(s) on \(channel)", timeout: .seconds(seconds), every: .milliseconds(50)) {
            try await bayeux()["subscriptions"]?[channel]?.int ?? 0 >= count ? true : nil
        }
    }

    /// Waits (bounded) until Faye has received `count` /meta/connect messages in all, e.g. to
    /// know a long poll is being held before publishing.
    func waitForConnects(_ count: Int, within seconds: Double = 20) async throws {
        try await eventually("\(count) /meta/connect at Faye", timeout: .seconds(seconds), every: .milliseconds(20)) {
            try await bayeux()["meta"]?["/meta/connect"]?.int ?? 0 >= count ? true : nil
        }
    }

    // MARK: - Helpers

    static func parse(_ text: String) throws -> JSONValue {
        do { return try JSONValue.parse(text) } catch { throw GenesysPeerError("not JSON (\(error)): \(text.prefix(300))") }
    }

    private static func members(_ objectText: String) throws -> [(String, JSONValue)] {
        guard let members = try parse(objectText).object else { throw GenesysPeerError("not a JSON object: \(objectText)") }
        return members
    }

    static func object(_ dictionary: [String: String]) -> JSONValue {
        .object(dictionary.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
    }
}

/// One HTTP exchange made with the curl CLI.
struct CurlResponse: Sendable {
    var status: Int
    /// The last header block's fields in order (after any 100 Continue).
    var headers: [(name: String, value: String)]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    /// The last field of that name, compared case-insensitively.
    func header(_ name: String) -> String? {
        headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }
    func json() throws -> JSONValue { try GenesysPeer.parse(text) }
}

/// The curl CLI, one process per request, with an optional cookie store of its own (a file that
/// curl reads and writes, like a browser's jar). Not URLSession: the curl CLI is what the
/// system's libcurl does, with no Foundation networking in between.
final class Curl: Sendable {
    let cookieJar: String?

    init(cookies: Bool = false) {
        cookieJar =
            cookies
            ? FileManager.default.temporaryDirectory.appendingPathComponent("mutewarden-gws-jar-\(UUID().uuidString)").path
            : nil
    }

    deinit {
        if let cookieJar { try? FileManager.default.removeItem(atPath: cookieJar) }
    }

    /// The JSESSIONID curl holds in its jar, if any.
    var sessionCookie: String? {
        guard let cookieJar, let text = try? String(contentsOfFile: cookieJar, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count >= 7, fields[5] == "JSESSIONID" { return String(fields[6]) }
        }
        return nil
    }

    /// Sends one request and waits for the whole answer (`timeout` seconds at most, enforced by
    /// curl and, should curl hang, by a SIGKILL 10 s later). Throws on a transport failure only:
    /// any HTTP status is a response.
    func request(
        _ method: String, _ url: String, headers: [String: String] = [:], body: String? = nil,
        basicAuth: (user: String, password: String)? = nil, timeout: Double = 15
    ) async throws -> CurlResponse {
        let curl = try locateTool("curl")
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-curl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var arguments = [
            "--silent", "--show-error", "--max-time", String(timeout), "--request", method,
            "--output", directory + "/body", "--dump-header", directory + "/headers",
            // No "Expect: 100-continue" pause before large bodies.
            "--header", "Expect:",
        ]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["--header", "\(name): \(value)"] }
        if let body {
            try body.write(toFile: directory + "/request", atomically: false, encoding: .utf8)
            arguments += ["--data-binary", "@" + directory + "/request"]
            if headers.keys.contains(where: { $0.lowercased() == "content-type" }) == false {
                arguments += ["--header", "Content-Type: application/json"]
            }
        }
        if let basicAuth { arguments += ["--user", "\(basicAuth.user):\(basicAuth.password)"] }
        if let cookieJar { arguments += ["--cookie", cookieJar, "--cookie-jar", cookieJar] }
        arguments.append(url)

        // curl's --max-time bounds it; the kit kills one that outlives that by 10 s.
        let result = try await runProgram(curl, arguments, timeout: .seconds(timeout + 10))
        guard result.status == 0 else {
            throw GenesysPeerError("curl \(method) \(url) failed (\(result.exit)): \(result.stderr)")
        }
        let rawHeaders = (try? String(contentsOfFile: directory + "/headers", encoding: .utf8)) ?? ""
        let blocks = rawHeaders.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        guard let last = blocks.last else { throw GenesysPeerError("curl \(method) \(url): no response headers") }
        let lines = last.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw GenesysPeerError("curl \(method) \(url): bad status line \(lines[0])")
        }
        let fields = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = FileManager.default.contents(atPath: directory + "/body") ?? Data()
        return CurlResponse(status: status, headers: fields, body: body)
    }
}
