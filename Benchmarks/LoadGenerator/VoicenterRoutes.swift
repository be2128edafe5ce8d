import CLibWebSockets
import Foundation
import MutewardenJSON

/// Voicenter's REST side, as far as the daemon uses it: the Real-Time API's login and token
/// refresh (loginapi's `/monitorAPI`), and the monitor server's `MuteUnmuteCalls`.
extension VoicenterServer {
    func httpRequest(_ connection: Connection, uri: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        connection.isPost = lws_hdr_total_length(connection.wsi, WSI_TOKEN_POST_URI) > 0
        connection.path = uri.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
        connection.query = query(connection.wsi)
        connection.authorization = header(connection.wsi, WSI_TOKEN_HTTP_AUTHORIZATION)
        connection.body.removeAll(keepingCapacity: true)
        // A POST answers once its body is in (HTTP_BODY_COMPLETION).
        if connection.isPost { return 0 }
        switch connection.path {
        case settings.loginPath + "/RefreshIdentityToken":
            refresh(connection)
        case settings.mutePath:
            muteUnmute(connection, parameters: connection.query.mapValues { JSONValue.string($0) })
        case settings.socketPath, String(settings.socketPath.dropLast()):
            // The long-polling transport, which neither the daemon nor Voicenter's SDK uses.
            counters.voicenter?.refusedVersion += 1
            respond(connection, 400, #"{"code":0,"message":"Transport unknown"}"#)
        default:
            counters.badRequests += 1
            respond(connection, 404, #"{"message":"No resource"}"#)
        }
        return 0
    }

    func httpBodyComplete(_ connection: Connection) -> Int32 {
        switch connection.path {
        case settings.loginPath + "/Login/Token":
            login(connection)
        case settings.mutePath:
            let parameters = (try? JSONValue.parse(connection.body))?.object ?? []
            muteUnmute(connection, parameters: Dictionary(parameters, uniquingKeysWith: { first, _ in first }))
        default:
            counters.badRequests += 1
            respond(connection, 404, #"{"message":"No resource"}"#)
        }
        return 0
    }

    // MARK: - Login

    /// `POST /Login/Token {"token"}`: the account's token opens a socket token, as Voicenter's
    /// login does; a refusal is HTTP 200 with `StatusCode` 401, as the provider's test peer has it.
    private func login(_ connection: Connection) {
        guard (try? JSONValue.parse(connection.body))?["token"]?.string == settings.accountToken else {
            counters.voicenter?.refusedToken += 1
            respond(connection, 200, #"{"StatusCode":401,"Status":"Invalid credentials","Data":null}"#)
            return
        }
        counters.logins += 1
        if counters.logins == 1 { noteDaemonMemory() }
        respond(connection, 200, #"{"StatusCode":0,"Status":"OK","Data":{"Socket":\#(issue())}}"#)
    }

    /// `GET /RefreshIdentityToken` with `Authorization: Bearer <RefreshToken>`; the answer is in
    /// the login's shape, which the provider reads at either place.
    private func refresh(_ connection: Connection) {
        let bearer = connection.authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let bearer, let expiry = refreshTokens[bearer], expiry > time(nil) else {
            counters.voicenter?.refusedToken += 1
            respond(connection, 401, #"{"StatusCode":401,"Status":"Unauthorized"}"#)
            return
        }
        counters.voicenter?.refreshes += 1
        respond(connection, 200, #"{"StatusCode":0,"Status":"OK","Data":{"Socket":\#(issue())}}"#)
    }

    /// A new socket token and refresh token, as the login's `Socket` object. `Url` is this server:
    /// the daemon opens its socket.io connection where the login tells it to.
    private func issue() -> String {
        let now = time(nil)
        let token = "vt" + hex(Int.random(in: 0..<Int.max), digits: 16)
        let refreshToken = "vr" + hex(Int.random(in: 0..<Int.max), digits: 16)
        tokens[token] = now + settings.tokenLife
        refreshTokens[refreshToken] = now + 86_400
        return #"{"Token":"\#(token)","TokenExpiry":"\#(iso8601(now + settings.tokenLife))","RefreshToken":"\#(refreshToken)","#
            + #""RefreshTokenExpiry":"\#(iso8601(now + 86_400))","Url":"http://127.0.0.1:\#(counters.port)","URLList":[],"#
            + #""Client":"https://loginapi.voicenter.co.il/monitorAPI/GetSocketClient?v=1.3.7","Version":"1","PersonId":1}"#
    }

    /// Whether a socket token was issued here and has not expired.
    func isValid(token: String?) -> Bool {
        guard let token, let expiry = tokens[token] else { return false }
        return expiry > time(nil)
    }

    /// Memory before the daemon tracks any call: it logs in before it connects and gets the snapshot.
    private func noteDaemonMemory() {
        let pid = status.daemonPID.load(ordering: .relaxed)
        guard pid > 0, let memory = ProcessProbe(pid: pid).memory() else { return }
        status.rssAtHandshake.withLock { $0 = memory.rssKiB }
    }

    // MARK: - MuteUnmuteCalls

    /// `{"ivrid"|"extension", "state": "1"|"0"}`, by POST JSON or GET query. Accepted at once with
    /// ErrorCode 200, after which the generator publishes the ExtensionEvent that shows the call's
    /// new `recording.IsMuted`, as the platform would once the recording has stopped.
    private func muteUnmute(_ connection: Connection, parameters: [String: JSONValue]) {
        let now = monotonicNanoseconds()
        counters.actionRequests += 1
        let state = parameters["state"]?.scalarText
        guard state == "1" || state == "0" else {
            counters.badRequests += 1
            respond(connection, 200, #"{"ErrorCode":"400","Message":"Parameters are not valid"}"#)
            return
        }
        let operation: Operation = state == "1" ? .pauseRecording : .resumeRecording
        ledger.measuring = status.measuring.load(ordering: .relaxed)
        if let ivrid = parameters["ivrid"]?.string, !ivrid.isEmpty {
            counters.voicenter?.muteByCall += 1
            ledger.arrived(callID: ivrid, operation: operation, at: now)
            confirmations.post(.init(callID: ivrid, operation: operation))
            outbox.wake()
        } else if let sipID = parameters["extension"]?.scalarText, !sipID.isEmpty {
            // Every run's policy pauses by call, so no request by extension is ever expected: the
            // ledger counts it as unexpected, under a key no call id can take.
            counters.voicenter?.muteByExtension += 1
            ledger.arrived(callID: "extension " + sipID, operation: operation, at: now)
        } else {
            counters.badRequests += 1
            respond(connection, 200, #"{"ErrorCode":"400","Message":"Parameters are not valid"}"#)
            return
        }
        respond(
            connection, 200, #"{"ErrorCode":"200","Message":"Success","ActionID":"\#(hex(Int.random(in: 0..<Int.max), digits: 16))"}"#)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for wall-clock seconds: an expiry as the provider's test peer
/// writes them by default.
func iso8601(_ seconds: Int) -> String {
    var moment = tm()
    var value = time_t(seconds)
    gmtime_r(&value, &moment)
    func two(_ number: Int32) -> String { number < 10 ? "0\(number)" : "\(number)" }
    return "\(moment.tm_year + 1900)-\(two(moment.tm_mon + 1))-\(two(moment.tm_mday))T"
        + "\(two(moment.tm_hour)):\(two(moment.tm_min)):\(two(moment.tm_sec)).000Z"
}
