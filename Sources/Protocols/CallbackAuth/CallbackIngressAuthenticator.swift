import MutewardenHTTP
import MutewardenIngress

/// A platform authenticator (a JWT check, a query secret) as an ingress route's: the ingress
/// holds the body unread until it answers.
public struct CallbackIngressAuthenticator: IngressAuthenticator {
    public let authenticator: any CallbackAuthenticating

    public init(_ authenticator: any CallbackAuthenticating) { self.authenticator = authenticator }

    public func authenticate(_ head: IngressRequestHead) -> IngressAuthentication {
        let callbackHead = CallbackRequestHead(
            method: head.method, path: head.path,
            // The ingress decodes the query; encoded again, each value comes back exactly as sent
            // when the authenticator decodes it.
            query: head.query.isEmpty
                ? nil : head.query.map { "\(PercentEncoding.unreserved($0.name))=\(PercentEncoding.unreserved($0.value))" }.joined(separator: "&"),
            headers: head.headers.map { ($0.name, $0.value) }, peer: head.peer)
        return .deferred { [authenticator] in
            let decision = await authenticator.authenticate(callbackHead)
            if let refusal = decision.refusal {
                return .refuse(IngressRefusal(reason: refusal.rawValue, status: refusal.httpStatus))
            }
            return .accept(principal: nil)
        }
    }
}
