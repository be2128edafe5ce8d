import MutewardenJSON
import MutewardenModel

@testable import MutewardenBayeux

/// An in-memory Bayeux server with scriptable misbehaviour, for the protocol logic. The real
/// server (Faye) is exercised once the HTTP and WebSocket transports are in.
final class FakeBayeuxServer: BayeuxTransport {
    struct State {
        var handshakes = 0
        var clientID: String?
        var subscriptions: [String] = []
        var pending: [JSONValue] = []
        var batch = 0
        var inFlight = 0
        var maxInFlight = 0
        var connectAcks: [JSONValue?] = []
        var connects = 0
        /// Errors for the next connects, in order (`code:args:message`).
        var connectErrors: [String] = []
        var handshakeError: String?
        var httpStatus: Int?
        var subscribeError: String?
        var ackSupported = true
        var offered = ["long-polling"]
        var advice: JSONValue = .object([("reconnect", .string("retry")), ("interval", .number(0)), ("timeout", .number(30000))])
        /// Sessions opened and closed on the transport, and the open session's push handler.
        var opens = 0
        var closes = 0
        var push: (@Sendable (BayeuxMessages) -> Void)?
    }

    let connectionType = "long-polling"
    let state = Locked(State())

    func publish(_ channel: String, _ data: JSONValue) {
        state.withLock { $0.pending.append(.object([("channel", .string(channel)), ("data", data)])) }
    }

    func open(push: @escaping @Sendable (BayeuxMessages) -> Void) async throws {
        state.withLock { state in
            state.opens += 1
            state.push = push
        }
    }

    func close() async {
        state.withLock { state in
            state.closes += 1
            state.push = nil
        }
    }

    /// Writes an event outside any exchange, as a WebSocket server does between connect replies.
    func push(_ channel: String, _ data: JSONValue) {
        let push = state.withLock { $0.push }
        push?(BayeuxMessages([.object([("channel", .string(channel)), ("data", data)])], byteCount: 64))
    }

    func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages {
        state.withLock { state in
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        if let status = state.withLock({ state in
            defer { state.httpStatus = nil }
            return state.httpStatus
        }) {
            throw BayeuxHTTPStatus(status: status)
        }
        var replies: [JSONValue] = []
        for message in batch {
            switch message["channel"]?.string {
            case "/meta/handshake": replies.append(handshake(message))
            case "/meta/subscribe": replies.append(subscribe(message))
            case "/meta/connect": replies += try await connect(message)
            default: break
            }
        }
        return BayeuxMessages(replies, byteCount: 1024)
    }

    private func handshake(_ message: JSONValue) -> JSONValue {
        state.withLock { state in
            state.handshakes += 1
            if let error = state.handshakeError {
                return .object([
                    ("channel", .string("/meta/handshake")), ("successful", .bool(false)), ("error", .string(error)),
                ])
            }
            let clientID = "client-\(state.handshakes)"
            state.clientID = clientID
            state.subscriptions = []
            var reply: [(String, JSONValue)] = [
                ("channel", .string("/meta/handshake")), ("successful", .bool(true)), ("clientId", .string(clientID)),
                ("version", .string("1.0")), ("supportedConnectionTypes", .array(state.offered.map { .string($0) })),
                ("advice", state.advice), ("id", message["id"] ?? .null),
            ]
            if state.ackSupported, message["ext"]?["ack"]?.bool == true {
                reply.append(("ext", .object([("ack", .bool(true))])))
            }
            return .object(reply)
        }
    }

    private func subscribe(_ message: JSONValue) -> JSONValue {
        state.withLock { state in
            let channel = message["subscription"]?.string ?? ""
            guard message["clientId"]?.string == state.clientID else {
                return .object([
                    ("channel", .string("/meta/subscribe")), ("subscription", .string(channel)),
                    ("successful", .bool(false)), ("error", .string("402::Unknown client")),
                ])
            }
            if let error = state.subscribeError {
                return .object([
                    ("channel", .string("/meta/subscribe")), ("subscription", .string(channel)),
                    ("successful", .bool(false)), ("error", .string(error)),
                ])
            }
            state.subscriptions.append(channel)
            return .object([
                ("channel", .string("/meta/subscribe")), ("subscription", .string(channel)), ("successful", .bool(true)),
            ])
        }
    }

    private func connect(_ message: JSONValue) async throws -> [JSONValue] {
        // Hold the long poll briefly when there is nothing to say, as a server does.
        for _ in 0..<5 {
            if state.withLock({ !$0.pending.isEmpty || !$0.connectErrors.isEmpty }) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        return state.withLock { state in
            state.connects += 1
            state.connectAcks.append(message["ext"]?["ack"])
            if !state.connectErrors.isEmpty {
                let error = state.connectErrors.removeFirst()
                return [
                    .object([
                        ("channel", .string("/meta/connect")), ("successful", .bool(false)), ("error", .string(error)),
                        ("advice", .object([("reconnect", .string(error.hasPrefix("402") ? "handshake" : "retry"))])),
                    ])
                ]
            }
            guard message["clientId"]?.string == state.clientID else {
                return [
                    .object([
                        ("channel", .string("/meta/connect")), ("successful", .bool(false)),
                        ("error", .string("402::Unknown client")),
                    ])
                ]
            }
            let events = state.subscriptions.isEmpty ? [] : state.pending
            state.pending = state.subscriptions.isEmpty ? state.pending : []
            state.batch += 1
            var reply: [(String, JSONValue)] = [
                ("channel", .string("/meta/connect")), ("successful", .bool(true)), ("id", message["id"] ?? .null),
            ]
            if message["ext"]?["ack"] != nil { reply.append(("ext", .object([("ack", .number(Double(state.batch)))]))) }
            // Events come before the reply in the same batch, as CometD sends them.
            return events + [.object(reply)]
        }
    }
}
