import MutewardenHTTP
import MutewardenModel

// How transport outcomes become the engine's action-failure dispositions: one reading for every
// provider, which refines it where its platform says more (a GWS statusCode, a 404 for a gone call).

extension HTTPError {
    /// Whether another attempt may succeed. Network trouble and timeouts: yes. Trust, size,
    /// configuration and request problems: no, the same request will fail the same way.
    public var disposition: ActionFailure.Disposition {
        switch kind {
        case .dnsFailure, .connectionRefused, .connectFailed, .connectTimeout, .timeout, .tlsHandshakeFailed,
            .connectionReset, .proxyFailure, .protocolError, .transportFailure:
            .retryable
        case .tlsVerificationFailed, .tlsConfiguration, .responseTooLarge, .tooManyRedirects, .invalidRequest,
            .invalidConfiguration, .cancelled, .closed:
            .permanent
        }
    }

    /// For `ActionFailure.code`: `curl 28`, else `http 200` when only the status is known.
    public var code: String? {
        if let curlCode { return "curl \(curlCode)" }
        if let httpStatus { return "http \(httpStatus)" }
        return nil
    }

    /// The failure an `ActionTarget` reports: `what` names the operation ("mute call 42").
    public func actionFailure(_ what: String) -> ActionFailure {
        ActionFailure(disposition, "\(what): \(description)", code: code)
    }
}

extension Result where Success == HTTPResponse, Failure == HTTPError {
    /// The generic reading of an exchange for an action target: 2xx is accepted, anything else a
    /// failure classified by ``HTTPResponse/disposition`` or ``HTTPError/disposition``.
    public func actionResult(_ what: String) -> ActionAttemptResult {
        switch self {
        case .success(let response):
            response.actionFailure(what).map { .failed($0) } ?? .accepted
        case .failure(let error):
            .failed(error.actionFailure(what))
        }
    }
}

extension HTTPResponse {
    /// nil for 2xx; otherwise what the status generally means for a retry. 408, 425, 429 and 5xx
    /// (but 501 and 505, which will not change) are worth retrying; anything else, including an
    /// unfollowed 3xx, will get the same answer again. Providers refine it (e.g. 404 → call-gone).
    public var disposition: ActionFailure.Disposition? {
        HTTPResponse.disposition(forStatus: status)
    }

    public static func disposition(forStatus status: Int) -> ActionFailure.Disposition? {
        switch status {
        case 200..<300: nil
        case 408, 425, 429: .retryable
        case 501, 505: .permanent
        case 500..<600: .retryable
        default: .permanent
        }
    }

    /// nil for 2xx; otherwise an `ActionFailure` with the status as its code. `what` names the
    /// operation in operator words ("pause recording of call 123"); never put a body in it.
    public func actionFailure(_ what: String) -> ActionFailure? {
        guard let disposition else { return nil }
        return ActionFailure(disposition, "\(what): the server answered HTTP \(status)", code: "http \(status)")
    }

}

extension ResourceKey where Value == HTTPTransport {
    /// The daemon's HTTP transport, which the engine thread runs; providers built on their own
    /// (tests, tools) share one with a thread of its own.
    public static let httpTransport = ResourceKey(kind: "http transport", label: "of the daemon", identity: "http transport")
}
