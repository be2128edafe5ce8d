import Foundation
import MutewardenJSON
import Testing

/// The GWS peer works as documented, driven by curl and raw Bayeux JSON only (no mutewarden
/// code), so that a failure in the provider's tests points at the provider, not at its peer.
@Suite(.serialized)
struct GenesysPeerSmokeTests {
    static let calls = "/v2/me/calls"

    /// Logs in like a GWS client: GET /api/v2/me with Basic auth, keeping the cookie; returns
    /// the CSRF header's name and value.
    func login(_ peer: GenesysPeer, _ curl: Curl) async throws -> (name: String, token: String) {
        let response = try await curl.request(
            "GET", peer.url("/api/v2/me"), basicAuth: (GenesysPeer.user, GenesysPeer.password))
        try #require(response.status == 200, "\(response.status) \(response.text)")
        let name = try #require(response.header("X-CSRF-HEADER"))
        let token = try #require(response.header("X-CSRF-TOKEN"))
        return (name, token)
    }

    func operate(
        _ peer: GenesysPeer, _ curl: Curl, _ callId: String, _ operation: String, csrf: (name: String, token: String)?
    ) async throws -> CurlResponse {
        try await curl.request(
            "POST", peer.url("/api/v2/me/calls/\(callId)"), headers: csrf.map { [$0.name: $0.token] } ?? [:],
            body: #"{"operationName":"\#(operation)"}"#)
    }

    @Test func aCallEventReachesALongPollingSubscriber() async throws {
        let peer = try await GenesysPeer.start()
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        let handshake = try await bayeux.handshake()
        #expect(handshake["successful"]?.bool == true)
        #expect(handshake["advice"]?["timeout"]?.int == 5000, "the short connect timeout keeps tests quick")
        let subscribed = try await bayeux.subscribe(Self.calls)
        #expect(subscribed["successful"]?.bool == true)

        try await peer.createCall(id: "CALL-A", userData: ["PCI_STAGE": "CARD"])
        let event = try #require(try await bayeux.events().first)
        let data = try #require(event["data"])
        #expect(data["messageType"]?.string == "CallStateChangeMessage")
        #expect(data["notificationType"]?.string == "StatusChange")
        #expect(data["phoneNumber"]?.string == GenesysPeer.agentPhoneNumber)
        #expect(data["call"]?["id"]?.string == "CALL-A")
        #expect(data["call"]?["state"]?.string == "Established")
        #expect(data["call"]?["mute"]?.string == "Off")
        #expect(data["call"]?["userData"]?["PCI_STAGE"]?.string == "CARD")
        #expect(data["call"]?["capabilities"]?.array?.contains(.string("MuteCall")) == true)

        // Attached data changes are AttachedDataChanged; ending a call is a Released StatusChange.
        try await peer.setUserData("CALL-A", ["PCI_STAGE": "DONE"])
        try await peer.endCall("CALL-A")
        let more = try await bayeux.events(count: 2)
        #expect(more.map { $0["data"]?["notificationType"]?.string } == ["AttachedDataChanged", "StatusChange"])
        #expect(more[0]["data"]?["call"]?["userData"]?["PCI_STAGE"]?.string == "DONE")
        #expect(more[1]["data"]?["call"]?["state"]?.string == "Released")
    }

    @Test func theWebSocketTransportIsOfferedAndServed() async throws {
        let peer = try await GenesysPeer.start()
        let handshake = try await LongPollingBayeux(peer.notificationsURL).handshake()
        let types = handshake["supportedConnectionTypes"]?.array?.compactMap(\.string) ?? []
        #expect(types.contains("websocket"))
        #expect(types.contains("long-polling"))

        let probe = try await WebSocketProbe.start(url: peer.webSocketURL)
        _ = try await probe.waitForLine(startingWith: "subscribed /v2/me/calls")
        try await peer.createCall(id: "CALL-WS")
        let line = try await probe.waitForLine(startingWith: "event ")
        let event = try GenesysPeer.parse(String(line.dropFirst("event ".count)))
        #expect(event["data"]?["call"]?["id"]?.string == "CALL-WS")
        let state = try await peer.bayeux()
        #expect((state["connectionTypes"]?["websocket"]?.int ?? 0) >= 1)
        #expect(state["messages"]?.array?.contains { $0["transport"]?.string == "websocket" } == true)
    }

    @Test func muteNeedsTheSessionCookieAndCSRFTokenThenIsConfirmedOnALongPoll() async throws {
        let peer = try await GenesysPeer.start()
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        try await bayeux.handshake()
        _ = try await bayeux.subscribe(Self.calls)
        try await peer.createCall(id: "CALL-M")
        _ = try await bayeux.events()  // the call's creation

        let curl = Curl(cookies: true)
        let refused = try await operate(peer, curl, "CALL-M", "MuteCall", csrf: nil)
        #expect(refused.status == 403)
        #expect(try refused.json()["statusMessage"]?.string == "Missing or invalid Csrf token")

        let wrong = try await Curl().request("GET", peer.url("/api/v2/me"), basicAuth: (GenesysPeer.user, "wrong"))
        #expect(wrong.status == 401)
        #expect(try wrong.json()["statusCode"]?.int == 20)

        let csrf = try await login(peer, curl)
        #expect(csrf.name == "X-CSRF-TOKEN")
        #expect(curl.sessionCookie != nil)

        // Hold a long poll, then mute: the confirmation wakes it.
        let connects = try await peer.bayeux()["meta"]?["/meta/connect"]?.int ?? 0
        async let held = bayeux.connect()
        try await peer.waitForConnects(connects + 1)
        let accepted = try await operate(peer, curl, "CALL-M", "MuteCall", csrf: csrf)
        #expect(accepted.status == 200)
        #expect(try accepted.json() == .object([("statusCode", .number(0))]))
        let replies = try await held
        let muted = try #require(replies.first { $0["channel"]?.string == Self.calls }, "\(replies)")
        #expect(muted["data"]?["notificationType"]?.string == "StatusChange")
        #expect(muted["data"]?["call"]?["mute"]?.string == "On")
        #expect(muted["data"]?["call"]?["capabilities"]?.array?.contains(.string("UnmuteCall")) == true)

        let paused = try await operate(peer, curl, "CALL-M", "PauseCallRecording", csrf: csrf)
        #expect(try paused.json()["statusCode"]?.int == 0)
        let recording = try #require(try await bayeux.events().first)
        #expect(recording["data"]?["notificationType"]?.string == "CallRecordingStateChange")
        #expect(recording["data"]?["call"]?["recordingState"]?.string == "Paused")
        #expect(recording["data"]?["call"]?["userData"]?["GSIP_RECORD"]?.string == "PAUSED")

        let log = try await peer.operations()
        #expect(log.map { $0["operationName"]?.string } == ["MuteCall", "MuteCall", "PauseCallRecording"])
        #expect(log.map { $0["csrf"]?.string } == ["missing", "valid", "valid"])
        #expect(log.map { $0["httpStatus"]?.int } == [403, 200, 200])
        #expect(log[1]["cookie"]?.bool == true)
        #expect(log[1]["session"]?.string == "valid")
    }

    @Test func theCallsListShowsTheCurrentCalls() async throws {
        let peer = try await GenesysPeer.start()
        try await peer.createCall(id: "CALL-L1", userData: ["PCI_STAGE": "CARD"], notify: false)
        try await peer.createCall(id: "CALL-L2", state: "Held", notify: false)
        let curl = Curl(cookies: true)
        let unauthenticated = try await Curl().request("GET", peer.url("/api/v2/me/calls"))
        #expect(unauthenticated.status == 401)

        let listed = try await curl.request(
            "GET", peer.url("/api/v2/me/calls"), basicAuth: (GenesysPeer.user, GenesysPeer.password))
        #expect(listed.status == 200)
        let body = try listed.json()
        #expect(body["statusCode"]?.int == 0)
        let calls = body["calls"]?.array ?? []
        #expect(calls.map { $0["id"]?.string } == ["CALL-L1", "CALL-L2"])
        #expect(calls[0]["userData"]?["PCI_STAGE"]?.string == "CARD")
        #expect(calls[1]["state"]?.string == "Held")

        // The session cookie alone authenticates a GET, as it does on GWS.
        try await peer.endCall("CALL-L1", notify: false)
        let again = try await curl.request("GET", peer.url("/api/v2/me/calls"))
        #expect(try again.json()["calls"]?.array?.map { $0["id"]?.string } == ["CALL-L2"])
    }

    @Test func scriptedAnswersReplaceTheDefaultOnes() async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 1)
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        try await bayeux.handshake()
        _ = try await bayeux.subscribe(Self.calls)
        try await peer.createCall(id: "CALL-S", notify: false)
        let curl = Curl(cookies: true)
        let csrf = try await login(peer, curl)

        try await peer.script(
            operation: "MuteCall", callId: "CALL-S", .status(2, message: "Invalid state"), .http(503),
            .acceptWithoutConfirming)
        let invalid = try await operate(peer, curl, "CALL-S", "MuteCall", csrf: csrf)
        #expect(invalid.status == 200)
        #expect(try invalid.json()["statusCode"]?.int == 2)
        #expect(try invalid.json()["statusMessage"]?.string == "Invalid state")
        let unavailable = try await operate(peer, curl, "CALL-S", "MuteCall", csrf: csrf)
        #expect(unavailable.status == 503)
        let silent = try await operate(peer, curl, "CALL-S", "MuteCall", csrf: csrf)
        #expect(try silent.json()["statusCode"]?.int == 0)
        // Accepted but never confirmed: the long poll ends at Faye's (1 s) timeout with no event.
        let replies = try await bayeux.connect()
        #expect(!replies.contains { $0["channel"]?.string == Self.calls })
        #expect(try await peer.calls().first?["mute"]?.string == "Off")

        // Script used up: back to the fake's own answers, which check the call's capabilities.
        #expect(try await operate(peer, curl, "CALL-S", "ResumeCallRecording", csrf: csrf).json()["statusCode"]?.int == 2)
        #expect(try await operate(peer, curl, "NO-SUCH-CALL", "MuteCall", csrf: csrf).json()["statusCode"]?.int == 6)
        #expect(try await operate(peer, curl, "CALL-S", "MuteCall", csrf: csrf).json()["statusCode"]?.int == 0)
        #expect(try await bayeux.events().first?["data"]?["call"]?["mute"]?.string == "On")
    }

    @Test func expiredTokensAndSessionsAreRefusedUntilTheClientLogsInAgain() async throws {
        let peer = try await GenesysPeer.start()
        try await peer.createCall(id: "CALL-E", notify: false)
        let curl = Curl(cookies: true)
        let first = try await login(peer, curl)
        try await peer.rotateCSRFTokens()
        #expect(try await operate(peer, curl, "CALL-E", "MuteCall", csrf: first).status == 403)
        let second = try await login(peer, curl)
        #expect(second.token != first.token)
        #expect(try await operate(peer, curl, "CALL-E", "MuteCall", csrf: second).status == 200)

        let cookie = curl.sessionCookie
        try await peer.expireSessions()
        #expect(try await operate(peer, curl, "CALL-E", "UnmuteCall", csrf: second).status == 403)
        #expect(try await curl.request("GET", peer.url("/api/v2/me/calls")).status == 401)
        let third = try await login(peer, curl)
        #expect(curl.sessionCookie != cookie)
        #expect(try await operate(peer, curl, "CALL-E", "UnmuteCall", csrf: third).status == 200)
    }

    @Test func rawPublishingAndRawConnectReplies() async throws {
        let peer = try await GenesysPeer.start()
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        try await bayeux.handshake()
        _ = try await bayeux.subscribe(Self.calls)
        try await peer.waitForSubscribers()
        try await peer.publish(
            data: #"{"messageType":"CallStateChangeMessage","notificationType":"SomethingNew","call":{"id":"X"}}"#,
            count: 2, padBytes: 100_000)
        let events = try await bayeux.events(count: 2)
        #expect(events.map { $0["data"]?["notificationType"]?.string } == ["SomethingNew", "SomethingNew"])
        #expect(events[0]["data"]?["padding"]?.string?.utf8.count == 100_000)

        try await peer.rawConnectReply("this is not JSON")
        let raw = try await Curl().request(
            "POST", peer.notificationsURL,
            body: #"[{"channel":"/meta/connect","clientId":"\#(bayeux.clientId ?? "")","connectionType":"long-polling"}]"#)
        #expect(raw.status == 200)
        #expect(raw.text == "this is not JSON")
    }

    @Test func droppingClientsForcesARehandshake() async throws {
        let peer = try await GenesysPeer.start()
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        try await bayeux.handshake()
        _ = try await bayeux.subscribe(Self.calls)
        let oldId = try #require(bayeux.clientId)
        #expect(try await peer.dropBayeuxClients() == [oldId])
        let replies = try await bayeux.connect()
        let reply = try #require(replies.first)
        #expect(reply["successful"]?.bool == false)
        #expect(reply["error"]?.string == "401:\(oldId):Unknown client")
        #expect(reply["advice"]?["reconnect"]?.string == "handshake")

        try await bayeux.handshake()
        #expect(bayeux.clientId != oldId)
        _ = try await bayeux.subscribe(Self.calls)
        try await peer.createCall(id: "CALL-D")
        #expect(try await bayeux.events().first?["data"]?["call"]?["id"]?.string == "CALL-D")
    }

    @Test func aRestartKeepsThePortAndForgetsEverything() async throws {
        let peer = try await GenesysPeer.start()
        let port = peer.port
        let bayeux = LongPollingBayeux(peer.notificationsURL)
        try await bayeux.handshake()
        let oldId = try #require(bayeux.clientId)
        try await peer.createCall(id: "CALL-R", notify: false)

        try await peer.restart()
        #expect(peer.port == port)
        #expect(try await peer.calls().isEmpty)
        let reply = try #require(try await bayeux.connect().first)
        #expect(reply["error"]?.string == "401:\(oldId):Unknown client")
        #expect(reply["advice"]?["reconnect"]?.string == "handshake")
        #expect(try await bayeux.handshake()["successful"]?.bool == true)
    }
}
