import MutewardenProviderKit

/// Why an ACS connection string or access key cannot be used. Never shows the key.
public struct ACSCredentialError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`, as the Azure portal
/// gives it (Keys page of the Communication Services resource).
///
/// Parsed as Microsoft's SDKs do (`_shared/utils.py`, `parse_connection_str`): `;`-separated
/// `name=value` pairs, names compared case-insensitively, each value running to the end of its
/// pair (base64 keys end in `=`), the endpoint's trailing slashes dropped. Unlike the SDKs, an
/// unknown name, a repeated one, an endpoint that is not an `https` URL (or `http` on loopback,
/// for tests) and a key that is not base64 are refused here, when the configuration is read,
/// rather than as a 401 at the first mute.
public struct ACSConnectionString: Sendable, Hashable, CustomStringConvertible {
    /// `https://host[:port]`, no trailing slash: the base of every request URL.
    public var endpoint: String
    /// `host[:port]` as it appears in the endpoint: the `host` of the signed string.
    public var host: String
    /// The key as written (base64); the HMAC key is its decoded bytes.
    public var accessKey: Secret

    public init(endpoint: String, accessKey: Secret) throws(ACSCredentialError) {
        var endpoint = Substring(endpoint.trimmingSpaces)
        while endpoint.hasSuffix("/") { endpoint = endpoint.dropLast() }
        let lowered = endpoint.lowercased()
        let schemeLength = lowered.hasPrefix("https://") ? 8 : lowered.hasPrefix("http://") ? 7 : 0
        guard schemeLength > 0 else {
            throw ACSCredentialError("the endpoint must be an https:// URL (got \(Self.shown(endpoint)))")
        }
        let host = endpoint.dropFirst(schemeLength)
        guard !host.isEmpty, !host.contains("/"), !host.contains("?"), !host.contains("#"), !host.contains("@"),
            host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw ACSCredentialError("the endpoint must be scheme://host[:port] with no path, query or user (got \(Self.shown(endpoint)))")
        }
        if schemeLength == 7 {
            let name = host.hasPrefix("[") ? String(host.prefix(while: { $0 != "]" })) + "]" : String(host.prefix(while: { $0 != ":" }))
            guard ["127.0.0.1", "localhost", "[::1]"].contains(name.lowercased()) else {
                throw ACSCredentialError("the endpoint must use https:// (plain http:// is accepted on loopback only, for tests)")
            }
        }
        _ = try ACSRequestSigner.decodeKey(accessKey)
        self.endpoint = String(endpoint)
        self.host = String(host)
        self.accessKey = accessKey
    }

    /// Parses the whole connection string, itself a secret since it holds the key.
    public init(parsing connectionString: Secret) throws(ACSCredentialError) {
        var endpoint: String?
        var key: String?
        for pair in connectionString.reveal().split(separator: ";", omittingEmptySubsequences: true) {
            let trimmed = pair.trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ACSCredentialError("the connection string has a part without '=' (expected endpoint=…;accesskey=…)")
            }
            let name = trimmed[..<equals].lowercased()
            let value = String(trimmed[trimmed.index(after: equals)...])
            switch name {
            case "endpoint":
                guard endpoint == nil else { throw ACSCredentialError("the connection string names endpoint twice") }
                endpoint = value
            case "accesskey":
                guard key == nil else { throw ACSCredentialError("the connection string names accesskey twice") }
                key = value
            default:
                // A short word is a mistyped name and worth showing; anything else may be a piece
                // of the key pasted without its name.
                let word = name.count <= 24 && name.allSatisfy { $0.isLetter || $0 == "_" || $0 == "-" }
                throw ACSCredentialError(
                    "the connection string has an unknown part\(word ? " '\(name)'" : "") (expected endpoint=…;accesskey=…)")
            }
        }
        guard let endpoint, !endpoint.isEmpty else { throw ACSCredentialError("the connection string has no endpoint=…") }
        guard let key, !key.isEmpty else { throw ACSCredentialError("the connection string has no accesskey=…") }
        try self.init(endpoint: endpoint, accessKey: Secret(reference: "\(connectionString.reference) accesskey", value: key))
    }

    public var description: String { "ACS \(endpoint) (access key \(accessKey))" }

    private static func shown(_ text: Substring) -> String {
        let cleaned = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        return cleaned.count > 80 ? cleaned.prefix(80) + "…" : cleaned
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\n" || first == "\r" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\n" || last == "\r" { text.removeLast() }
        return text
    }
}
