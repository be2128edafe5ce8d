import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// Why an exchange produced no complete response, in an operator's terms.
///
/// The libcurl code, the OS error and the HTTP status (when one had arrived, e.g. before a body
/// turned out too large) are fields; the provider kit's `HTTPError.disposition` says whether trying
/// again can help.
public struct HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The host name did not resolve.
        case dnsFailure = "dns-failure"
        /// Nothing listens on that address and port.
        case connectionRefused = "connection-refused"
        /// No route, host down, or another reason the TCP connection could not be made.
        case connectFailed = "connect-failed"
        /// The connection (TCP and TLS) was not established within the connect timeout.
        case connectTimeout = "connect-timeout"
        /// No complete answer within the request's total timeout.
        case timeout
        /// The server's certificate is not trusted or does not match the host name.
        case tlsVerificationFailed = "tls-verification-failed"
        /// The TLS handshake failed or the server sent a TLS alert (e.g. it wants a client certificate).
        case tlsHandshakeFailed = "tls-handshake-failed"
        /// A CA bundle, client certificate or key could not be loaded.
        case tlsConfiguration = "tls-configuration"
        /// The connection was reset or closed before the answer was complete.
        case connectionReset = "connection-reset"
        /// The answer exceeded the client's response-size cap and was abandoned.
        case responseTooLarge = "response-too-large"
        case tooManyRedirects = "too-many-redirects"
        /// The proxy could not be resolved, reached, or refused the tunnel.
        case proxyFailure = "proxy-failure"
        /// The server's answer is not valid HTTP (or an HTTP/2 stream failed).
        case protocolError = "protocol-error"
        /// The request itself is unusable (bad URL, header with a line break): a bug or bad config.
        case invalidRequest = "invalid-request"
        /// The client's configuration is unusable (missing CA bundle, unreadable key...).
        case invalidConfiguration = "invalid-configuration"
        /// The calling task was cancelled.
        case cancelled
        /// The client or its transport was closed.
        case closed
        /// Anything else libcurl reported.
        case transportFailure = "transport-failure"
    }

    public var kind: Kind
    /// What happened, from libcurl's error buffer or our own words; never a URL query or secret.
    public var detail: String
    /// The libcurl `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int?
    /// The OS `errno` behind a connect failure, when libcurl had one.
    public var osErrno: Int32?
    /// The HTTP status, when the headers had arrived before the failure.
    public var httpStatus: Int?

    public init(_ kind: Kind, _ detail: String, curlCode: Int? = nil, osErrno: Int32? = nil, httpStatus: Int? = nil) {
        self.kind = kind
        self.detail = detail
        self.curlCode = curlCode
        self.osErrno = osErrno
        self.httpStatus = httpStatus
    }

    var summary: String {
        switch kind {
        case .dnsFailure: "DNS lookup failed"
        case .connectionRefused: "connection refused"
        case .connectFailed: "cannot connect"
        case .connectTimeout: "connect timeout"
        case .timeout: "timeout"
        case .tlsVerificationFailed: "TLS verification failed"
        case .tlsHandshakeFailed: "TLS handshake failed"
        case .tlsConfiguration: "TLS configuration error"
        case .connectionReset: "connection reset"
        case .responseTooLarge: "response too large"
        case .tooManyRedirects: "too many redirects"
        case .proxyFailure: "proxy failure"
        case .protocolError: "protocol error"
        case .invalidRequest: "invalid request"
        case .invalidConfiguration: "invalid HTTP client configuration"
        case .cancelled: "cancelled"
        case .closed: "HTTP client closed"
        case .transportFailure: "transport failure"
        }
    }

    public var description: String {
        var text = "\(summary): \(detail)"
        var fields: [String] = []
        if let curlCode { fields.append("curl \(curlCode)") }
        if let osErrno { fields.append("errno \(osErrno)") }
        if let httpStatus { fields.append("after HTTP \(httpStatus)") }
        if !fields.isEmpty { text += " (\(fields.joined(separator: ", ")))" }
        return text
    }

}

extension HTTPError {
    /// What a failed libcurl transfer means. The numbers are `CURLcode` values, stable in
    /// libcurl's ABI; they are spelled out so that this table can be tested without libcurl.
    ///
    /// - `connected`: whether the TCP/TLS connection had been established (a timeout before that
    ///   is a connect timeout).
    /// - `abortedForSize`: the write callback stopped the transfer at the response cap.
    static func fromCurl(
        code: Int, detail rawDetail: String, osErrno: Int32, connected: Bool, httpStatus: Int?,
        abortedForSize: Bool, cap: Int, timeout: Duration, connectTimeout: Duration
    ) -> HTTPError {
        let detail = sanitizedDetail(rawDetail, code: code)
        let errno: Int32? = osErrno == 0 ? nil : osErrno
        let status = (httpStatus ?? 0) > 0 ? httpStatus : nil
        func make(_ kind: Kind, _ text: String) -> HTTPError {
            HTTPError(kind, text, curlCode: code, osErrno: errno, httpStatus: status)
        }
        if abortedForSize {
            return make(.responseTooLarge, "the answer exceeded the \(cap)-byte cap and was abandoned")
        }
        switch code {
        case 1, 3: return make(.invalidRequest, detail)  // UNSUPPORTED_PROTOCOL, URL_MALFORMAT
        case 5, 97: return make(.proxyFailure, detail)  // COULDNT_RESOLVE_PROXY, PROXY
        case 6: return make(.dnsFailure, detail)  // COULDNT_RESOLVE_HOST
        case 7:  // COULDNT_CONNECT
            if osErrno == ECONNREFUSED { return make(.connectionRefused, detail) }
            if detail.contains("proxy") || detail.contains("CONNECT") { return make(.proxyFailure, detail) }
            return make(.connectFailed, detail)
        case 8, 16, 61, 92: return make(.protocolError, detail)  // WEIRD_SERVER_REPLY, HTTP2, BAD_CONTENT_ENCODING, HTTP2_STREAM
        case 28:  // OPERATION_TIMEDOUT
            if !connected {
                return make(.connectTimeout, "no connection within \(connectTimeout.compact) (\(detail))")
            }
            return make(.timeout, "no complete answer within \(timeout.compact) (\(detail))")
        case 35: return make(.tlsHandshakeFailed, detail)  // SSL_CONNECT_ERROR
        case 47: return make(.tooManyRedirects, detail)  // TOO_MANY_REDIRECTS
        case 51, 60, 83, 90, 91:  // PEER_FAILED_VERIFICATION, SSL_ISSUER_ERROR, PINNEDPUBKEYNOTMATCH, SSL_INVALIDCERTSTATUS
            return make(.tlsVerificationFailed, detail)
        case 53, 54, 58, 59, 64, 66, 77, 80, 82:  // SSL_ENGINE*, CERTPROBLEM, CIPHER, USE_SSL_FAILED, CACERT_BADFILE, SHUTDOWN_FAILED, CRL_BADFILE
            return make(.tlsConfiguration, detail)
        case 63: return make(.responseTooLarge, "the announced size exceeds the \(cap)-byte cap (\(detail))")  // FILESIZE_EXCEEDED
        case 18, 52, 55, 56:  // PARTIAL_FILE, GOT_NOTHING, SEND_ERROR, RECV_ERROR
            // A TLS alert arrives as a receive error after the handshake (TLS 1.3 client-certificate
            // rejection): that is a TLS problem, not a flaky network.
            if detail.contains("alert") || detail.contains("SSL routines") { return make(.tlsHandshakeFailed, detail) }
            return make(.connectionReset, detail)
        default: return make(.transportFailure, detail)
        }
    }

    /// libcurl's message with any URL in it redacted (a proxy URL can carry credentials).
    static func sanitizedDetail(_ raw: String, code: Int) -> String {
        let trimmed = raw.trimmingCharactersInSetNewlines()
        if trimmed.isEmpty { return "libcurl error \(code)" }
        return trimmed.split(separator: " ", omittingEmptySubsequences: false).map { word in
            let stripped = word.trimmingQuotes()
            return stripped.contains("://") || stripped.contains("@") ? Redaction.redactedURL(String(stripped)) : String(word)
        }.joined(separator: " ")
    }
}

extension StringProtocol {
    fileprivate func trimmingCharactersInSetNewlines() -> String {
        var scalars = Substring(self)
        while let last = scalars.last, last.isNewline || last == " " { scalars.removeLast() }
        return String(scalars)
    }

    fileprivate func trimmingQuotes() -> Substring {
        var text = Substring(self)
        while let first = text.first, first == "'" || first == "\"" || first == "(" { text.removeFirst() }
        while let last = text.last, last == "'" || last == "\"" || last == ")" || last == "," { text.removeLast() }
        return text
    }
}
