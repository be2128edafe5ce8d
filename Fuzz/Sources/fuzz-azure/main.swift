import FuzzDriver
import MutewardenAzure
import MutewardenCallbackAuth
import MutewardenJSON
import MutewardenProviderKit

/// Microsoft's platform input outside the event feeds: ACS error bodies, Entra token answers, a
/// connection string as an operator pastes it, and a callback URL's query. Read or refused, never
/// a trap; texts stay one bounded line; no secret comes out of an error or a decision.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    if let error = CommunicationError.parse(bytes) {
        let line = error.description
        precondition(!line.unicodeScalars.contains { $0.value < 0x20 }, "a control character in an error text")
        precondition(line.count < 8 * CommunicationError.maximumText * (CommunicationError.maximumDetails + 2), "an unbounded error text")
        precondition(error.innerCodes.count <= CommunicationError.maximumDepth)
    }

    let secret = Secret(reference: "fuzz", value: "fuzz-secret-value")
    for status in [200, 400, 401] {
        switch EntraTokenSource.parse(status: status, body: bytes, obtainedAt: 1_717_000_000_000_000_000, secret: secret) {
        case .success(let token):
            precondition(status == 200 && token.expiresAt > token.obtainedAt, "a token from an error status, or already expired")
        case .failure(let error):
            precondition(!"\(error)".contains(secret.reveal()), "the secret in an error")
        }
    }

    if let parsed = try? ACSConnectionString(parsing: Secret(reference: "fuzz", value: text)) {
        precondition(!parsed.endpoint.hasSuffix("/") && !parsed.host.isEmpty, "an endpoint with a trailing slash or no host")
        _ = try? ACSRequestSigner(connectionString: parsed).signature(method: .post, url: parsed.endpoint + "/p?q=1", body: bytes, date: "d")
    }

    let query = QuerySecretAuthenticator(secret: secret)
    let decision = query.validate(query: text)
    precondition(!decision.description.contains(secret.reveal()), "the secret in a decision")
    return 0
}

runFuzzer(fuzz)
