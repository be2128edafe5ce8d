import Foundation
import MutewardenIngress
import MutewardenModel
import MutewardenTesting

let testToken = "s3cret-ingress-token-0123456789"
let callbackPath = "/callbacks/test"

/// What a route's handler saw, and the records the ingress reported.
final class Observed: Sendable {
    struct Report: Sendable {
        var severity: AuditSeverity
        var message: String
        var fields: AuditFields
    }

    private let state = Locked<(requests: [IngressRequest], reports: [Report])>(([], []))

    var requests: [IngressRequest] { state.withLock { $0.requests } }
    var reports: [Report] { state.withLock { $0.reports } }

    func handled(_ request: IngressRequest) { state.withLock { $0.requests.append(request) } }

    var report: @Sendable (AuditSeverity, String, AuditFields) -> Void {
        { [self] severity, message, fields in
            state.withLock { $0.reports.append(Report(severity: severity, message: message, fields: fields)) }
        }
    }

    /// Every record as one text, to look for what must never be in it.
    var everything: String {
        reports.map { report in "\(report.message) " + report.fields.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ") }
            .joined(separator: "\n")
    }
}

/// An ingress on 127.0.0.1 with one route that answers 200 and remembers what it got.
struct IngressFixture {
    let server: IngressServer
    let observed: Observed
    var port: Int { server.port }
    var url: String { "\(server.configuration.isTLS ? "https" : "http")://127.0.0.1:\(port)\(callbackPath)" }

    init(
        _ configure: (inout IngressConfiguration) -> Void = { _ in },
        authenticator: any IngressAuthenticator = BearerTokenAuthenticator(token: testToken),
        health: @escaping @Sendable () -> IngressHealth = { IngressHealth(checks: [(name: "engine", ok: true)]) }
    ) throws {
        var configuration = IngressConfiguration(address: "127.0.0.1", port: 0, security: .plain(behindProxy: false))
        configure(&configuration)
        let observed = Observed()
        self.observed = observed
        server = try IngressServer(configuration: configuration, health: health, report: observed.report)
        _ = try server.routes.register(
            IngressRoute(path: callbackPath, owner: "feed test", authenticator: authenticator) { request in
                observed.handled(request)
                return IngressResponse(status: 200, json: "{\"received\":\(request.body.count)}")
            })
    }
}

/// curl, as a platform would call: the body in one go, keep-alive off (one request per run).
func curl(_ arguments: [String]) async throws -> (status: Int, body: String) {
    let result = try await runProgram(
        try locateTool("curl"), ["--silent", "--show-error", "--max-time", "20", "--write-out", "\n%{http_code}"] + arguments,
        timeout: .seconds(30))
    let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    guard let code = lines.last.flatMap({ Int($0) }) else { throw TestFailure("curl printed no status: \(result.output)") }
    return (code, lines.dropLast().joined(separator: "\n"))
}

/// The raw-socket abuse client (Peers/abuse.py), run to completion.
func abuse(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> [String] {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers/abuse.py").path
    let result = try await runProgram(try locateTool("python3"), [script] + arguments, timeout: timeout)
    guard result.status == 0 else { throw TestFailure("abuse.py \(arguments.joined(separator: " ")) failed: \(result.output)") }
    return result.stdout.split(separator: "\n").map(String.init)
}

/// An authenticator that decides only when the test says so: a JWKS fetch standing still.
final class GatedAuthenticator: IngressAuthenticator {
    private let gate = Locked<(decision: IngressDecision?, waiters: [CheckedContinuation<IngressDecision, Never>], asked: Int)>(
        (nil, [], 0))

    func authenticate(_ head: IngressRequestHead) -> IngressAuthentication {
        .deferred { [self] in
            await withCheckedContinuation { continuation in
                let decided = gate.withLock { state -> IngressDecision? in
                    state.asked += 1
                    if let decision = state.decision { return decision }
                    state.waiters.append(continuation)
                    return nil
                }
                if let decided { continuation.resume(returning: decided) }
            }
        }
    }

    var asked: Int { gate.withLock { $0.asked } }

    func decide(_ decision: IngressDecision) {
        let waiters = gate.withLock { state in
            state.decision = decision
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: decision) }
    }
}
