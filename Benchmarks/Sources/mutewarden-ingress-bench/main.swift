// The callback ingress under load: keep-alive POSTs, authenticated and handed to a handler. The
// ingress runs here (pin it to one core); the load comes from
// `mutewarden-http-cbench client --header 'Authorization: …' [--body-file F]` on another.
//
//   mutewarden-ingress-bench [--seconds S] [--mode bearer|jwt|acs]
//
// - bearer: a fixed bearer token, compared on the ingress thread; the handler answers 200 at once.
// - jwt: the RS256 JWT check of the ACS feed (MutewardenCallbackAuth, keys cached from a fetcher
//   in memory) as a deferred authentication; the handler answers 200 at once.
// - acs: the `acs` feed itself, made from its settings as the daemon makes it: its route on this
//   ingress, the JWT checked against the OpenID configuration and keys this ingress also serves
//   (fetched once by the feed's own HTTP client), the body parsed as a CloudEvents batch and run
//   through the feed's core into a sink that counts the call updates.
//
// Prints "port N", the header (and for acs the body) the client must send, then, when the time is
// up or SIGTERM arrives, the requests handled and the CPU this process spent on them.

import CryptoExtras
import Dispatch
import Foundation
import Glibc
import JWTKit
import MutewardenACS
import MutewardenCallbackAuth
import MutewardenConfig
import MutewardenIngress
import MutewardenModel
import MutewardenProviderKit
import Synchronization

let bearerToken = "bench-token-0123456789abcdef"
let issuer = "https://acscallautomation.communication.azure.com"
let audience = "bench-resource-id"
var seconds = 600.0
var mode = "bearer"
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst(), let value = arguments.popFirst() {
    if flag == "--seconds", let parsed = Double(value) { seconds = parsed }
    if flag == "--mode" { mode = value }
}
guard ["bearer", "jwt", "acs"].contains(mode) else { fatalError("--mode is bearer, jwt or acs") }

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// One line straight to stdout: the driver reads the port while this runs, and stdout is a
/// C global that Swift 6 will not let this code flush.
@Sendable func line(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

struct StaticKeys: SigningKeyFetching {
    let document: [UInt8]
    func fetchKeySet() async throws(SigningKeyError) -> [UInt8] { document }
}

/// The JWT check as a route's authenticator, as the ACS feed adapts it: deferred, since the check
/// is asynchronous (the key cache and jwt-kit's key collection are actors).
struct JWTRouteAuthenticator: IngressAuthenticator {
    let authenticator: JWTCallbackAuthenticator
    func authenticate(_ head: IngressRequestHead) -> IngressAuthentication {
        let header = head.header("authorization")
        return .deferred { [authenticator] in
            let decision = await authenticator.validate(authorizationHeader: header)
            return decision.isAccepted ? .accept(principal: nil) : .refuse(IngressRefusal(reason: "jwt"))
        }
    }
}

/// Serves the OpenID configuration and keys to the feed's own HTTP client.
struct Open: IngressAuthenticator {
    func authenticate(_ head: IngressRequestHead) -> IngressAuthentication { .decided(.accept(principal: nil)) }
}

struct Router: IngressRouter {
    let server: IngressServer
    func register(_ route: IngressRoute) throws -> IngressRegistration { try server.routes.register(route) }
}

final class CountingSink: CallUpdateSink {
    let updates = Atomic<Int>(0)
    let up = Atomic<Bool>(false)
    func deliver(_ update: CallUpdate) { updates.add(1, ordering: .relaxed) }
    func deliver(contentsOf updates: [CallUpdate]) { self.updates.add(updates.count, ordering: .relaxed) }
    func feedStateChanged(feed: String, up: Bool, detail: String) { self.up.store(up, ordering: .relaxed) }
    func resync(feed: String, current: [CallUpdate]) {}
    var taskExecutor: (any TaskExecutor)? { nil }
}

// One RSA key; one token signed ahead, valid for the run (the check's cost does not depend on
// which token it is: jwt-kit caches no verification).
let privateKey = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
let (modulus, exponent) = try privateKey.publicKey.getKeyPrimitives()
let jwks = #"{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"bench","n":"\#(base64URL(modulus))","e":"\#(base64URL(exponent))"}]}"#
let signing = JWTKeyCollection()
await signing.add(rsa: privateKey, digestAlgorithm: .sha256, kid: "bench")
let now = Double(wallClockNanoseconds()) / 1e9
let jwt = try await signing.sign(
    CallbackClaims(issuer: issuer, audiences: [audience], subject: "s", expiration: now + seconds + 600, notBefore: now - 60, issuedAt: now - 60),
    kid: "bench")

let handled = Atomic<Int>(0)
let server = try IngressServer(
    configuration: IngressConfiguration(address: "127.0.0.1", port: 0, security: .plain(behindProxy: false)),
    report: { _, message, _ in line("record: \(message)") })
let sink = CountingSink()
var feedTask: Task<Void, any Error>?
switch mode {
case "bearer":
    _ = try server.routes.register(
        IngressRoute(path: "/callbacks", owner: "bench", authenticator: BearerTokenAuthenticator(token: bearerToken)) { _ in
            handled.add(1, ordering: .relaxed)
            return IngressResponse(status: 200, json: "{}")
        })
    line("header Authorization: Bearer \(bearerToken)")
case "jwt":
    let authenticator = JWTCallbackAuthenticator(
        settings: JWTCallbackSettings(openIDConfigurationURL: "https://unused.example/openid", issuers: [issuer], audiences: [audience]),
        fetcher: StaticKeys(document: Array(jwks.utf8)))
    guard await authenticator.validate(authorizationHeader: "Bearer " + jwt).isAccepted else { fatalError("the token is refused") }
    _ = try server.routes.register(
        IngressRoute(path: "/callbacks", owner: "bench", authenticator: JWTRouteAuthenticator(authenticator: authenticator)) { _ in
            handled.add(1, ordering: .relaxed)
            return IngressResponse(status: 200, json: "{}")
        })
    line("header Authorization: Bearer \(jwt)")
default:
    let base = "http://127.0.0.1:\(server.port)"
    let configurationDocument = #"{"issuer":"\#(issuer)","jwks_uri":"\#(base)/jwks"}"#
    _ = try server.routes.register(
        IngressRoute(path: "/openid", methods: ["GET"], owner: "bench keys", authenticator: Open()) { _ in
            IngressResponse(status: 200, json: configurationDocument)
        })
    _ = try server.routes.register(
        IngressRoute(path: "/jwks", methods: ["GET"], owner: "bench keys", authenticator: Open()) { _ in
            IngressResponse(status: 200, json: jwks)
        })
    let loader = ConfigurationLoader(registry: ProviderRegistry(feeds: [ACSFeedSettings.feedProvider], targets: []))
    let configuration = try loader.load(
        yaml: """
            ingress: { address: 127.0.0.1, port: \(server.port), tls: false }
            feeds:
              acs: { type: acs, path: /callbacks, resource_id: \(audience), openid_configuration: "\(base)/openid" }
            """, file: "bench.yaml")
    let context = ProviderContext(report: { _, message, _ in line("record: \(message)") }, ingress: Router(server: server))
    let feed = try configuration.feeds[0].settings.makeFeed(name: "acs", context: context)
    feedTask = Task { try await feed.run(delivering: sink) }
    for _ in 0..<1000 where !sink.up.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
    guard sink.up.load(ordering: .relaxed) else { fatalError("the acs feed did not start") }
    line("header Authorization: Bearer \(jwt)")
    // A tone, as the platform sends one per keyed digit: the feed's parse and core run for each.
    line(
        #"body [{"id":"1","source":"calling/callConnections/c1","type":"Microsoft.Communication.ContinuousDtmfRecognitionToneReceived","#
            + #""specversion":"1.0","data":{"callConnectionId":"c1","serverCallId":"s1","correlationId":"k1","sequenceId":1,"tone":"five"}}]"#)
}
line("port \(server.port)")
let cpuAtStart = cpuSeconds()
let clock = ContinuousClock()
let started = clock.now
// Ends at the deadline, or when the driver sends SIGTERM after its client is done.
let done = DispatchSemaphore(value: 0)
signal(SIGTERM, SIG_IGN)
let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
terminate.setEventHandler { @Sendable in done.signal() }
terminate.resume()
_ = done.wait(timeout: .now() + seconds)
let elapsed = (clock.now - started)
let cpu = cpuSeconds() - cpuAtStart
let count = mode == "acs" ? server.statistics[.handled] - 2 : handled.load(ordering: .relaxed)
line(
    "ingress (\(mode)): \(count) callbacks handled, \(String(format: "%.2f", cpu)) s CPU "
        + "(\(String(format: "%.1f", count > 0 ? cpu * 1e6 / Double(count) : 0)) µs each), "
        + "\(server.statistics[.unauthorized]) refused, \(String(format: "%.1f", Double(elapsed.components.seconds))) s open"
        + (mode == "acs" ? ", \(sink.updates.load(ordering: .relaxed)) call updates delivered" : ""))
feedTask?.cancel()
server.stop()
