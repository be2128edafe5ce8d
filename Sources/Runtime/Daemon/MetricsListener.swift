import MutewardenConfig
import MutewardenIngress
import MutewardenModel

/// The metrics endpoint: a second instance of the ingress's listener (libwebsockets' server side,
/// its own service thread), with one route, `GET <path>`, and no caller authentication: it is on
/// loopback unless the operator put it elsewhere, and it shows counts and configuration names only
/// (docs/threat_model.md).
///
/// The ingress refuses what a scraper never sends: another method (405), another path (404), a
/// request with a body (413, before any of it is read), an oversized head (closed). The scrape
/// itself runs on a task, reading the engine's published snapshot and atomic counters: it never
/// waits for, nor posts to, the engine thread.
final class MetricsListener: Sendable {
    let configuration: MetricsConfiguration
    private let server: IngressServer

    var port: Int { server.port }

    init(
        configuration: MetricsConfiguration, health: @escaping @Sendable () -> IngressHealth,
        report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void,
        scrape: @escaping @Sendable () -> [UInt8]
    ) throws {
        self.configuration = configuration
        var listener = configuration.listener
        listener.label = "metrics listener"
        let routes = IngressRouteTable()
        _ = try routes.register(
            IngressRoute(
                path: configuration.path, methods: ["GET"], owner: "metrics", authenticator: OpenAuthenticator(), maximumBodySize: 0
            ) { _ in
                IngressResponse(status: 200, contentType: DaemonMetrics.contentType, body: scrape())
            })
        server = try IngressServer(configuration: listener, routes: routes, health: health, report: report)
    }

    var summary: String { "\(configuration.listener.summary)\(configuration.path)" }

    /// Blocks until the listener's thread has ended: never call it on the engine thread.
    func stop() { server.stop() }
}

/// Lets every request through: the metrics route's protection is where it listens.
struct OpenAuthenticator: IngressAuthenticator {
    func authenticate(_ head: IngressRequestHead) -> IngressAuthentication { .decided(.accept(principal: nil)) }
}
