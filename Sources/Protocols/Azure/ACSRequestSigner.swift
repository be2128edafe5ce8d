import Crypto
import Foundation
import MutewardenHTTP
import MutewardenModel
import MutewardenProviderKit

/// The three headers that sign one request with an ACS access key.
public struct ACSSignature: Sendable, Hashable, CustomStringConvertible {
    /// `x-ms-date`: IMF-fixdate of the signing time.
    public var date: String
    /// `x-ms-content-sha256`: base64 of the body's SHA-256.
    public var contentHash: String
    /// `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…`;
    /// a credential for as long as the platform accepts the date, so only ever in a secret header.
    public var authorization: String

    /// The headers to add to the request, as the SDK's policy adds them (with
    /// `x-ms-return-client-request-id`, which makes the platform echo the request id that
    /// support asks for); `Authorization` is marked secret.
    public var headers: [HTTPHeader] {
        [
            HTTPHeader("x-ms-date", date),
            HTTPHeader("x-ms-content-sha256", contentHash),
            HTTPHeader("x-ms-return-client-request-id", "true"),
            HTTPHeader("Authorization", authorization, secret: true),
        ]
    }

    public var description: String { "ACS signature for \(date)" }
}

/// Signs ACS REST requests with HMAC-SHA256 exactly as Microsoft's SDKs do (Python:
/// `azure/communication/callautomation/_shared/policy.py`, `HMACCredentialsPolicy`; and the
/// "Sign an HTTP request" tutorial):
///
/// ```
/// stringToSign = VERB "\n" pathAndQuery "\n" x-ms-date ";" host ";" x-ms-content-sha256
/// Signature    = base64(HMAC-SHA256(base64decode(accesskey), UTF-8(stringToSign)))
/// ```
///
/// `pathAndQuery` is the request URL's path and query exactly as they go on the wire (already
/// percent-encoded, not decoded again), and `host` the URL's authority (`host[:port]`). The
/// oracle test (`Tests/MutewardenAzureTests`) checks both against the SDK's own policy.
public struct ACSRequestSigner: Sendable, CustomStringConvertible, CustomReflectable {
    private let key: SymmetricKey
    /// Where the key came from, for descriptions.
    public let keyReference: String

    public init(accessKey: Secret) throws(ACSCredentialError) {
        key = SymmetricKey(data: try Self.decodeKey(accessKey))
        keyReference = accessKey.reference
    }

    public init(connectionString: ACSConnectionString) throws(ACSCredentialError) {
        try self.init(accessKey: connectionString.accessKey)
    }

    static func decodeKey(_ accessKey: Secret) throws(ACSCredentialError) -> Data {
        guard let bytes = Data(base64Encoded: String(accessKey.reveal().trimmingSpaces)), !bytes.isEmpty else {
            throw ACSCredentialError("the access key (\(accessKey)) is not base64: copy it again from the resource's Keys page")
        }
        return bytes
    }

    /// The signature of a request. Throws only for a URL that has no `scheme://authority`.
    public func signature(method: HTTPMethod, url: String, body: [UInt8], date: String) throws(ACSCredentialError) -> ACSSignature {
        guard let (host, pathAndQuery) = Self.hostAndPathAndQuery(url) else {
            throw ACSCredentialError("cannot sign a request to a URL without scheme://host (\(method))")
        }
        let contentHash = Data(SHA256.hash(data: body)).base64EncodedString()
        let stringToSign = method.rawValue.uppercased() + "\n" + pathAndQuery + "\n" + date + ";" + host + ";" + contentHash
        let mac = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key)
        let signature = Data(mac).base64EncodedString()
        return ACSSignature(
            date: date, contentHash: contentHash,
            authorization: "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + signature)
    }

    /// `request` with its signature headers (any earlier ones replaced), signed at `wallClock`
    /// (nanoseconds since the epoch). Sign each attempt anew: the platform refuses an old date.
    public func sign(_ request: HTTPRequest, wallClock: Int64 = wallClockNanoseconds()) throws(ACSCredentialError) -> HTTPRequest {
        let signature = try signature(
            method: request.method, url: request.url, body: request.body, date: HTTPDate.format(wallClockNanoseconds: wallClock))
        var signed = request
        let replaced: Set<String> = ["x-ms-date", "x-ms-content-sha256", "x-ms-return-client-request-id", "authorization"]
        signed.headers.removeAll { replaced.contains($0.name.lowercased()) }
        signed.headers += signature.headers
        return signed
    }

    /// The URL's authority and its path and query (fragment dropped; an empty path is `/`, as
    /// sent). nil when there is no `scheme://`.
    static func hostAndPathAndQuery(_ url: String) -> (String, String)? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard !authority.isEmpty else { return nil }
        var pathAndQuery = rest[authorityEnd...]
        if let hash = pathAndQuery.firstIndex(of: "#") { pathAndQuery = pathAndQuery[..<hash] }
        let text = pathAndQuery.hasPrefix("/") ? String(pathAndQuery) : "/" + pathAndQuery
        return (String(authority), text)
    }

    public var description: String { "ACS HMAC-SHA256 signer (access key <secret \(keyReference)>)" }
    public var customMirror: Mirror { Mirror(self, children: ["keyReference": keyReference], displayStyle: .struct) }
}
