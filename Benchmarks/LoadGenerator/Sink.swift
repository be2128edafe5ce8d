import Foundation
import MutewardenJSON

/// A trivial consumer in place of the daemon, to show the generator's own headroom: it shakes hands,
/// subscribes and then long-polls back to back on one keep-alive connection, or reads the CometD
/// websocket, never parsing the events, so nearly all the CPU it spends is the generator's and the
/// server's. It sends no actions; a sink run measures throughput only.
struct Sink: Sendable {
    let port: Int
    let authorization: String
    /// `long-polling` or `websocket`, as the daemon's feed would use.
    let transport: String

    func start(until stop: @escaping @Sendable () -> Bool) -> Thread {
        consumerThread(name: "loadgen-sink", until: stop) { [self] in try run(until: stop) }
    }

    private func run(until stop: @Sendable () -> Bool) throws {
        let next = try bayeuxStream(port: port, transport: transport) {
            try GWSSession(port: port, authorization: authorization)
        }
        while !stop() { _ = try next() }
    }
}

/// The CometD stream as the daemon's feed reads it over `transport`: one long poll after another,
/// or the websocket, whose upgrade carries the credentials of a login (`session`, asked for only
/// then). Each call returns the next reply or frame, unparsed.
func bayeuxStream(port: Int, transport: String, session: () throws -> GWSSession) throws -> () throws -> [UInt8] {
    if transport == "websocket" { return try BayeuxWebSocket(port: port, headers: session().upgradeHeaders).next }
    return try BayeuxPoll(port: port).next
}

/// A login as the daemon makes one: `GET /api/v2/me` with Basic credentials, which answers with
/// the session cookie and the CSRF token that later requests and the websocket upgrade carry.
struct GWSSession {
    let cookie: Substring
    let csrf: String
    let authorization: String

    init(port: Int, authorization: String, over connection: LoopbackHTTP? = nil) throws {
        let login = try (connection ?? LoopbackHTTP(port: port)).request(
            "GET", "/api/v2/me", headers: ["Authorization: \(authorization)"])
        guard let cookie = login.header("set-cookie")?.split(separator: ";").first,
            let csrf = login.header("x-csrf-token")
        else { throw LoopbackHTTP.Failure(description: "the login gave no session cookie or CSRF token") }
        self.cookie = cookie
        self.csrf = csrf
        self.authorization = authorization
    }

    /// What an operation request carries.
    var requestHeaders: [String] { ["Cookie: \(cookie)", "X-CSRF-TOKEN: \(csrf)"] }
    /// What the websocket upgrade carries.
    var upgradeHeaders: [String] { ["Cookie: \(cookie)", "Authorization: \(authorization)"] }
}

/// Starts a built-in consumer on a thread of its own; an error before `stop` ends it, on standard
/// error (after it, the server going away is the end of the run).
func consumerThread(
    name: String, until stop: @escaping @Sendable () -> Bool, _ body: @escaping @Sendable () throws -> Void
) -> Thread {
    let thread = Thread {
        do { try body() } catch  where !stop() { FileHandle.standardError.write(Data("\(name): \(error)\n".utf8)) } catch {}
    }
    thread.name = name
    thread.start()
    return thread
}

/// A CometD long-polling client reduced to the loop: handshake, subscribe to `/v2/me/calls`, then
/// one `/meta/connect` after another, each reply's body handed back unparsed.
final class BayeuxPoll {
    private let connection: LoopbackHTTP
    private let clientID: String
    private var messageID = 3

    init(port: Int) throws {
        connection = try LoopbackHTTP(port: port)
        let handshake = try JSONValue.parse(
            connection.request(
                "POST", "/api/v2/notifications",
                body: #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#
            ).body)
        guard let clientID = handshake.array?.first?["clientId"]?.string else {
            throw LoopbackHTTP.Failure(description: "no clientId in the handshake reply")
        }
        self.clientID = clientID
        _ = try connection.request(
            "POST", "/api/v2/notifications",
            body: #"[{"channel":"/meta/subscribe","clientId":"\#(clientID)","subscription":"/v2/me/calls","id":"2"}]"#)
    }

    func next() throws -> [UInt8] {
        defer { messageID += 1 }
        return try connection.request(
            "POST", "/api/v2/notifications",
            body: #"[{"channel":"/meta/connect","clientId":"\#(clientID)","connectionType":"long-polling","id":"\#(messageID)"}]"#
        ).body
    }
}
