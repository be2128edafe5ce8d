import Logging
import MutewardenHTTP
import MutewardenJSON
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting

@testable import MutewardenVoicenter

/// A socket.io server played in process: what the feed sees through ``VoicenterSocketConnector``
/// until the socket.io client is wired in. The test pushes events into the connection the feed
/// opened and reads what the feed emitted.
final class FakeConnector: VoicenterSocketConnector {
    struct Attempt: Sendable {
        var url: String
        /// The token the feed presented (revealed here, for the test to compare; never printed).
        var token: String
        var version: VoicenterSocketIOVersion
    }

    enum Plan: Sendable {
        case accept
        case fail(any Error & Sendable)
    }

    /// How the server answers `keepalive`: not at all, or with this `keepaliveResponse`.
    let keepaliveAnswer: Locked<JSONValue?>
    private let state = Locked<(attempts: [Attempt], plan: [Plan], sessions: [FakeSession])>(([], [], []))

    init(keepaliveAnswer: JSONValue? = .object([("isOk", .bool(true)), ("errorCode", .number(0))])) {
        self.keepaliveAnswer = Locked(keepaliveAnswer)
    }

    /// What the next connections do, in order; past the plan, they are accepted.
    func plan(_ steps: Plan...) { state.withLock { $0.plan += steps } }

    var attempts: [Attempt] { state.withLock { $0.attempts } }
    var sessions: [FakeSession] { state.withLock { $0.sessions } }

    func connect(_ request: VoicenterSocketRequest) async throws -> any VoicenterSocketSession {
        let step = state.withLock { state -> Plan in
            state.attempts.append(Attempt(url: request.serverURL, token: request.token.reveal(), version: request.version))
            return state.plan.isEmpty ? .accept : state.plan.removeFirst()
        }
        if case .fail(let error) = step { throw error }
        let session = FakeSession(keepaliveAnswer: keepaliveAnswer)
        state.withLock { $0.sessions.append(session) }
        return session
    }

    /// The connection open now (the last one made), once there is one.
    func waitForSession(_ count: Int = 1, timeout: Duration = .seconds(20)) async throws -> FakeSession {
        try await eventually("connection \(count) opened", timeout: timeout) { sessions.count >= count ? sessions[count - 1] : nil }
    }
}

struct Refused: Error, CustomStringConvertible {
    var description: String { "the fake refused the connection" }
}

/// One connection of ``FakeConnector``.
final class FakeSession: VoicenterSocketSession {
    private struct State {
        var queue: [[VoicenterSocketMessage]] = []
        var ended: (any Error)?? = nil
        var waiter: CheckedContinuation<[VoicenterSocketMessage]?, any Error>?
        var emitted: [VoicenterSocketMessage] = []
    }
    private let state = Locked(State())
    private let keepaliveAnswer: Locked<JSONValue?>

    init(keepaliveAnswer: Locked<JSONValue?>) { self.keepaliveAnswer = keepaliveAnswer }

    /// Events from the server, as one read.
    func push(_ messages: [VoicenterSocketMessage]) {
        let waiter = state.withLock { state -> CheckedContinuation<[VoicenterSocketMessage]?, any Error>? in
            guard state.ended == nil else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.queue.append(messages)
            return nil
        }
        waiter?.resume(returning: messages)
    }

    func push(_ name: String, _ data: JSONValue) { push([VoicenterSocketMessage(name: name, data: data)]) }

    /// The server ends the connection: cleanly (nil), or with an error.
    func end(_ error: (any Error)? = nil) {
        let waiter = state.withLock { state -> CheckedContinuation<[VoicenterSocketMessage]?, any Error>? in
            if state.ended == nil { state.ended = .some(error) }
            defer { state.waiter = nil }
            return state.queue.isEmpty ? state.waiter : nil
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    var emitted: [VoicenterSocketMessage] { state.withLock { $0.emitted } }
    var isEnded: Bool { state.withLock { $0.ended != nil } }

    func nextBatch() async throws -> [VoicenterSocketMessage]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<[VoicenterSocketMessage]?, any Error>? in
                    if !state.queue.isEmpty { return .success(state.queue.removeFirst()) }
                    if let ended = state.ended { return ended.map { .failure($0) } ?? .success(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            end()
        }
    }

    func emit(_ event: String, _ data: JSONValue) throws {
        let open = state.withLock { state in
            guard state.ended == nil else { return false }
            state.emitted.append(VoicenterSocketMessage(name: event, data: data))
            return true
        }
        guard open else { throw Refused() }
        if event == "keepalive", let answer = keepaliveAnswer.withLock({ $0 }) { push("keepaliveResponse", answer) }
    }

    func close() async { end() }
}

/// A provider context that writes its records as the daemon does (Daemon.swift: PAN-masked
/// message, fields through `AuditLogger.metadata`), into a captured log, on a transport of the
/// test's own.
final class LoggedContext: Sendable {
    let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
    let context: ProviderContext
    let transport: HTTPTransport

    init() throws {
        let logger = Logger(label: "mutewarden") { [handler] _ in handler }
        context = ProviderContext { severity, message, fields in
            logger.log(
                level: AuditLogger.level(for: severity), Logger.Message(stringLiteral: PANMasker.maskForLog(message)),
                metadata: AuditLogger.metadata(for: AuditRecord(.feedUp, severity, message, fields)).filter {
                    $0.key != AuditLogger.kindKey
                })
        }
        transport = try HTTPTransport(options: HTTPTransport.Options(threadName: "mw-http-vc-test"))
        context.shared.provide(.httpTransport, transport)
    }

    func lines() -> [String] { handler.lines() }

    func close() {
        context.shared.retainClaims(of: [])
        context.shared.closeUnclaimed()
        transport.close()
    }
}
