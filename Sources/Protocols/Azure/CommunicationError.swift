import MutewardenJSON

/// The error body of every ACS operation (`CommunicationErrorResponse`, Common 2023-11-15):
/// `{"error":{"code","message","target","details":[…],"innererror":{"code","innererror":…}}}`,
/// read for the audit record and the action's failure.
///
/// Bounded: text is cut to ``maximumText`` characters with control characters replaced, at most
/// ``maximumDetails`` details and ``maximumDepth`` inner errors are kept, so a hostile or broken
/// answer cannot bloat a record or forge a log line.
public struct CommunicationError: Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var target: String?
    /// The `innererror` chain's codes, outermost first: the precise reason (e.g. a sub-code under
    /// `Forbidden`).
    public var innerCodes: [String]
    /// `details[]`, each read as one error (their own details and inner errors left out).
    public var details: [CommunicationError]

    public static let maximumText = 300
    public static let maximumDetails = 8
    public static let maximumDepth = 8

    public init(code: String, message: String, target: String? = nil, innerCodes: [String] = [], details: [CommunicationError] = []) {
        self.code = code
        self.message = message
        self.target = target
        self.innerCodes = innerCodes
        self.details = details
    }

    /// The error of a response body; nil when the body is not that shape (an empty body, HTML
    /// from a proxy), in which case the HTTP status alone describes the failure.
    public static func parse(_ body: some Collection<UInt8>) -> CommunicationError? {
        guard !body.isEmpty, let value = try? JSONValue.parse(body, maximumDepth: 32) else { return nil }
        return parse(value)
    }

    public static func parse(_ value: JSONValue) -> CommunicationError? {
        guard let error = value["error"], case .object = error else { return nil }
        return read(error, withDetails: true)
    }

    private static func read(_ error: JSONValue, withDetails: Bool) -> CommunicationError? {
        let code = error["code"]?.scalarText.map(clean)
        let message = error["message"]?.scalarText.map(clean)
        guard code != nil || message != nil else { return nil }
        var innerCodes: [String] = []
        var inner = error["innererror"]
        while let current = inner, innerCodes.count < maximumDepth {
            if let innerCode = current["code"]?.scalarText { innerCodes.append(clean(innerCode)) }
            inner = current["innererror"]
        }
        let details =
            withDetails ? (error["details"]?.array ?? []).prefix(maximumDetails).compactMap { read($0, withDetails: false) } : []
        return CommunicationError(
            code: code ?? "", message: message ?? "", target: error["target"]?.scalarText.map(clean), innerCodes: innerCodes,
            details: details)
    }

    /// Printable, one line, bounded.
    static func clean(_ text: String) -> String {
        var result = ""
        for character in text.prefix(maximumText) {
            result.append(character.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) } ? " " : character)
        }
        return text.count > maximumText ? result + "…" : result
    }

    /// `code` with the inner codes: `Forbidden/8522`, for an action failure's code.
    public var fullCode: String { ([code] + innerCodes).filter { !$0.isEmpty }.joined(separator: "/") }

    /// `Forbidden/8522: Action is not allowed (target: x; details: …)`, for the audit record.
    public var description: String {
        var text = fullCode.isEmpty ? message : "\(fullCode): \(message)"
        var extras: [String] = []
        if let target, !target.isEmpty { extras.append("target: \(target)") }
        if !details.isEmpty { extras.append("details: " + details.map { "\($0.fullCode): \($0.message)" }.joined(separator: "; ")) }
        if !extras.isEmpty { text += " (\(extras.joined(separator: "; ")))" }
        return text
    }
}
