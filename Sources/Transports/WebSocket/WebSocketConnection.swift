import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// One WebSocket connection: one attempt to connect, its events, and nothing after its end.
///
/// For protocols that own their session and so decide themselves when and how to connect again
/// (socket.io, whose server says at the handshake which version it speaks and whether a token is
/// still good; Bayeux, whose session dies with its connection). ``WebSocketClient`` is the
/// reconnecting client built on the same machinery.
///
/// ```swift
/// let connection = try await WebSocketConnection.open(name: "feed", configuration: configuration, service: service)
/// try connection.send(text: "hello")
/// for await event in connection.events {
///     switch event {
///     case .text(let text): handle(text)
///     case .disconnected(_, let reason): print("down: \(reason)")
///     case .connected, .binary: break
///     }
/// }
/// ```
///
/// ``open(name:configuration:service:resolver:clock:report:)`` throws
/// `WebSocketError.handshakeRefused(status:)` when the server answered the upgrade with another
/// status than 101, so that a protocol can tell a refused token (401) from a version the server
/// does not speak (400). Dropping the object closes the connection.
public final class WebSocketConnection: Sendable {
    public let info: WebSocketConnectionInfo
    public var id: WebSocketConnectionID { info.id }
    /// `.connected(info)` first, then the messages, then `.disconnected` once, and the sequence
    /// ends. Iterate it from one task; taking events frees room in the receive buffer, as for
    /// ``WebSocketClient/events``.
    public let events: WebSocketEvents

    private let channel: AttemptChannel
    private let service: WebSocketService

    private init(info: WebSocketConnectionInfo, events: WebSocketEvents, channel: AttemptChannel, service: WebSocketService) {
        self.info = info
        self.events = events
        self.channel = channel
        self.service = service
    }

    /// Connects: resolves the name (off the service thread), tries up to four of its addresses
    /// within `connectTimeout`, and returns once the upgrade succeeded.
    ///
    /// - Throws: `WebSocketError.handshakeRefused(status:)` for an upgrade answered with another
    ///   status, `WebSocketError.connection` (why, in an operator's words, without a secret) for
    ///   any other failure, `WebSocketError.invalidConfiguration`, or `CancellationError`.
    public static func open(
        name: String, configuration: WebSocketConfiguration, service: WebSocketService,
        resolver: any HostResolver = SystemResolver(), clock: any MonotonicClock = SystemClock(),
        report: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> WebSocketConnection {
        try configuration.validate()
        let dialer = Dialer(
            name: name, configuration: configuration, service: service, resolver: resolver, clock: clock, report: report)
        dialer.warnIfInsecure()
        let channel = try await dialer.dial(
            { id in AttemptChannel(ownStreamFor: id, limit: configuration.receiveBufferLimit, service: service, redact: dialer.redact) },
            adopt: { _ in })
        guard let events = channel.ownEvents, let info = channel.info else {
            // `dial` returns only channels that are up, and those know their info.
            throw WebSocketError.connection("the connection ended as it came up")
        }
        return WebSocketConnection(info: info, events: events, channel: channel, service: service)
    }

    deinit {
        if !channel.hasEnded { service.submit(.close(channel.id, code: 1000)) }
    }

    /// Whether the connection is still up (it may end any moment after).
    public var isUp: Bool { channel.isUp }

    /// Whether messages have arrived that ``events`` has not handed out yet (or reading is
    /// paused because of them): a protocol's liveness deadline should not pass while the answer
    /// it waits for may be among them.
    public var hasUnreadEvents: Bool { channel.hasUnreadEvents }

    /// Queues a text message. Throws `WebSocketError.notConnected` once the connection has ended,
    /// and `sendQueueFull` when the peer is not reading.
    public func send(text: String) throws {
        try send(.text(Array(text.utf8)))
    }

    public func send(binary: [UInt8]) throws {
        try send(.binary(binary))
    }

    private func send(_ message: OutgoingMessage) throws {
        guard channel.isUp else { throw WebSocketError.notConnected }
        try channel.reserve(bytes: message.count, limit: WebSocketClient.sendQueueLimit)
        guard service.submit(.send(channel.id, message)) else {
            channel.sent(bytes: message.count)
            throw WebSocketError.closed
        }
    }

    /// Closes cleanly (close frame `code`, the peer's answer awaited at most `closeTimeout`) and
    /// returns once the connection has ended. `.disconnected` is still the last event.
    public func close(code: UInt16 = 1000) async {
        service.submit(.close(channel.id, code: code))
        _ = await channel.waitForEnd()
    }

    /// Starts a clean close, as ``close(code:)`` does, without waiting for it to end: for a caller
    /// that will see the end as `.disconnected` in ``events``.
    public func requestClose(code: UInt16 = 1000) {
        service.submit(.close(channel.id, code: code))
    }

    /// Drops the connection at once, without a close handshake: for a peer that stopped answering.
    /// `reason` becomes the reason of `.disconnected`; it must not carry a secret.
    public func abort(reason: String) {
        service.submit(.abort(channel.id, reason: reason))
    }

    /// Waits for the end of the connection, however it ends, and returns why.
    public func waitForEnd() async -> String {
        channel.redact(await channel.waitForEnd().reason)
    }
}

/// One connection attempt to the URL of a configuration: what ``WebSocketConnection`` and every
/// attempt of ``WebSocketClient`` share.
struct Dialer: Sendable {
    let name: String
    let configuration: WebSocketConfiguration
    let service: WebSocketService
    let resolver: any HostResolver
    let clock: any MonotonicClock
    let report: @Sendable (String) -> Void
    let redact: Redactor

    init(
        name: String, configuration: WebSocketConfiguration, service: WebSocketService, resolver: any HostResolver,
        clock: any MonotonicClock, report: @escaping @Sendable (String) -> Void
    ) {
        self.name = name
        self.configuration = configuration
        self.service = service
        self.resolver = resolver
        self.clock = clock
        self.report = report
        redact = Redactor(secrets: configuration.secrets)
    }

    func warnIfInsecure() {
        if configuration.tls.insecure {
            report(
                "WARNING: websocket \(name): TLS certificate verification is OFF (insecure: true) for "
                    + "\(configuration.url): anyone on the network path can read and change this feed")
        }
    }

    /// Resolves the host, then connects to its addresses in turn until one is up; returns that
    /// connection's channel. `makeChannel` makes the channel of each address tried; `adopt` sees
    /// it before it is handed to the service thread, and throws to give up.
    func dial(
        _ makeChannel: (WebSocketConnectionID) -> AttemptChannel, adopt: (AttemptChannel) throws -> Void
    ) async throws -> AttemptChannel {
        let url = configuration.url
        if url.secure { try checkTLSFiles() }
        let deadline = clock.now() + configuration.connectTimeout
        let addresses: [String]
        if isNumericAddress(url.host) {
            addresses = [url.host]
        } else {
            addresses = try await resolveOffThread(
                resolver, host: url.host, port: url.port, timeout: configuration.connectTimeout)
        }
        // A name may resolve to several addresses (IPv6 and IPv4, several hosts): the next is tried
        // when one cannot be reached at all, within the same deadline.
        let candidates = Array(addresses.prefix(4))
        for (index, address) in candidates.enumerated() {
            let remaining = deadline.since(clock.now())
            guard remaining > .zero else { break }
            let channel = makeChannel(WebSocketConnectionID.next())
            try adopt(channel)
            guard let end = try await connect(channel, to: address, within: remaining) else { return channel }
            if end.beforeHTTPResponse && index + 1 < candidates.count {
                report("websocket \(name): \(redact(end.reason)); trying the next address")
                continue
            }
            throw error(for: end)
        }
        throw WebSocketError.connection("connecting to \(url) took longer than \(configuration.connectTimeout.compact)")
    }

    /// What a connection's end means to whoever waited on it.
    func error(for end: ConnectionEnd) -> WebSocketError {
        if let status = end.httpStatus { return .handshakeRefused(status: status) }
        return .connection(redact(end.reason))
    }

    /// lws 4.1 creates a vhost even when the CA bundle cannot be read (it then verifies against
    /// nothing useful and says only "SSL err 1"), so unreadable files are caught here, by name.
    private func checkTLSFiles() throws {
        let tls = configuration.tls
        for (what, path) in [
            ("CA bundle", tls.caBundlePath), ("client certificate", tls.clientCertificatePath),
            ("client key", tls.clientKeyPath),
        ] {
            if let path, access(path, R_OK) != 0 {
                throw WebSocketError.connection("could not set up TLS: cannot read the \(what) \(path)")
            }
        }
    }

    /// Connects `channel` to one address and waits until it is up (nil) or has ended (its end).
    private func connect(_ channel: AttemptChannel, to address: String, within timeout: Duration) async throws
        -> ConnectionEnd?
    {
        let request = ConnectRequest(
            id: channel.id, address: address, port: configuration.url.port, secure: configuration.url.secure,
            tls: configuration.tls, hostHeader: configuration.url.hostHeader, target: configuration.url.target,
            origin: configuration.origin, subprotocols: configuration.subprotocols, headers: configuration.headers,
            pingInterval: configuration.pingInterval, pongTimeout: configuration.pongTimeout,
            idleTimeout: configuration.idleTimeout, closeTimeout: configuration.closeTimeout,
            maximumMessageSize: configuration.maximumMessageSize, sink: channel)
        if configuration.url.secure && configuration.tls.insecure {
            report("WARNING: websocket \(name): connecting to \(configuration.url) WITHOUT verifying its certificate")
        }
        guard service.submit(.connect(request)) else { throw WebSocketError.serviceUnavailable("the service has stopped") }
        let service = self.service
        let timer = Task {
            try await Task.sleep(for: timeout)
            if !channel.isUp {
                service.submit(.abort(channel.id, reason: "connecting took longer than \(timeout.compact)"))
            }
        }
        defer { timer.cancel() }
        // The wait does not end on cancellation: cancellation asks for a close, and the answer is
        // what ends the wait, so nothing is left half-open.
        return await withTaskCancellationHandler {
            await channel.waitUntilUp()
        } onCancel: {
            service.submit(.close(channel.id, code: 1000))
        }
    }
}
