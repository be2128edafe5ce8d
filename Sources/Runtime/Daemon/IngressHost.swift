import MutewardenIngress
import MutewardenModel

/// The daemon's callback listener, as its feeds see it (`ProviderContext.ingress`): it starts
/// listening at the first route a feed registers, with the configuration's `ingress:` settings, so
/// a daemon whose feeds all connect out opens no port.
///
/// Its routes outlive any one listener: a reload that changes the settings restarts the listener
/// and the new one serves the same routes; a reload that keeps them keeps the listener, its
/// connections and its port.
final class IngressHost: IngressRouter {
    private struct State {
        /// What the configuration in force (or being built) asks for.
        var wanted: IngressConfiguration?
        var server: IngressServer?
    }

    let routes = IngressRouteTable()
    private let state: Locked<State>
    private let health: @Sendable () -> IngressHealth
    private let report: @Sendable (AuditSeverity, String, AuditFields) -> Void

    init(
        configuration: IngressConfiguration?, health: @escaping @Sendable () -> IngressHealth,
        report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void
    ) {
        state = Locked(State(wanted: configuration))
        self.health = health
        self.report = report
    }

    func register(_ route: IngressRoute) throws -> IngressRegistration {
        try startIfNeeded()
        return try routes.register(route)
    }

    /// The settings the next build registers against, before a reload builds its providers.
    func prepare(_ configuration: IngressConfiguration?) { state.withLock { $0.wanted = configuration } }

    /// After a reload: a listener whose settings changed is replaced (same routes), one no longer
    /// configured stops. Returns what happened, for the reload's record; nil when nothing did.
    func apply() -> String? {
        let (old, wanted) = state.withLock { state -> (IngressServer?, IngressConfiguration?) in
            guard let server = state.server, server.configuration != state.wanted else { return (nil, nil) }
            state.server = nil
            return (server, state.wanted)
        }
        guard let old else { return nil }
        // Stopping waits for the ingress thread, which never waits for this one.
        old.stop()
        guard wanted != nil else { return "callback ingress stopped: no 'ingress' section any more" }
        do {
            try startIfNeeded()
            return "callback ingress restarted with new settings"
        } catch {
            report(.error, "callback ingress could not restart: \(error); callbacks are refused until it can", [.result: "failed"])
            return "callback ingress failed to restart"
        }
    }

    /// The listener's counters, when it runs.
    var statistics: IngressStatistics? { state.withLock { $0.server?.statistics } }
    var port: Int? { state.withLock { $0.server?.port } }

    func stop() {
        let server = state.withLock { state in
            defer { state.server = nil }
            return state.server
        }
        server?.stop()
    }

    private func startIfNeeded() throws {
        // Under the lock: two feeds registering at once must get one listener. Binding takes
        // milliseconds, and only happens at a start or a reload.
        let started = try state.withLock { state -> IngressServer? in
            guard state.server == nil else { return nil }
            guard let configuration = state.wanted else {
                throw IngressError("a feed needs the callback ingress, and the configuration has no 'ingress' section")
            }
            let server = try IngressServer(configuration: configuration, routes: routes, health: health, report: report)
            state.server = server
            return server
        }
        // Outside the lock: a record is a write that may block.
        if let started {
            report(.notice, "callback ingress listening on \(started.configuration.summary) (port \(started.port))", [.result: "listening"])
        }
    }
}
