import MutewardenJSON
import MutewardenModel
import MutewardenProviderKit
import MutewardenSupervisor

/// The `voicenter` feed: a login to the Real-Time API, then one socket.io connection at a time to
/// the monitor servers it names (then the configured ones), driven by ``VoicenterFeedCore``.
///
/// - The token is refreshed ahead of its expiry while connected, and a refused token (at connect,
///   or in a `keepaliveResponse`) means a new login before the next connection.
/// - Every connection that ends, or cannot be made, moves to the next server, after the
///   supervisor's backoff.
public final class VoicenterFeed: CallFeed {
    public let name: String
    let settings: VoicenterFeedSettings
    let login: VoicenterLoginClient
    let context: ProviderContext
    let clock: any MonotonicClock
    let wallClock: @Sendable () -> Int64

    /// The login in use: replaced by a refresh, dropped when the server refuses its token.
    private let current = Locked<VoicenterSocketLogin?>(nil)
    /// Which server of the list the next connection tries.
    private let serverIndex = Locked(0)

    init(
        name: String, settings: VoicenterFeedSettings, login: VoicenterLoginClient, context: ProviderContext,
        clock: any MonotonicClock = SystemClock(), wallClock: @escaping @Sendable () -> Int64 = wallClockNanoseconds
    ) {
        self.name = name
        self.settings = settings
        self.login = login
        self.context = context
        self.clock = clock
        self.wallClock = wallClock
    }

    public func run(delivering sink: any CallUpdateSink) async throws {
        let reporter = FeedStatusReporter(feed: name, sink: sink)
        let core = Locked(VoicenterFeedCore(configuration: settings.coreConfiguration(feed: name)))
        let supervisor = ConnectionSupervisor(name: "voicenter \(name)", policy: settings.reconnect) { status in
            reporter.report(status)
        }
        await supervisor.run { [self] handle in
            try await connection(handle, core: core, sink: sink)
        }
    }

    // MARK: - One connection

    /// Why a connection ended, for the supervisor's `feed.down` record.
    struct Ended: Error, CustomStringConvertible {
        var description: String
    }

    private func connection(_ handle: ConnectionHandle, core: Locked<VoicenterFeedCore>, sink: any CallUpdateSink) async throws {
        let session = try await usableLogin()
        let urls = session.socketURLs(configured: settings.servers)
        guard !urls.isEmpty else {
            throw Ended(description: "no monitor server to connect to: the login named none and 'servers' is empty")
        }
        let url = urls[serverIndex.withLock { $0 % urls.count }]
        // Whatever happens to this connection, the next one goes to the next server, as the
        // vendor's SDK does on a disconnect.
        defer { serverIndex.withLock { $0 = ($0 + 1) % max(urls.count, 1) } }
        let socket: any VoicenterSocketSession
        do {
            socket = try await settings.connector.connector.connect(
                VoicenterSocketRequest(
                    serverURL: url, token: session.token, version: settings.socketIOVersion, tls: settings.tls,
                    connectTimeout: settings.connectTimeout),
                report: { [context, name] message in
                    context.report(.warning, "feed \(name): \(message)", [.feed: name, .result: "socket.io"])
                })
        } catch let error as VoicenterSocketError {
            if case .tokenRefused = error { current.withLock { $0 = nil } }
            throw Ended(description: "\(url): \(error)")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Ended(description: "\(url): \(error)")
        }
        let ending = Locked<String?>(nil)
        let connected = core.withLock { $0.connected(at: clock.now()) }
        _ = perform(connected, socket: socket, handle: handle, sink: sink, ending: ending)
        // Several times a keepalive period, so that the keepalive and the silence limit are
        // kept to within a fraction of their length.
        let tick = min(.seconds(1), settings.keepalive / 4)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    do { try await Task.sleep(for: tick) } catch { return }
                    let outputs = core.withLock { $0.tick(at: clock.now()) }
                    if !perform(outputs, socket: socket, handle: handle, sink: sink, ending: ending) {
                        await socket.close()
                        return
                    }
                }
            }
            group.addTask { [self] in await refreshWhileConnected() }
            do {
                reading: while let batch = try await socket.nextBatch() {
                    var outputs: [VoicenterFeedCore.Output] = []
                    let now = clock.now()
                    core.withLock { core in
                        for message in batch { outputs += core.received(message.name, message.node, at: now) }
                    }
                    if !perform(outputs, socket: socket, handle: handle, sink: sink, ending: ending) { break reading }
                    // An overload waits at the server: the socket is not read until there is room.
                    await sink.awaitCapacity()
                }
            } catch {
                ending.withLock { $0 = $0 ?? "\(error)" }
            }
            group.cancelAll()
        }
        await socket.close()
        core.withLock { $0.disconnected() }
        if Task.isCancelled { throw CancellationError() }
        throw Ended(description: "\(url): " + (ending.withLock { $0 } ?? "the server closed the connection"))
    }

    /// Carries out the core's outputs; false once the connection is to end.
    private func perform(
        _ outputs: [VoicenterFeedCore.Output], socket: any VoicenterSocketSession, handle: ConnectionHandle,
        sink: any CallUpdateSink, ending: Locked<String?>
    ) -> Bool {
        for output in outputs {
            switch output {
            case .deliver(let updates):
                sink.deliver(contentsOf: updates)
            case .resync(let calls):
                sink.resync(feed: name, current: calls)
            case .ready:
                handle.markUp()
            case .keepalive:
                guard let token = current.withLock({ $0?.token }) else { continue }
                // A failed emit means the connection is gone: the reader sees its end.
                try? socket.emit("keepalive", .string(token.reveal()))
            case .emit(let event, let data):
                try? socket.emit(event, data)
            case .report(let severity, let message, let fields):
                context.report(severity, message, fields)
            case .reconnect(let reason, let newLogin):
                if newLogin { current.withLock { $0 = nil } }
                ending.withLock { $0 = $0 ?? reason + (newLogin ? "; logging in again" : "") }
                return false
            }
        }
        return true
    }

    // MARK: - Login

    /// A login whose token is still good: the current one, a refresh of it, or a new login.
    func usableLogin() async throws(VoicenterLoginError) -> VoicenterSocketLogin {
        let now = wallClock()
        if let session = current.withLock({ $0 }) {
            // A second of margin: a token about to expire would be refused mid-handshake.
            if session.isUsable(at: now + 1_000_000_000) { return session }
            if session.canRefresh(at: now), let refreshed = try? await login.refresh(session) {
                current.withLock { $0 = refreshed }
                return refreshed
            }
        }
        let fresh = try await login.login()
        current.withLock { $0 = fresh }
        serverIndex.withLock { $0 = 0 }
        context.report(.info, "feed \(name): logged in to \(login.loginURL) (\(fresh))", [.feed: name, .result: "logged-in"])
        return fresh
    }

    /// Refreshes the token ahead of its expiry for as long as the connection lasts, so that the
    /// keepalive and the next connection carry a live token. A failed refresh falls back to a
    /// new login, and is tried again within the token's remaining life.
    private func refreshWhileConnected() async {
        while !Task.isCancelled {
            guard let session = current.withLock({ $0 }), let refreshAt = session.refreshAt else { return }
            let wait = refreshAt - wallClock()
            if wait > 0 {
                // In steps of at most a minute, so that a wall-clock step is followed.
                do { try await Task.sleep(for: .nanoseconds(min(wait, 60_000_000_000))) } catch { return }
                continue
            }
            do {
                let renewed = try await renew(session)
                // A login that a refused token dropped meanwhile is not brought back.
                let kept = current.withLock { now in
                    guard now == session else { return false }
                    now = renewed
                    return true
                }
                if kept {
                    context.report(
                        .info, "feed \(name): socket token renewed (\(renewed))", [.feed: name, .result: "token-renewed"])
                }
            } catch {
                let left = (session.tokenExpiry ?? 0) - wallClock()
                context.report(
                    .warning,
                    "feed \(name): the socket token could not be renewed: \(error); "
                        + (left > 0 ? "trying again before it expires" : "it has expired: the next connection logs in again"),
                    [.feed: name, .result: "token-renewal-failed"])
                guard left > 0 else { return }
                do { try await Task.sleep(for: .nanoseconds(min(max(left / 4, 1_000_000_000), 30_000_000_000))) } catch { return }
            }
        }
    }

    /// A refresh, or a new login when the refresh token is refused or spent.
    private func renew(_ session: VoicenterSocketLogin) async throws(VoicenterLoginError) -> VoicenterSocketLogin {
        if session.canRefresh(at: wallClock()) {
            do {
                return try await login.refresh(session)
            } catch {
                context.report(
                    .notice, "feed \(name): token refresh failed (\(error)); logging in again", [.feed: name, .result: "refresh-failed"])
            }
        }
        return try await login.login()
    }
}
