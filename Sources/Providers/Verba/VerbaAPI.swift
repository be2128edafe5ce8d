import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// What one Verba answer says: `<VerbaApi><Response code="…" type="…">…</Response></VerbaApi>`,
/// with `<ErrorMessage description="…">text</ErrorMessage>` on an error. Every text is bounded
/// and stripped of control characters, ready for an audit record.
public struct VerbaAnswer: Sendable, Hashable {
    /// `code` as sent ("0" is success), bounded.
    public var code: String?
    public var type: String?
    /// The ErrorMessage's text and its `description` attribute.
    public var errorMessage: String?
    public var errorDescription: String?
    /// RequestToken's token, whole (a secret: never shown).
    public var token: String?

    /// Tokens longer than this are refused: a GUID is 36 characters, and it bounds what a
    /// broken answer makes the target hold and send.
    static let maximumTokenBytes = 4 << 10

    /// Reads an answer; nil when the body is not a Verba XML answer.
    public static func read(_ body: [UInt8]) -> VerbaAnswer? {
        guard let root = try? VerbaXML.parse(body) else { return nil }
        // The pages show the Response inside VerbaApi; a bare Response is read the same way.
        let response: VerbaXMLElement
        if root.name.lowercased() == "response" {
            response = root
        } else if root.name.lowercased() == "verbaapi", let inner = root.child("Response") {
            response = inner
        } else {
            return nil
        }
        var answer = VerbaAnswer()
        answer.code = response.attribute("code").map { shown($0, limit: 32) }
        answer.type = response.attribute("type").map { shown($0, limit: 64) }
        if let error = response.child("ErrorMessage") {
            answer.errorMessage = shown(error.text.trimmed, limit: 200)
            answer.errorDescription = error.attribute("description").map { shown($0, limit: 64) }
        }
        // The HTTP RequestToken answer's shape is not in the public pages (docs/providers/verba.md):
        // a Token element, or a token attribute, inside the Response.
        let token = response.child("Token")?.text.trimmed ?? response.attribute("token")?.trimmed
        if let token, !token.isEmpty, token.utf8.count <= maximumTokenBytes,
            token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        {
            answer.token = token
        }
        return answer
    }

    public var isSuccess: Bool { code?.trimmed == "0" }

    /// "code 2" for `ActionFailure.code`.
    var codeField: String? { code.map { "code \($0)" } }

    /// "Error: 'Call cannot be found.'" for a failure's message.
    var detail: String {
        var parts: [String] = []
        if let code { parts.append("code \(code)") }
        if let errorDescription, !errorDescription.isEmpty { parts.append(errorDescription) }
        if let errorMessage, !errorMessage.isEmpty { parts.append("'\(errorMessage)'") }
        return parts.joined(separator: ": ")
    }

    /// Platform text for a record: at most `limit` characters, control characters removed.
    static func shown(_ text: String, limit: Int) -> String {
        let scalars = text.unicodeScalars.lazy.filter { $0.value >= 0x20 && $0.value != 0x7F && !(0x80...0x9F).contains($0.value) }
        let clean = String(String.UnicodeScalarView(scalars.prefix(limit)))
        return text.unicodeScalars.count > limit ? clean + "…" : clean
    }
}

extension String {
    var trimmed: String {
        var scalars = Substring.UnicodeScalarView(unicodeScalars)
        while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

/// How MuteRecording requests travel: `method: get | post`.
public enum VerbaMethod: String, Sendable, Hashable, CaseIterable {
    case get
    /// `application/x-www-form-urlencoded`, every parameter in the body.
    case post
}

/// What one MuteRecording answer means for the action.
public enum VerbaOutcome: Sendable, Hashable {
    case accepted
    case failed(ActionFailure)
    /// The token was refused: drop it, so that the next attempt logs in again.
    case unauthorized(ActionFailure)

    public var result: ActionAttemptResult {
        switch self {
        case .accepted: .accepted
        case .failed(let failure), .unauthorized(let failure): .failed(failure)
        }
    }
}

/// The Verba Media Repository's HTTP Business API: `RequestToken` and `MuteRecording`, their
/// requests and what their answers mean. Pure.
public enum VerbaAPI {
    /// Where a MuteRecording finds its call.
    public enum Locator: Sendable, Hashable, CustomStringConvertible {
        /// Verba's internal call GUID.
        case callID(String)
        /// A participant number, with the call statuses to look among.
        case `extension`(String, status: String)

        public var description: String {
            switch self {
            case .callID(let id): "callID \(id)"
            case .extension(let number, let status): "extension \(number) (status \(status))"
            }
        }
    }

    /// MuteRecording's parameters, `token` last (added only when there is one).
    public static func muteParameters(_ locator: Locator, mute: String, apiKey: Secret, token: Secret?) -> [(String, String)] {
        var parameters = [("action", "MuteRecording"), ("apiKey", apiKey.reveal())]
        switch locator {
        case .callID(let id): parameters.append(("callID", id))
        case .extension(let number, let status): parameters += [("extension", number), ("status", status)]
        }
        parameters.append(("mute", mute))
        if let token { parameters.append(("token", token.reveal())) }
        return parameters
    }

    /// `GET {base}?action=RequestToken&apiKey=…` with `Authorization: Basic`, as the "API
    /// authentication" page gives it.
    public static func tokenRequest(baseURL: String, apiKey: Secret, username: String, password: Secret) -> HTTPRequest {
        let query = encoded([("action", "RequestToken"), ("apiKey", apiKey.reveal())])
        let credentials = base64(Array("\(username):\(password.reveal())".utf8))
        return HTTPRequest(.get, baseURL + "?" + query, headers: [HTTPHeader("Authorization", "Basic " + credentials, secret: true)])
    }

    /// The parameters in the query of a GET, or as a form by POST.
    public static func request(baseURL: String, method: VerbaMethod, parameters: [(String, String)]) -> HTTPRequest {
        switch method {
        case .get:
            return HTTPRequest(.get, baseURL + "?" + encoded(parameters))
        case .post:
            return HTTPRequest(
                .post, baseURL, headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")], text: encoded(parameters))
        }
    }

    static func encoded(_ parameters: [(String, String)]) -> String {
        parameters.map { "\(PercentEncoding.unreserved($0.0))=\(PercentEncoding.unreserved($0.1))" }.joined(separator: "&")
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let first = UInt32(bytes[index])
            let second = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let third = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let group = first << 16 | second << 8 | third
            output.append(alphabet[Int(group >> 18 & 0x3F)])
            output.append(alphabet[Int(group >> 12 & 0x3F)])
            output.append(index + 1 < bytes.count ? alphabet[Int(group >> 6 & 0x3F)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(group & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The documented error text for a call the recorder does not know (any more).
    static let notFound = ["cannot be found", "not found"]
    /// The page says only that more than one match "is an error"; its text is not public. Matched
    /// case-insensitively (docs/providers/verba.md, "What is assumed").
    static let moreThanOne = ["more than one", "multiple calls", "more than 1"]
    /// What a refused or expired token might be called: the error text is not public either.
    static let tokenRefused = ["token", "unauthori", "authenticat", "not logged", "session"]

    /// Reads a MuteRecording answer.
    ///
    /// - `code="0"` in a 2xx answer is success, and the only confirmation Verba gives.
    /// - "Call cannot be found" is `call-gone`, which the engine believes only when the feed
    ///   agrees.
    /// - "More than one call matches" is `permanent`: the recorder cannot tell which call to
    ///   mute, and asking again will not change that.
    /// - An ErrorMessage about the token, HTTP 401 and HTTP 403 drop the token (`unauthorized`,
    ///   retryable: the next attempt logs in again).
    /// - HTTP 5xx, timeouts and any other error code are retryable; other HTTP statuses are read
    ///   as HTTP errors are.
    ///
    /// `operation` names the request ("Verba MuteRecording mute=3 for extension 3001"); the
    /// platform's code and ErrorMessage follow it, bounded.
    public static func classify(httpStatus: Int, body: [UInt8], operation: String) -> VerbaOutcome {
        let answer = VerbaAnswer.read(body)
        let detail = answer?.detail ?? ""
        let suffix = detail.isEmpty ? "" : " (\(detail))"
        if httpStatus == 401 || httpStatus == 403 {
            return .unauthorized(
                ActionFailure(
                    .retryable,
                    "\(operation): the Media Repository answered HTTP \(httpStatus)\(suffix); the token is dropped and "
                        + "the next attempt logs in again", code: "http \(httpStatus)"))
        }
        let message = answer?.errorMessage?.lowercased() ?? ""
        if let answer, !answer.isSuccess {
            if moreThanOne.contains(where: message.contains) {
                return .failed(
                    ActionFailure(
                        .permanent,
                        "\(operation): more than one call matches, so Verba muted none (\(detail)); "
                            + "address this target by call, or find why the extension has several ongoing calls",
                        code: answer.codeField))
            }
            if tokenRefused.contains(where: message.contains) {
                return .unauthorized(
                    ActionFailure(
                        .retryable, "\(operation): the token was refused (\(detail)); the next attempt logs in again",
                        code: answer.codeField))
            }
            // After the token: "token not found" is about the session, not the call.
            if notFound.contains(where: message.contains) {
                return .failed(ActionFailure(.callGone, "\(operation): \(detail)", code: answer.codeField))
            }
        }
        guard (200..<300).contains(httpStatus) else {
            let disposition = HTTPResponse.disposition(forStatus: httpStatus) ?? .retryable
            return .failed(
                ActionFailure(disposition, "\(operation): the Media Repository answered HTTP \(httpStatus)\(suffix)", code: "http \(httpStatus)"))
        }
        guard let answer, answer.code != nil else {
            return .failed(
                ActionFailure(
                    .retryable, "\(operation): answer not understood (" + (answer == nil ? "not a Verba XML answer)" : "no code)"),
                    code: "no-code"))
        }
        if answer.isSuccess { return .accepted }
        return .failed(ActionFailure(.retryable, "\(operation): \(detail)", code: answer.codeField))
    }

    /// Reads a RequestToken answer: the token, or why there is none.
    public static func token(httpStatus: Int, body: [UInt8]) -> Result<String, VerbaLoginError> {
        let answer = VerbaAnswer.read(body)
        if httpStatus == 401 || httpStatus == 403 {
            return .failure(.refused("HTTP \(httpStatus)" + (answer.map { $0.detail.isEmpty ? "" : " (\($0.detail))" } ?? "")))
        }
        guard (200..<300).contains(httpStatus) else {
            return .failure(.http(status: httpStatus))
        }
        guard let answer else { return .failure(.malformed("not a Verba XML answer")) }
        guard answer.isSuccess else {
            return .failure(.refused(answer.detail.isEmpty ? "no code" : answer.detail))
        }
        guard let token = answer.token else { return .failure(.malformed("code 0 but no usable Token")) }
        return .success(token)
    }
}

/// Why a RequestToken failed, in an operator's words: never a token, a password, a body.
public enum VerbaLoginError: Error, Sendable, Hashable, CustomStringConvertible {
    case transport(String)
    case http(status: Int)
    /// The API answered, and refused: wrong API key, user or password, or missing roles.
    case refused(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .transport(let why): "Verba RequestToken: \(why)"
        case .http(let status): "Verba RequestToken answered HTTP \(status)"
        case .refused(let why):
            "Verba RequestToken refused (\(why)): check api_key, username and password, and that the user has the "
                + "System Administrator and System Supervisor roles"
        case .malformed(let why): "Verba RequestToken answer not understood: \(why)"
        }
    }

    /// For `ActionFailure`: a refusal will not change by asking again with the same credentials.
    var disposition: ActionFailure.Disposition {
        switch self {
        case .refused: .permanent
        case .http(let status): HTTPResponse.disposition(forStatus: status) ?? .retryable
        case .transport, .malformed: .retryable
        }
    }

    var code: String {
        switch self {
        case .transport: "login-transport"
        case .http(let status): "login http \(status)"
        case .refused: "login-refused"
        case .malformed: "login-malformed"
        }
    }
}
