import CCurl
import CMutewardenShims
import Dispatch
import MutewardenModel
import Synchronization

/// libcurl's process-wide setup, run before the first handle exists. A global's initializer runs
/// exactly once, under the runtime's lock, so two transports created at once cannot race on it.
let curlGlobalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

/// The multi handle's address, for the one call other threads may make: `curl_multi_wakeup`,
/// which libcurl documents as safe from any thread. Why this is sound:
/// - other threads call it only as ``LoopMailbox``'s wake-up, which runs under the mailbox's lock
///   (``MailboxWaking/underLock``) and never after ``Mailbox/release()``;
/// - the loop's thread releases the mailbox, under that same lock, *before* `curl_multi_cleanup`,
///   so no wake-up can reach a freed handle;
/// - every other use of the pointer (perform, poll, add, remove) happens on the loop's thread.
struct MultiHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// A client's settings as the loop thread needs them, resolved on the creating thread.
struct ClientSettings: Sendable {
    let id: Int
    let name: String
    let maxResponseBytes: Int
    let tls: TLSOptions
    let proxy: ProxySettings
    let cookieSession: Bool
    let http2: Bool
    let maxRedirects: Int
    let userAgent: String
}

/// One `send`, on its way to the loop thread.
struct Submission: Sendable {
    let id: UInt64
    let clientID: Int
    let request: HTTPRequest
    let submitted: MonotonicInstant
    let timeout: Duration
    let connectTimeout: Duration
    let continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>
    /// What ``HostAdmission`` counts the request by (its budget, if any, and its host), worked
    /// out once, on the caller's thread.
    let host: String
    /// That key's limit; nil: the transport's per-host one.
    let limit: Int?

    init(
        id: UInt64, clientID: Int, request: HTTPRequest, submitted: MonotonicInstant, timeout: Duration,
        connectTimeout: Duration, continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>
    ) {
        self.id = id
        self.clientID = clientID
        self.request = request
        self.submitted = submitted
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.continuation = continuation
        let host = HostAdmission.host(of: request.url)
        if let budget = request.budget {
            self.host = budget.name + "\u{0}" + host
            limit = budget.maxConnections
        } else {
            self.host = host
            limit = nil
        }
    }
}

/// Everything that crosses into the loop thread.
enum LoopCommand: Sendable {
    case addClient(ClientSettings)
    /// Fails the client's transfers with `closed`, frees its handles, then signals.
    case removeClient(Int, DispatchSemaphore)
    case start(Submission)
    case cancel(UInt64)
    case stop
}

/// The queue other threads post into; the loop takes it in batches, swapping it with its own
/// buffer so that neither side reallocates in steady state.
///
/// Its wake-up is `curl_multi_wakeup`, which ends the loop's `curl_multi_poll`. It runs under the
/// mailbox's lock, so that ``CurlLoop/releaseMulti()`` can release the mailbox and then free the
/// handle (see ``MultiHandle``); `curl_multi_wakeup` writes to libcurl's wake-up socket and calls
/// nothing back. A hosted loop binds its mailbox to the host's thread: that thread steps the loop
/// before it polls again, so its posts wake nothing. Closing (the `stop` command) refuses posts
/// but keeps the wake-ups, which a hosted loop's host still needs for its own work until it ends.
typealias LoopMailbox = Mailbox<LoopCommand>

extension Mailbox where Element == LoopCommand {
    convenience init(multi: MultiHandle) {
        self.init(waking: .underLock) { _ = curl_multi_wakeup(multi.pointer) }
    }
}

/// Counters the loop updates and anyone may read.
final class TransportCounters: Sendable {
    let started = Atomic<Int>(0)
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let connectionsOpened = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
}

/// A client's state on the loop thread.
final class ClientState {
    let settings: ClientSettings
    /// The client's cookie jar, shared by its easy handles only. No lock callbacks: every handle
    /// that uses it lives on the loop thread.
    var share: UnsafeMutableRawPointer?
    /// Reset easy handles of this client, ready for reuse. Never lent to another client, so that
    /// nothing a handle keeps across `curl_easy_reset` (a share, a cookie engine) can leak.
    var spare: [UnsafeMutableRawPointer] = []

    init(settings: ClientSettings) { self.settings = settings }
}

/// One transfer in the multi handle. Touched only on the loop thread, including from libcurl's
/// callbacks, which run inside `curl_multi_perform`.
final class Transfer {
    let id: UInt64
    let client: ClientState
    let easy: UnsafeMutableRawPointer
    let submission: Submission
    let cap: Int
    let errorBuffer: UnsafeMutablePointer<CChar>
    var headerList: UnsafeMutablePointer<curl_slist>?
    var body: [UInt8] = []
    var headers: [HTTPHeader] = []
    var headerBytes = 0
    var abortedForSize = false
    var abortedForHeaders = false

    /// A single response's headers beyond this are not a control API's answer.
    static let headerCap = 256 << 10

    init(submission: Submission, client: ClientState, easy: UnsafeMutableRawPointer) {
        self.id = submission.id
        self.client = client
        self.easy = easy
        self.submission = submission
        self.cap = client.settings.maxResponseBytes
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(to: 0)
    }

    deinit {
        errorBuffer.deallocate()
        if let headerList { curl_slist_free_all(headerList) }
    }

    func receive(_ data: UnsafeRawBufferPointer) -> Bool {
        if body.count + data.count > cap {
            abortedForSize = true
            return false
        }
        if body.isEmpty && body.capacity == 0 {
            var announced: curl_off_t = -1
            _ = mw_curl_easy_getinfo_off_t(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced)
            if announced > 0 && announced <= cap { body.reserveCapacity(Int(announced)) }
        }
        body.append(contentsOf: data)
        return true
    }

    func receiveHeader(_ line: UnsafeRawBufferPointer) -> Bool {
        headerBytes += line.count
        if headerBytes > Transfer.headerCap {
            abortedForHeaders = true
            return false
        }
        // Each response (a 100 Continue, a redirect followed, the final one) starts with its
        // status line: keep only the last response's headers.
        if line.starts(with: "HTTP/".utf8) {
            headers.removeAll(keepingCapacity: true)
            return true
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return true }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[..<colon]), as: UTF8.self)
        var valueStart = colon + 1
        var valueEnd = line.endIndex
        while valueStart < valueEnd && (line[valueStart] == 0x20 || line[valueStart] == 0x09) { valueStart += 1 }
        while valueEnd > valueStart && [0x0D, 0x0A, 0x20, 0x09].contains(line[valueEnd - 1]) { valueEnd -= 1 }
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
        headers.append(HTTPHeader(name, value))
        return true
    }
}

/// Earliest-deadline-first (deadline, transfer id) pairs, on the shared ``MinHeap``. Entries of
/// finished transfers are left in place and skipped when they surface; ``compact(keeping:liveCount:)``
/// bounds them.
struct DeadlineHeap {
    private struct Entry: Comparable {
        var at: Int64
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { a.at != b.at ? a.at < b.at : a.id < b.id }
    }

    private var heap = MinHeap<Entry>()

    var count: Int { heap.count }
    var earliest: Int64? { heap.min?.at }

    mutating func push(at: Int64, id: UInt64) { heap.insert(Entry(at: at, id: id)) }

    mutating func popDue(now: Int64) -> UInt64? { heap.popMin(if: { $0.at <= now })?.id }

    /// Drops entries of finished transfers once they outnumber the live ones, so the heap stays
    /// proportional to what is in flight and not to the request rate times the timeout.
    mutating func compact(keeping live: (UInt64) -> Bool, liveCount: Int) {
        guard heap.count > 2 * liveCount + 64 else { return }
        heap.removeAll { !live($0.id) }
    }
}

/// The loop's state: the multi handle, the clients, the transfers. Built on any thread, then used
/// on the loop's thread only (its own, see ``HTTPTransport``, or a host's, see ``HTTPTransportHost``);
/// other threads reach it through ``LoopMailbox``.
final class CurlLoop {
    private let multi: UnsafeMutableRawPointer
    private let mailbox: LoopMailbox
    private let counters: TransportCounters
    private let clock = SystemClock()
    private var clients: [Int: ClientState] = [:]
    private var transfers: [UInt64: Transfer] = [:]
    private var deadlines = DeadlineHeap()
    private var admission: HostAdmission
    private var commands: [LoopCommand] = []
    /// Set by the `stop` command: every transfer has failed and every handle but the multi is freed.
    private(set) var stopped = false
    /// Called once, as the loop stops: what ``HTTPTransport/close()`` waits for.
    private let onStopped: () -> Void

    /// Our own deadline fires this long after libcurl's: libcurl's timer normally wins and says
    /// more, ours catches what libcurl does not time (a transfer queued for a free connection).
    private static let backstopGrace: Int64 = 100_000_000
    /// With less time than this left, a request that had to wait is failed rather than sent.
    private static let minimumTimeToSend: Duration = .milliseconds(100)

    init(
        multi: MultiHandle, mailbox: LoopMailbox, counters: TransportCounters, transfersPerHost: Int,
        onStopped: @escaping () -> Void = {}
    ) {
        self.multi = multi.pointer
        self.mailbox = mailbox
        self.counters = counters
        self.onStopped = onStopped
        admission = HostAdmission(limit: transfersPerHost)
        commands.reserveCapacity(64)
    }

    /// The loop of a transport with a thread of its own.
    func run() {
        while step() { poll(atMost: nil) }
        releaseMulti()
    }

    /// One round: queued commands, then whatever libcurl can do without waiting (requests out,
    /// answers in), then deadlines. Returns false once the loop has stopped.
    @discardableResult
    func step() -> Bool {
        handleCommands()
        guard !stopped else { return false }
        var running: Int32 = 0
        _ = curl_multi_perform(multi, &running)
        collectFinished()
        let now = clock.now().nanoseconds
        expireDeadlines(now: now)
        if admission.hasWaiting {
            startAdmitted()
            if admission.hasWaiting { expireWaiting(now: clock.now()) }
        }
        return true
    }

    /// Runs the queued commands; a `stop` among them stops the loop.
    func handleCommands() {
        guard !stopped else { return }
        mailbox.take(into: &commands)
        defer { commands.removeAll(keepingCapacity: true) }
        for (index, command) in commands.enumerated() {
            if case .stop = command {
                shutdown(leftOver: Array(commands[(index + 1)...]))
                return
            }
            handle(command)
        }
    }

    /// Waits for socket activity, a wake-up, libcurl's or our next deadline, or `limit`
    /// milliseconds, whichever comes first.
    func poll(atMost limit: Int64?) {
        var waitMilliseconds: Int64 = admission.hasWaiting ? 100 : 1000
        if let limit { waitMilliseconds = min(waitMilliseconds, max(0, limit)) }
        if let next = deadlines.earliest {
            let now = clock.now().nanoseconds
            waitMilliseconds = min(waitMilliseconds, max(0, (next - now + 999_999) / 1_000_000))
        }
        // libcurl shortens the wait to its own next timer, and `curl_multi_wakeup` ends it.
        _ = curl_multi_poll(multi, nil, 0, Int32(waitMilliseconds), nil)
    }

    /// Stops (if the `stop` command has not) and frees the multi handle: the loop's last call.
    func releaseMulti() {
        if !stopped { shutdown(leftOver: []) }
        // Once released, no wake-up can reach the handle; `shutdown` has settled every command.
        mailbox.release()
        _ = curl_multi_cleanup(multi)
    }

    private func handle(_ command: LoopCommand) {
        switch command {
        case .addClient(let settings):
            clients[settings.id] = ClientState(settings: settings)
        case .removeClient(let id, let done):
            if let client = clients.removeValue(forKey: id) {
                for transfer in transfers.values where transfer.client === client {
                    abandon(transfer, HTTPError(.closed, "the client was closed before the answer arrived"))
                }
                for submission in admission.removeAll(where: { $0.clientID == id }) {
                    submission.continuation.resume(
                        returning: .failure(HTTPError(.closed, "the client was closed before the request was sent")))
                }
                release(client)
            }
            done.signal()
        case .start(let submission):
            admit(submission)
        case .cancel(let id):
            if let transfer = transfers[id] {
                abandon(transfer, HTTPError(.cancelled, "the caller stopped waiting for the answer"))
            } else {
                for submission in admission.removeAll(where: { $0.id == id }) {
                    submission.continuation.resume(
                        returning: .failure(HTTPError(.cancelled, "the caller stopped waiting for the answer")))
                }
            }
        case .stop:
            break
        }
    }

    // MARK: - Starting a transfer

    /// Takes a submission in, or queues it behind its host's transfers: see ``HostAdmission``.
    private func admit(_ submission: Submission) {
        if admission.admit(submission) { start(submission) }
    }

    /// Starts what waited, as transfers finish.
    private func startAdmitted() {
        while let submission = admission.next() { start(submission) }
    }

    /// A waiting request whose time is up fails now, not when its turn would have come.
    private func expireWaiting(now: MonotonicInstant) {
        for (submission, ahead) in admission.removeAllCountingAhead(where: { now >= $0.submitted + $0.timeout }) {
            submission.continuation.resume(
                returning: .failure(.stillQueued(after: submission.timeout, ahead: ahead)))
        }
    }

    /// Starts a transfer for an admitted submission; one that fails to start gives its place back.
    private func start(_ submission: Submission) {
        if !launch(submission) { admission.release(submission.host) }
    }

    /// Adds the transfer to the multi handle, or answers the caller with why not (false).
    private func launch(_ submission: Submission) -> Bool {
        guard let client = clients[submission.clientID] else {
            submission.continuation.resume(returning: .failure(HTTPError(.closed, "the client is closed")))
            return false
        }
        if let problem = submission.request.validationProblem() {
            submission.continuation.resume(returning: .failure(HTTPError(.invalidRequest, problem)))
            return false
        }
        let now = clock.now()
        let deadline = submission.submitted + submission.timeout
        let remaining = deadline.since(now)
        // A request whose time all but ran out while it waited is not worth a connection: it
        // fails saying it was never sent, not with a timeout that hides the queue.
        let waited = now.since(submission.submitted) > .milliseconds(1)
        guard remaining > .zero, !(waited && remaining < Self.minimumTimeToSend) else {
            submission.continuation.resume(
                returning: .failure(.stillQueued(after: submission.timeout)))
            return false
        }
        guard let easy = client.spare.popLast() ?? curl_easy_init() else {
            submission.continuation.resume(
                returning: .failure(HTTPError(.transportFailure, "libcurl could not create a transfer (out of memory)")))
            return false
        }
        let transfer = Transfer(submission: submission, client: client, easy: easy)
        if let failure = configure(transfer, remaining: remaining) {
            recycle(easy, of: client)
            submission.continuation.resume(returning: .failure(failure))
            return false
        }
        let added = curl_multi_add_handle(multi, easy)
        guard added == CURLM_OK else {
            recycle(easy, of: client)
            submission.continuation.resume(
                returning: .failure(
                    HTTPError(.transportFailure, "libcurl refused the transfer: \(String(cString: curl_multi_strerror(added)))")))
            return false
        }
        transfers[transfer.id] = transfer
        deadlines.push(at: deadline.nanoseconds + CurlLoop.backstopGrace, id: transfer.id)
        counters.started.add(1, ordering: .relaxed)
        counters.inFlight.add(1, ordering: .relaxed)
        return true
    }

    /// Sets every option a transfer needs. Options are set on every request, not inherited from
    /// a reused handle, so a request never runs with another request's settings.
    private func configure(_ transfer: Transfer, remaining: Duration) -> HTTPError? {
        let easy = transfer.easy
        let settings = transfer.client.settings
        let request = transfer.submission.request
        var failure: (CURLcode, String)?
        func check(_ code: CURLcode, _ what: @autoclosure () -> String) {
            if code != CURLE_OK && failure == nil { failure = (code, what()) }
        }
        func setLong(_ option: CURLoption, _ value: Int, _ what: @autoclosure () -> String) {
            check(mw_curl_easy_setopt_long(easy, option, value), what())
        }
        func setString(_ option: CURLoption, _ value: String?, _ what: @autoclosure () -> String) {
            // libcurl copies string options (since 7.17), so the temporary C string may go.
            let code =
                value.map { $0.withCString { mw_curl_easy_setopt_ptr(easy, option, $0) } }
                ?? mw_curl_easy_setopt_ptr(easy, option, nil)
            check(code, what())
        }

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        check(mw_curl_easy_setopt_ptr(easy, CURLOPT_PRIVATE, UnsafeRawPointer(bitPattern: UInt(transfer.id))), "private")
        setString(CURLOPT_URL, request.url, "URL")
        // Threads and signals: DNS timeouts by SIGALRM would hit an arbitrary thread.
        setLong(CURLOPT_NOSIGNAL, 1, "no signals")
        setString(CURLOPT_PROTOCOLS_STR, "http,https", "protocols")
        check(mw_curl_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer), "error buffer")
        check(
            mw_curl_easy_setopt_write_function(easy) { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                // Any return other than `length` makes libcurl stop with CURLE_WRITE_ERROR: this is
                // the cap that also holds for chunked bodies, which announce no size.
                return transfer.receive(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
            }, "write function")
        check(mw_curl_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, context), "write data")
        check(
            mw_curl_easy_setopt_header_function(easy) { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                return transfer.receiveHeader(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
            }, "header function")
        check(mw_curl_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, context), "header data")

        let connectTimeout = min(transfer.submission.connectTimeout, remaining)
        setLong(CURLOPT_TIMEOUT_MS, max(1, Int(remaining.milliseconds.rounded(.up))), "timeout")
        setLong(CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(connectTimeout.milliseconds.rounded(.up))), "connect timeout")
        // Long polls sit idle for a minute: probe the connection so a dead peer is noticed.
        setLong(CURLOPT_TCP_KEEPALIVE, 1, "TCP keep-alive")
        setLong(CURLOPT_TCP_KEEPIDLE, 30, "TCP keep-alive idle")
        setLong(CURLOPT_TCP_KEEPINTVL, 10, "TCP keep-alive interval")

        if settings.http2 && isHTTPS(request.url) {
            setLong(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS, "HTTP version")
            // A burst waits for the first connection's TLS handshake to say (in ALPN) whether it
            // multiplexes, rather than opening one connection per request.
            setLong(CURLOPT_PIPEWAIT, 1, "pipewait")
        } else {
            // Plain http is HTTP/1.1 here, said outright: with a version-2 wish and PIPEWAIT,
            // libcurl would hold every new request to the host until a connection's first answer
            // shows it cannot multiplex, so one stalled request would stall them all.
            setLong(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1, "HTTP version")
            setLong(CURLOPT_PIPEWAIT, 0, "pipewait")
        }

        let tls = settings.tls
        setLong(CURLOPT_SSL_VERIFYPEER, tls.insecure ? 0 : 1, "TLS peer verification")
        setLong(CURLOPT_SSL_VERIFYHOST, tls.insecure ? 0 : 2, "TLS host verification")
        if let path = tls.caBundlePath { setString(CURLOPT_CAINFO, path, "CA bundle") }
        if let path = tls.clientCertificatePath { setString(CURLOPT_SSLCERT, path, "client certificate") }
        if let path = tls.clientKeyPath { setString(CURLOPT_SSLKEY, path, "client key") }
        if let password = tls.clientKeyPassword { setString(CURLOPT_KEYPASSWD, password, "client key passphrase") }

        // Always set: an empty proxy stops libcurl from reading the environment on its own, so
        // what ProxySettings resolved is exactly what happens.
        setString(CURLOPT_PROXY, settings.proxy.proxy(forURL: request.url) ?? "", "proxy")
        if let noProxy = settings.proxy.noProxy { setString(CURLOPT_NOPROXY, noProxy, "no-proxy list") }

        if settings.cookieSession {
            if transfer.client.share == nil {
                if let share = curl_share_init() {
                    _ = mw_curl_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_COOKIE.rawValue))
                    transfer.client.share = share
                }
            }
            guard let share = transfer.client.share else {
                return HTTPError(.transportFailure, "libcurl could not create the cookie session")
            }
            check(mw_curl_easy_setopt_ptr(easy, CURLOPT_SHARE, share), "cookie share")
            // An empty file name turns the cookie engine on without reading any file.
            setString(CURLOPT_COOKIEFILE, "", "cookie engine")
        }

        setString(CURLOPT_USERAGENT, settings.userAgent, "user agent")
        var list: UnsafeMutablePointer<curl_slist>?
        var hasContentType = false
        for header in request.headers {
            if Redaction.namesEqual(header.name, "content-type") { hasContentType = true }
            // "Name;" is libcurl's spelling of a header with an empty value.
            let line = header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)"
            list = curl_slist_append(list, line)
        }
        // No Expect: 100-continue (a 1 s stall on servers that ignore it), and no made-up
        // form-urlencoded Content-Type on a body the caller did not label.
        list = curl_slist_append(list, "Expect:")
        if !hasContentType { list = curl_slist_append(list, "Content-Type:") }
        transfer.headerList = list
        check(mw_curl_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, list), "headers")

        let method = request.method
        if method == .get {
            setLong(CURLOPT_HTTPGET, 1, "GET")
        } else if method == .head {
            setLong(CURLOPT_NOBODY, 1, "HEAD")
        } else {
            if method == .post || !request.body.isEmpty || method == .put || method == .patch {
                setLong(CURLOPT_POSTFIELDSIZE_LARGE, request.body.count, "body size")
                // Copied by libcurl, so the request's array need not outlive this call.
                let code = request.body.withUnsafeBytes { bytes in
                    "".withCString { empty in
                        mw_curl_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(empty))
                    }
                }
                check(code, "body")
            }
            if method != .post { setString(CURLOPT_CUSTOMREQUEST, method.rawValue, "method") }
        }

        let follows = method.mayFollowRedirects && settings.maxRedirects > 0
        setLong(CURLOPT_FOLLOWLOCATION, follows ? 1 : 0, "redirects")
        if follows {
            setLong(CURLOPT_MAXREDIRS, settings.maxRedirects, "redirect limit")
            // Never from https down to plain http.
            setString(CURLOPT_REDIR_PROTOCOLS_STR, isHTTPS(request.url) ? "https" : "http,https", "redirect protocols")
        }
        // Fails at once on an announced Content-Length; the write callback covers chunked bodies.
        check(mw_curl_easy_setopt_off_t(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(transfer.cap)), "size cap")

        guard let (code, what) = failure else { return nil }
        let text = String(cString: curl_easy_strerror(code))
        let kind: HTTPError.Kind =
            code == CURLE_UNKNOWN_OPTION || code == CURLE_NOT_BUILT_IN ? .invalidConfiguration : .invalidRequest
        return HTTPError(kind, "libcurl rejected the \(what) option: \(text)", curlCode: Int(code.rawValue))
    }

    // MARK: - Finishing

    private func collectFinished() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = mw_curl_msg_result(message)
            var context: UnsafeMutableRawPointer?
            _ = mw_curl_easy_getinfo_ptr(easy, CURLINFO_PRIVATE, &context)
            guard let id = context.map({ UInt64(UInt(bitPattern: $0)) }), let transfer = transfers[id] else {
                // Not ours: cannot happen, but a handle left in the multi would spin the loop.
                _ = curl_multi_remove_handle(multi, easy)
                continue
            }
            finish(transfer, code: code)
        }
    }

    private func finish(_ transfer: Transfer, code: CURLcode) {
        let easy = transfer.easy
        // Read everything before the handle is reset for reuse.
        var status = 0
        _ = mw_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        _ = mw_curl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        counters.connectionsOpened.add(connects, ordering: .relaxed)
        let result: Result<HTTPResponse, HTTPError>
        if code == CURLE_OK {
            var version = 0
            _ = mw_curl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
            let response = HTTPResponse(
                status: status, headers: transfer.headers, body: transfer.body, version: Self.version(version),
                connectionsOpened: connects, duration: clock.now().since(transfer.submission.submitted))
            result = .success(response)
        } else {
            var osErrno = 0
            _ = mw_curl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
            var message = String(cString: transfer.errorBuffer)
            if message.isEmpty { message = String(cString: curl_easy_strerror(code)) }
            if transfer.abortedForHeaders {
                result = .failure(
                    HTTPError(
                        .responseTooLarge, "the response headers exceeded \(Transfer.headerCap) bytes",
                        curlCode: Int(code.rawValue)))
            } else {
                result = .failure(
                    HTTPError.fromCurl(
                        code: Int(code.rawValue), detail: message, osErrno: Int32(truncatingIfNeeded: osErrno),
                        connected: !Self.failedBeforeConnecting(message), httpStatus: status,
                        abortedForSize: transfer.abortedForSize, cap: transfer.cap,
                        timeout: transfer.submission.timeout, connectTimeout: transfer.submission.connectTimeout))
            }
        }
        detach(transfer)
        switch result {
        case .success: counters.succeeded.add(1, ordering: .relaxed)
        case .failure: counters.failed.add(1, ordering: .relaxed)
        }
        transfer.submission.continuation.resume(returning: result)
    }

    /// libcurl's own words for a timeout that struck before a connection was ready.
    private static func failedBeforeConnecting(_ message: String) -> Bool {
        message.hasPrefix("Resolving timed out") || message.hasPrefix("Connection timed out")
            || message.hasPrefix("Failed to connect") || message.hasPrefix("SSL connection timeout")
    }

    private static func version(_ value: Int) -> HTTPVersion {
        switch value {
        case CURL_HTTP_VERSION_1_0: .http1_0
        case CURL_HTTP_VERSION_1_1: .http1_1
        case CURL_HTTP_VERSION_2_0: .http2
        case CURL_HTTP_VERSION_3: .http3
        default: .unknown
        }
    }

    /// Ends a transfer that has not finished (cancelled, timed out by us, client closed).
    private func abandon(_ transfer: Transfer, _ error: HTTPError) {
        detach(transfer)
        counters.failed.add(1, ordering: .relaxed)
        transfer.submission.continuation.resume(returning: .failure(error))
    }

    private func detach(_ transfer: Transfer) {
        _ = curl_multi_remove_handle(multi, transfer.easy)
        transfers[transfer.id] = nil
        admission.release(transfer.submission.host)
        counters.inFlight.subtract(1, ordering: .relaxed)
        recycle(transfer.easy, of: transfer.client)
    }

    private func recycle(_ easy: UnsafeMutableRawPointer, of client: ClientState) {
        if client.spare.count < 64 && clients[client.settings.id] === client {
            if client.settings.cookieSession {
                // libcurl 7.88 keeps every CURLOPT_COOKIEFILE name in a list that neither a
                // transfer nor curl_easy_reset frees, and walks it before each transfer: a reused
                // handle grew by 64 bytes a request (the soak's 280 MiB an hour, found with
                // heaptrack). NULL empties the list; the jar lives on in the share.
                _ = mw_curl_easy_setopt_ptr(easy, CURLOPT_COOKIEFILE, nil)
            }
            curl_easy_reset(easy)
            client.spare.append(easy)
        } else {
            curl_easy_cleanup(easy)
        }
    }

    private func expireDeadlines(now: Int64) {
        while let id = deadlines.popDue(now: now) {
            guard let transfer = transfers[id] else { continue }
            let timeout = transfer.submission.timeout
            abandon(
                transfer,
                HTTPError(.timeout, "no complete answer within \(timeout.compact) (deadline kept by the client)"))
        }
        deadlines.compact(keeping: { transfers[$0] != nil }, liveCount: transfers.count)
    }

    private func release(_ client: ClientState) {
        for easy in client.spare { curl_easy_cleanup(easy) }
        client.spare = []
        if let share = client.share {
            _ = curl_share_cleanup(share)
            client.share = nil
        }
    }

    private func shutdown(leftOver: [LoopCommand]) {
        for transfer in Array(transfers.values) {
            abandon(transfer, HTTPError(.closed, "the HTTP transport was closed before the answer arrived"))
        }
        for submission in admission.removeAll(where: { _ in true }) {
            submission.continuation.resume(
                returning: .failure(HTTPError(.closed, "the HTTP transport was closed before the request was sent")))
        }
        let allClients = Array(clients.values)
        clients = [:]
        for client in allClients { release(client) }
        // From here on, posts fail at once: nothing will ever read them.
        for command in leftOver + mailbox.close() {
            switch command {
            case .start(let submission):
                submission.continuation.resume(returning: .failure(HTTPError(.closed, "the HTTP transport is closed")))
            case .removeClient(_, let done):
                done.signal()
            case .addClient, .cancel, .stop:
                break
            }
        }
        stopped = true
        onStopped()
    }
}

extension HTTPError {
    /// A request whose time ran out before it was handed to libcurl.
    static func stillQueued(after timeout: Duration, ahead: Int? = nil) -> HTTPError {
        HTTPError(
            .timeout,
            "not sent: no answer within \(timeout.compact), still queued"
                + (ahead.map { " with \($0) request(s) of the same host and budget ahead of it" }
                    ?? " for a connection of its host and budget"))
    }
}
