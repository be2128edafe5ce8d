import CLibWebSockets
import CMutewardenShims
import Dispatch
import Foundation
import MutewardenModel

/// Why the ingress could not start.
public struct IngressError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// The routes of an ingress, by path. Kept apart from the listener so that a listener restarted
/// with new settings at a reload serves the routes its feeds registered.
public final class IngressRouteTable: IngressRouter {
    private struct Entry {
        var route: IngressRoute
        var token: UInt64
    }

    private let entries = Locked<(routes: [String: Entry], next: UInt64)>(([:], 1))
    /// Paths the ingress answers itself.
    public let reserved: Set<String>

    public init(reserved: Set<String> = ["/healthz"]) { self.reserved = reserved }

    public func register(_ route: IngressRoute) throws -> IngressRegistration {
        guard route.path.hasPrefix("/") else { throw IngressError("a route's path must start with '/': \(route.path)") }
        guard !reserved.contains(route.path) else { throw IngressError("\(route.path) is answered by the ingress itself") }
        let token = entries.withLock { state -> UInt64 in
            let token = state.next
            state.next += 1
            state.routes[route.path] = Entry(route: route, token: token)
            return token
        }
        let path = route.path
        return IngressRegistration { [weak self] in
            self?.entries.withLock { state in
                if state.routes[path]?.token == token { state.routes[path] = nil }
            }
        }
    }

    func route(for path: String) -> IngressRoute? { entries.withLock { $0.routes[path]?.route } }

    public var paths: [String] { entries.withLock { $0.routes.keys.sorted() } }
}

/// An HTTP listener for platforms' callbacks, on libwebsockets' server side: one context and the
/// one thread that services it, every request authenticated from its head before its body is read
/// (docs/ingress.md).
///
/// libwebsockets is not thread-safe apart from `lws_cancel_service`, so other threads (decisions
/// of deferred authenticators, handlers' answers, stop) post to the service thread's mailbox,
/// whose wake-up is that call.
public final class IngressServer: Sendable {
    public let configuration: IngressConfiguration
    public let routes: IngressRouteTable
    public let statistics: IngressStatistics
    /// The port it listens on (the kernel's choice when the configuration said 0).
    public let port: Int
    private let inbox: Mailbox<IngressCommand>
    private let finished: DispatchSemaphore
    private let stopped = Locked(false)

    /// Starts listening; throws when the configuration is unusable or the address cannot be bound.
    public init(
        configuration: IngressConfiguration, routes: IngressRouteTable = IngressRouteTable(),
        health: @escaping @Sendable () -> IngressHealth = { IngressHealth(checks: []) },
        report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void
    ) throws {
        if let problem = configuration.problems.first { throw IngressError("ingress: \(problem)") }
        if case .tls(let certificate, let key) = configuration.security {
            for (what, path) in [("certificate", certificate), ("key", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw IngressError("ingress: cannot read the TLS \(what) \(path)")
            }
        }
        self.configuration = configuration
        self.routes = routes
        let statistics = IngressStatistics()
        self.statistics = statistics
        let inbox = Mailbox<IngressCommand>(waking: .underLock)
        self.inbox = inbox
        let finished = DispatchSemaphore(value: 0)
        self.finished = finished
        let started = Locked<Result<Int, IngressError>?>(nil)
        let startedSignal = DispatchSemaphore(value: 0)
        let environment = IngressLoop.Environment(
            configuration: configuration, routes: routes, statistics: statistics, health: health, report: report, inbox: inbox)
        let thread = Thread {
            mw_set_thread_name("mw-ingress")
            IngressLoop.run(environment) { result in
                started.withLock { $0 = result }
                startedSignal.signal()
            }
            finished.signal()
        }
        thread.start()
        // Binding takes milliseconds, and the ingress is useless without it.
        startedSignal.wait()
        switch started.withLock({ $0 })! {
        case .success(let port): self.port = port
        case .failure(let error):
            finished.wait()
            throw error
        }
    }

    /// Closes the listener and every connection, and stops the thread. Requests still with their
    /// handlers get no answer (their connections close). Blocks until the thread has ended: call
    /// it from a thread that may wait (never the engine's).
    public func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        inbox.post(.stop)
        finished.wait()
    }

    deinit { stop() }
}

/// Work handed to the ingress thread.
enum IngressCommand: Sendable {
    case decided(connection: UInt64, request: UInt64, IngressDecision)
    case respond(connection: UInt64, request: UInt64, IngressResponse)
    case stop
}

/// The context pointer, for `lws_cancel_service` only. `@unchecked Sendable` is sound because that
/// call is documented as safe from any thread, and it is made only as the inbox's wake-up: under
/// the inbox's lock (`MailboxWaking.underLock`) and never after `Mailbox.release()`, which the
/// service thread calls before `lws_context_destroy`.
struct IngressContextPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}
