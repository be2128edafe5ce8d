import MutewardenJSON
import MutewardenModel
import MutewardenSupervisor
import Synchronization

/// A Bayeux (CometD 3) client: handshake, subscribe, then `/meta/connect` heartbeats with exactly
/// one outstanding, following the server's advice; on any failure the session ends and the
/// supervisor backs off and handshakes again, one handshake at a time, resubscribing every time.
///
/// Users of CometD clients have been bitten by ambiguous state after a failed re-handshake,
/// concurrent handshakes, tight retry loops and silent subscription loss (prior-art §3). Here the
/// whole session is one sequential loop, so none of those can happen, and every change of state
/// is reported.
public final class BayeuxClient: Sendable {
    public struct Configuration: Sendable {
        public var channels: [String]
        /// Ask for the `ack` extension; used when the server agrees.
        public var useAck = true
        /// Added to the advised connect timeout before a connect is considered lost.
        public var maxNetworkDelay: Duration = .seconds(10)
        /// How long a handshake or subscribe may take.
        public var requestTimeout: Duration = .seconds(15)
        public var reconnect = ReconnectPolicy()

        public init(channels: [String]) { self.channels = channels }
    }

    public struct Callbacks: Sendable {
        /// Every event on a subscribed channel, in order.
        public var event: @Sendable (BayeuxEvent) -> Void
        /// After every successful handshake and subscription, before heartbeats start: the place
        /// for a resync, since events may have been missed.
        public var subscribed: @Sendable () async -> Void
        /// Credentials were refused: the place to log in again (cookie, CSRF token).
        public var authenticationFailed: @Sendable () async -> Void
        public var status: @Sendable (ConnectionStatus) -> Void
        /// After the events of one answer or frame (never called for one without events): where a
        /// feed that gathers them hands them on as one batch.
        public var batchEnded: @Sendable () -> Void
        /// Awaited before each `/meta/connect`: a consumer that is behind holds the next long poll
        /// back, and the backlog waits in the server rather than in this process.
        public var readyForMore: @Sendable () async -> Void
        /// Something the server sent that was not used as sent (advice out of range): the feed
        /// reports it at WARN.
        public var warning: @Sendable (String) -> Void = { _ in }

        public init(
            event: @escaping @Sendable (BayeuxEvent) -> Void, batchEnded: @escaping @Sendable () -> Void = {},
            readyForMore: @escaping @Sendable () async -> Void = {},
            subscribed: @escaping @Sendable () async -> Void = {},
            authenticationFailed: @escaping @Sendable () async -> Void = {},
            status: @escaping @Sendable (ConnectionStatus) -> Void = { _ in }
        ) {
            self.event = event
            self.batchEnded = batchEnded
            self.readyForMore = readyForMore
            self.subscribed = subscribed
            self.authenticationFailed = authenticationFailed
            self.status = status
        }
    }

    private let configuration: Configuration
    private let transport: any BayeuxTransport
    private let callbacks: Callbacks
    private let supervisor: ConnectionSupervisor
    private let nextID = Atomic<UInt64>(0)

    public init(
        configuration: Configuration, transport: any BayeuxTransport, callbacks: Callbacks,
        clock: any MonotonicClock = SystemClock(),
        sleep: @escaping @Sendable (Duration) async throws -> Void = {
            try await Task.sleep(for: $0)
        }
    ) {
        self.configuration = configuration
        self.transport = transport
        self.callbacks = callbacks
        supervisor = ConnectionSupervisor(
            name: "bayeux", policy: configuration.reconnect, clock: clock, sleep: sleep, onChange: callbacks.status)
        self.sleep = sleep
    }

    private let sleep: @Sendable (Duration) async throws -> Void

    /// Runs sessions until the task is cancelled.
    public func run() async {
        await supervisor.run { [self] handle in try await session(handle) }
    }

    private func messageID() -> String { String(nextID.add(1, ordering: .relaxed).newValue) }

    // MARK: - One session

    private struct Session {
        var clientID: String
        var advice: BayeuxAdvice
        var ackEnabled: Bool
        var lastAck: JSONValue?
    }

    private func session(_ handle: ConnectionHandle) async throws {
        let pushed = PushedEvents { [self] batch in deliverEvents(in: batch) }
        try await transport.open(push: { messages in pushed.receive(messages) })
        do {
            try await run(session: handle, pushed: pushed)
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }

    private func run(session handle: ConnectionHandle, pushed: PushedEvents) async throws {
        var session = try await handshake()
        try await subscribe(&session)
        // Events a WebSocket server pushes during the resync wait until it is done: applied
        // after the platform's list, they are newer than it, as they are with long-polling,
        // where they wait in the server for the first /meta/connect.
        await callbacks.subscribed()
        pushed.release()
        handle.markUp()
        var first = true
        while !Task.isCancelled {
            if !first, session.advice.interval > .zero { try await sleep(session.advice.interval) }
            first = false
            await callbacks.readyForMore()
            try await connect(&session)
        }
    }

    private func handshake() async throws -> Session {
        var message: [(String, JSONValue)] = [
            ("channel", .string("/meta/handshake")), ("version", .string("1.0")), ("minimumVersion", .string("1.0")),
            ("supportedConnectionTypes", .array([.string(transport.connectionType)])), ("id", .string(messageID())),
        ]
        if configuration.useAck { message.append(("ext", .object([("ack", .bool(true))]))) }
        let replies = try await exchange([.object(message)], timeout: configuration.requestTimeout)
        guard let reply = replies.messages.first(where: { $0["channel"]?.string == "/meta/handshake" }) else {
            throw BayeuxFailure.malformedReply("no /meta/handshake reply")
        }
        let advice = adopt(BayeuxAdvice(), reply["advice"])
        guard reply["successful"]?.bool == true else {
            let error = BayeuxErrorString(parsing: reply["error"]?.string ?? "no error given")
            if error.meansAuthenticationFailure {
                await callbacks.authenticationFailed()
                throw BayeuxFailure.authenticationFailed(error.description)
            }
            if advice.reconnect == .none { throw BayeuxFailure.serverSaidStop(error.description) }
            throw BayeuxFailure.handshakeRefused(error.description)
        }
        guard let clientID = reply["clientId"]?.string, !clientID.isEmpty else {
            throw BayeuxFailure.malformedReply("a successful handshake without clientId")
        }
        if let offered = reply["supportedConnectionTypes"]?.array,
            !offered.contains(.string(transport.connectionType))
        {
            throw BayeuxFailure.handshakeRefused(
                "the server does not offer \(transport.connectionType) (it offers "
                    + offered.compactMap(\.string).joined(separator: ", ") + ")")
        }
        deliverEvents(in: replies)
        return Session(
            clientID: clientID, advice: advice,
            ackEnabled: configuration.useAck && reply["ext"]?["ack"]?.bool == true, lastAck: nil)
    }

    private func subscribe(_ session: inout Session) async throws {
        let batch = configuration.channels.map { channel in
            JSONValue.object([
                ("channel", .string("/meta/subscribe")), ("clientId", .string(session.clientID)),
                ("subscription", .string(channel)), ("id", .string(messageID())),
            ])
        }
        let replies = try await exchange(batch, timeout: configuration.requestTimeout)
        for channel in configuration.channels {
            guard
                let reply = replies.messages.first(where: {
                    $0["channel"]?.string == "/meta/subscribe" && $0["subscription"]?.string == channel
                })
            else {
                throw BayeuxFailure.malformedReply("no /meta/subscribe reply for \(channel)")
            }
            session.advice = adopt(session.advice, reply["advice"])
            guard reply["successful"]?.bool == true else {
                let error = BayeuxErrorString(parsing: reply["error"]?.string ?? "no error given")
                if error.meansUnknownClient { throw BayeuxFailure.unknownClient(error.description) }
                if error.meansAuthenticationFailure { await callbacks.authenticationFailed() }
                throw BayeuxFailure.subscriptionDenied(channel: channel, reason: error.description)
            }
        }
        deliverEvents(in: replies)
    }

    private func connect(_ session: inout Session) async throws {
        var message: [(String, JSONValue)] = [
            ("channel", .string("/meta/connect")), ("clientId", .string(session.clientID)),
            ("connectionType", .string(transport.connectionType)), ("id", .string(messageID())),
        ]
        if session.ackEnabled { message.append(("ext", .object([("ack", session.lastAck ?? .number(-1))]))) }
        let replies = try await exchange(
            [.object(message)], timeout: session.advice.timeout + configuration.maxNetworkDelay)
        // Events first: they were sent before the reply that ends the long poll.
        deliverEvents(in: replies)
        guard let reply = replies.messages.first(where: { $0["channel"]?.string == "/meta/connect" }) else {
            throw BayeuxFailure.malformedReply("no /meta/connect reply")
        }
        session.advice = adopt(session.advice, reply["advice"])
        if reply["successful"]?.bool == true {
            if session.ackEnabled, let ack = reply["ext"]?["ack"], ack.number != nil { session.lastAck = ack }
            if session.advice.reconnect == .handshake { throw BayeuxFailure.unknownClient("the server advised a new handshake") }
            return
        }
        let error = BayeuxErrorString(parsing: reply["error"]?.string ?? "no error given")
        if error.meansUnknownClient || session.advice.reconnect == .handshake {
            throw BayeuxFailure.unknownClient(error.description)
        }
        if error.meansAuthenticationFailure {
            await callbacks.authenticationFailed()
            throw BayeuxFailure.authenticationFailed(error.description)
        }
        if session.advice.reconnect == .none { throw BayeuxFailure.serverSaidStop(error.description) }
        throw BayeuxFailure.connectFailed(error.description)
    }

    private func deliverEvents(in batch: BayeuxMessages) {
        var delivered = false
        for message in batch.messages {
            guard let channel = message["channel"]?.string, !channel.hasPrefix("/meta/"), let data = message["data"]
            else { continue }
            callbacks.event(
                BayeuxEvent(channel: channel, data: data, id: message["id"]?.string, envelopeBytes: batch.byteCount))
            delivered = true
        }
        if delivered { callbacks.batchEnded() }
    }

    /// `current` with the server's advice laid over it; what had to be clamped is reported.
    private func adopt(_ current: BayeuxAdvice, _ json: JSONValue?) -> BayeuxAdvice {
        let (advice, warnings) = current.updated(with: json)
        for warning in warnings { callbacks.warning(warning) }
        return advice
    }

    private func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages {
        do {
            return try await transport.exchange(batch, timeout: timeout)
        } catch let status as BayeuxHTTPStatus where status.status == 401 || status.status == 403 {
            await callbacks.authenticationFailed()
            throw BayeuxFailure.authenticationFailed(status.description)
        }
    }
}

/// Events pushed by the server (WebSocket), held from the handshake until the resync is done,
/// then delivered as they come. Delivery happens under the lock, so that the held events and
/// those pushed while they are being released reach the feed in the order they arrived.
private final class PushedEvents: Sendable {
    private struct State {
        var holding = true
        var held: [BayeuxMessages] = []
    }

    private let state = Locked(State())
    private let deliver: @Sendable (BayeuxMessages) -> Void

    init(deliver: @escaping @Sendable (BayeuxMessages) -> Void) { self.deliver = deliver }

    func receive(_ batch: BayeuxMessages) {
        state.withLock { state in
            if state.holding { state.held.append(batch) } else { deliver(batch) }
        }
    }

    func release() {
        state.withLock { state in
            state.holding = false
            for batch in state.held { deliver(batch) }
            state.held = []
        }
    }
}
