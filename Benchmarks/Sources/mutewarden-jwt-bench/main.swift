import CryptoExtras
import Foundation
import JWTKit
import MutewardenCallbackAuth
import MutewardenModel

// The cost of authenticating one callback by its JWT (RS256, 2048-bit key, keys cached): the
// whole check (header, key lookup, signature, claims), and jwt-kit's verification alone for
// comparison. No network: the key set comes from a fetcher that returns it from memory.
//
//   mutewarden-jwt-bench [--validations N] [--rounds R] [--concurrency C]

struct StaticKeys: SigningKeyFetching {
    let document: [UInt8]
    func fetchKeySet() async throws(SigningKeyError) -> [UInt8] { document }
}

func option(_ name: String, _ fallback: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
        return fallback
    }
    return value
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

let validations = option("--validations", 20_000)
let rounds = option("--rounds", 5)
let concurrency = option("--concurrency", 1)

let privateKey = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
let (modulus, exponent) = try privateKey.publicKey.getKeyPrimitives()
let jwks = #"{"keys":[{"kty":"RSA","use":"sig","kid":"bench","n":"\#(base64URL(modulus))","e":"\#(base64URL(exponent))"}]}"#
let signing = JWTKeyCollection()
await signing.add(rsa: privateKey, digestAlgorithm: .sha256, kid: "bench")
let now = Double(wallClockNanoseconds()) / 1e9
let claims = CallbackClaims(
    issuer: "https://acscallautomation.communication.azure.com", audiences: ["resource-id"], subject: "s", expiration: now + 3600,
    notBefore: now - 60, issuedAt: now - 60)
let token = try await signing.sign(claims, kid: "bench")
let header = "Bearer " + token

let settings = JWTCallbackSettings(
    openIDConfigurationURL: "https://unused.example/openid", issuers: ["https://acscallautomation.communication.azure.com"],
    audiences: ["resource-id"])
let authenticator = JWTCallbackAuthenticator(settings: settings, fetcher: StaticKeys(document: Array(jwks.utf8)))
guard await authenticator.validate(authorizationHeader: header).isAccepted else { fatalError("the benchmark's token is refused") }
let verifier = JWTKeyCollection()
try await verifier.add(jwksJSON: jwks)

func measure(_ label: String, _ body: @escaping @Sendable () async -> Void) async {
    var perValidation: [Double] = []
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    for _ in stride(from: worker, to: validations, by: concurrency) { await body() }
                }
            }
        }
        let elapsed = ContinuousClock.now - start
        perValidation.append(elapsed.seconds * 1e6 / Double(validations))
    }
    let sorted = perValidation.sorted()
    let median = sorted[sorted.count / 2]
    print(
        String(
            format: "%@: %d validations x %d rounds, concurrency %d: median %.1f µs each (best %.1f, worst %.1f), %.0f/s", label,
            validations, rounds, concurrency, median, sorted.first ?? 0, sorted.last ?? 0, 1e6 / median))
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

await measure("callback JWT check (RS256, cached keys)") {
    let decision = await authenticator.validate(authorizationHeader: header)
    precondition(decision.isAccepted)
}
await measure("jwt-kit verify alone") {
    let verified = try? await verifier.verify(token, as: CallbackClaims.self)
    precondition(verified != nil)
}
