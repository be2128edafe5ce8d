import CCurl
import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel
import Synchronization

/// Counters of one transport, for the status line and tests.
public struct HTTPTransportStatistics: Sendable, Hashable {
    /// Transfers handed to libcurl.
    public var started: Int
    /// Exchanges that produced a response (any status).
    public var succeeded: Int
    /// Exchanges that ended in an ``HTTPError`` after being handed to libcurl.
    public var failed: Int
    /// TCP connections opened; far below `started` when keep-alive and HTTP/2 do their job.
    public var connectionsOpened: Int
    public var inFlight: Int
}

/// One libcurl multi handle and the loop that drives it: every transfer of every client on it
/// runs there.
///
/// The loop runs on a thread of its own, or, for a transport made by ``hosted(options:)``, on
/// a host's thread: the daemon's engine thread drives its transport between batches, so that
/// a reply, the events in it and the requests they cause are one thread's work, with no hand-off
/// between threads (docs/performance.md). Either way, that thread owns the multi handle, every
/// easy handle and every cookie share; other threads only queue commands and call
/// `curl_multi_wakeup`. Connections are pooled per transport, so clients to the same host (with
/// the same TLS settings) reuse each other's idle connections, while cookies stay per client.
/// The daemon needs one transport; a client made without one gets its own.
public final class HTTPTransport: Sendable {
    public struct Options: Sendable, Hashable {
        /// Concurrent connections to one host; transfers beyond wait for a free one (HTTP/1.1) or
        /// share one (HTTP/2). Keeps a burst from opening a connection per request.
        public var maxConnectionsPerHost: Int
        /// Connections in all, busy or idle (idle ones are kept for reuse up to this number).
        public var maxConnections: Int
        public var threadName: String

        public init(maxConnectionsPerHost: Int = 16, maxConnections: Int = 64, threadName: String = "mw-http") {
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.maxConnections = maxConnections
            self.threadName = threadName
        }
    }

    let mailbox: LoopMailbox
    private let counters = TransportCounters()
    private let running = DispatchGroup()
    private let closing = Atomic<Bool>(false)
    let nextClientID = Atomic<Int>(1)
    let nextRequestID = Atomic<UInt64>(1)
    /// Set when a host runs the loop: see ``hosted(options:)``.
    let hosted: HostedLoop?

    /// A transport with a thread of its own.
    public convenience init(options: Options = Options()) throws(HTTPError) {
        try self.init(options: options, hostedByCaller: false)
    }

    /// A transport without a thread: the returned host runs its loop on the thread that claims it.
    /// Until one does, nothing is sent; closing a client or the transport still works.
    public static func hosted(options: Options = Options()) throws(HTTPError) -> (
        transport: HTTPTransport, host: HTTPTransportHost
    ) {
        let transport = try HTTPTransport(options: options, hostedByCaller: true)
        // Set by the initializer just called.
        guard let loop = transport.hosted else { preconditionFailure("a hosted transport without its loop") }
        return (transport, HTTPTransportHost(loop: loop))
    }

    private init(options: Options, hostedByCaller: Bool) throws(HTTPError) {
        guard curlGlobalInitResult == CURLE_OK else {
            throw HTTPError(.transportFailure, "libcurl could not initialize (curl_global_init failed)")
        }
        guard let pointer = curl_multi_init() else {
            throw HTTPError(.transportFailure, "libcurl could not create a multi handle")
        }
        _ = mw_curl_multi_setopt_long(pointer, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = mw_curl_multi_setopt_long(pointer, CURLMOPT_MAX_HOST_CONNECTIONS, max(1, options.maxConnectionsPerHost))
        _ = mw_curl_multi_setopt_long(pointer, CURLMOPT_MAX_TOTAL_CONNECTIONS, max(1, options.maxConnections))
        // The idle cache as large as the pool: a smaller one closes connections a moment before
        // the next burst needs them again (the benchmark opened 11,000 connections for 50,000
        // requests at 64 in flight with a cache of 32).
        _ = mw_curl_multi_setopt_long(pointer, CURLMOPT_MAXCONNECTS, max(1, options.maxConnections))
        let multi = MultiHandle(pointer: pointer)
        let mailbox = LoopMailbox(multi: multi)
        self.mailbox = mailbox
        let counters = self.counters
        let running = self.running
        running.enter()
        // Room for libcurl to queue a few per connection, so a connection never idles waiting
        // for the loop; HostAdmission holds the rest.
        let transfersPerHost = 4 * max(1, options.maxConnectionsPerHost)
        if hostedByCaller {
            hosted = HostedLoop(
                loop: CurlLoop(
                    multi: multi, mailbox: mailbox, counters: counters, transfersPerHost: transfersPerHost,
                    onStopped: { running.leave() }),
                mailbox: mailbox)
            return
        }
        hosted = nil
        // The thread holds the mailbox and counters, never `self`, so dropping the last reference
        // to the transport runs deinit, which stops the thread.
        let threadName = options.threadName
        let thread = Thread {
            // Foundation's Thread.name does not reach the kernel on Linux: this is what top -H shows.
            mw_set_thread_name(threadName)
            CurlLoop(multi: multi, mailbox: mailbox, counters: counters, transfersPerHost: transfersPerHost).run()
            running.leave()
        }
        thread.start()
    }

    /// Stops the loop: transfers in flight and queued fail with ``HTTPError/Kind/closed``, then
    /// every handle is freed. Returns once that is done; later calls return at once. On a hosted
    /// transport, this runs in place on the host's thread or before any host has claimed it, and
    /// otherwise waits for the host's next round.
    public func close() {
        if !closing.exchange(true, ordering: .acquiringAndReleasing) {
            mailbox.post(.stop)
            hosted?.runCommandsIfAllowed()
        }
        running.wait()
    }

    deinit { close() }

    public var statistics: HTTPTransportStatistics {
        HTTPTransportStatistics(
            started: counters.started.load(ordering: .relaxed),
            succeeded: counters.succeeded.load(ordering: .relaxed),
            failed: counters.failed.load(ordering: .relaxed),
            connectionsOpened: counters.connectionsOpened.load(ordering: .relaxed),
            inFlight: counters.inFlight.load(ordering: .relaxed))
    }
}

/// The HTTP client of one target: its TLS trust, its proxy, its cookie session, its limits.
///
/// ```swift
/// let client = try HTTPClient(configuration: .init(name: "gws", cookieSession: true)) { report in
///     logger.log(level: report.severity == .critical ? .critical : .info, "\(report)")
/// }
/// let response = try await client.send(HTTPRequest(.post, url, headers: [...], text: json))
/// ```
///
/// `send` suspends without blocking a thread; cancelling the calling task abandons the transfer.
/// Any HTTP status is a response; only transport trouble throws (see ``HTTPError``).
public final class HTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    /// The proxy each scheme uses, as resolved when the client was created.
    public let proxy: ProxySettings
    public let transport: HTTPTransport
    private let ownsTransport: Bool
    private let id: Int
    private let closed = Atomic<Bool>(false)
    private let clock = SystemClock()

    /// A client with a transport (and thread) of its own, closed with the client.
    public convenience init(
        configuration: HTTPClientConfiguration, report: @escaping @Sendable (HTTPReport) -> Void = { _ in }
    ) throws(HTTPError) {
        try self.init(configuration: configuration, transport: try HTTPTransport(), owningTransport: true, report: report)
    }

    /// A client on a shared transport. `report` receives what an operator must know (at
    /// `critical`: TLS verification is off); it is called during `init` only.
    public convenience init(
        configuration: HTTPClientConfiguration, transport: HTTPTransport,
        report: @escaping @Sendable (HTTPReport) -> Void = { _ in }
    ) throws(HTTPError) {
        try self.init(configuration: configuration, transport: transport, owningTransport: false, report: report)
    }

    private init(
        configuration: HTTPClientConfiguration, transport: HTTPTransport, owningTransport: Bool,
        report: @escaping @Sendable (HTTPReport) -> Void
    ) throws(HTTPError) {
        if let problem = configuration.problem() {
            if owningTransport { transport.close() }
            throw HTTPError(.invalidConfiguration, "HTTP client \(configuration.name): \(problem)")
        }
        self.configuration = configuration
        self.transport = transport
        self.ownsTransport = owningTransport
        self.id = transport.nextClientID.add(1, ordering: .relaxed).oldValue
        self.proxy = ProxySettings.resolve(configuration.proxy, environment: ProxySettings.processEnvironment)
        let settings = ClientSettings(
            id: id, name: configuration.name, maxResponseBytes: configuration.maxResponseBytes,
            tls: configuration.tls, proxy: proxy, cookieSession: configuration.cookieSession,
            http2: configuration.httpVersion == .http2WhenOffered, maxRedirects: configuration.maxRedirects,
            userAgent: configuration.userAgent)
        guard transport.mailbox.post(.addClient(settings)).accepted else {
            closed.store(true, ordering: .relaxed)
            throw HTTPError(.closed, "the HTTP transport is closed")
        }
        if configuration.tls.insecure {
            report(
                HTTPReport(
                    severity: .critical, client: configuration.name,
                    message: "TLS verification is OFF (insecure: true): any server is accepted as the platform, "
                        + "and anyone on the network path can read and change this client's requests, credentials "
                        + "included. Use this in a lab only, never in production."))
        }
        if proxy.https != nil || proxy.http != nil {
            report(HTTPReport(severity: .info, client: configuration.name, message: "proxy: \(proxy)"))
        }
    }

    /// Sends one request and waits for the complete response, within the request's timeout (or
    /// the client's). Cancelling the calling task ends the transfer with ``HTTPError/Kind/cancelled``.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        if closed.load(ordering: .acquiring) { throw HTTPError(.closed, "the HTTP client is closed") }
        if Task.isCancelled { throw HTTPError(.cancelled, "the calling task was cancelled before sending") }
        let requestID = transport.nextRequestID.add(1, ordering: .relaxed).oldValue
        let ticket = RequestTicket()
        let mailbox = transport.mailbox
        let submitted = clock.now()
        // Capped so that deadline arithmetic on the monotonic clock cannot wrap around.
        let timeout = min(request.timeout ?? configuration.timeout, HTTPClient.longestTimeout)
        let connectTimeout = min(request.connectTimeout ?? configuration.connectTimeout, HTTPClient.longestTimeout)
        let clientID = id
        let result: Result<HTTPResponse, HTTPError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let submission = Submission(
                    id: requestID, clientID: clientID, request: request, submitted: submitted, timeout: timeout,
                    connectTimeout: connectTimeout, continuation: continuation)
                switch ticket.submit({ mailbox.post(.start(submission)).accepted }) {
                case .posted:
                    break
                case .refused:
                    continuation.resume(returning: .failure(HTTPError(.closed, "the HTTP transport is closed")))
                case .alreadyCancelled:
                    continuation.resume(
                        returning: .failure(HTTPError(.cancelled, "the calling task was cancelled before sending")))
                }
            }
        } onCancel: {
            ticket.cancel { mailbox.post(.cancel(requestID)) }
        }
        return try result.get()
    }

    /// The longest timeout honoured; a day is already far beyond any long poll.
    static let longestTimeout = Duration.seconds(86_400)

    /// Fails this client's requests in flight with ``HTTPError/Kind/closed``, forgets its cookies
    /// and frees its handles; stops the transport too if the client made it. Returns when done.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let done = DispatchSemaphore(value: 0)
        if transport.mailbox.post(.removeClient(id, done)).accepted {
            // On a hosted transport's own thread, waiting for the loop would wait for ourselves.
            transport.hosted?.runCommandsIfAllowed()
            done.wait()
        }
        if ownsTransport { transport.close() }
    }

    deinit { close() }
}

/// Orders a request's start and its cancellation: the cancellation handler can run before, during
/// or after the start is queued, on another thread.
final class RequestTicket: Sendable {
    enum Phase: Sendable { case created, posted, cancelled }
    enum SubmitOutcome { case posted, refused, alreadyCancelled }

    private let phase = Locked(Phase.created)

    /// Posts the start unless the task was cancelled first. Holding the ticket's lock across the
    /// post means a cancel that follows is queued behind the start, never ahead of it.
    func submit(_ post: () -> Bool) -> SubmitOutcome {
        phase.withLock { phase in
            guard phase == .created else { return .alreadyCancelled }
            guard post() else { return .refused }
            phase = .posted
            return .posted
        }
    }

    /// Queues the cancel if the start was queued; otherwise makes `submit` refuse to start.
    func cancel(_ post: () -> Void) {
        phase.withLock { phase in
            if phase == .posted { post() }
            phase = .cancelled
        }
    }
}
