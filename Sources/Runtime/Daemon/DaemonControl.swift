import Dispatch
import Foundation
import MutewardenConfig
import MutewardenControl
import MutewardenEngine
import MutewardenLogging
import MutewardenModel
import Synchronization

/// The daemon's side of `mutewarden status`: the control socket's requests answered from the
/// engine loop, which asks the engine through its inbox like any other input, so the engine is
/// never locked from another thread.
final class DaemonControl: Sendable {
    private struct State: Sendable {
        var started: MonotonicInstant
        var loadedAt: MonotonicInstant
        var generation = 1
        var stopping = false
        var server: ControlServer?
    }

    private let loop: EngineLoop
    private let clock: any MonotonicClock
    private let files: @Sendable () -> [String]
    private let digest: @Sendable () -> String?
    private let report: @Sendable (AuditSeverity, String, AuditFields) -> Void
    private let state: Locked<State>

    /// How long a request waits for the engine before it is answered with what the loop knows.
    static let engineTimeout: Duration = .milliseconds(500)

    init(
        loop: EngineLoop, clock: any MonotonicClock, files: @escaping @Sendable () -> [String],
        digest: @escaping @Sendable () -> String?, report: @escaping @Sendable (AuditSeverity, String, AuditFields) -> Void
    ) {
        self.loop = loop
        self.clock = clock
        self.files = files
        self.digest = digest
        self.report = report
        let now = clock.now()
        state = Locked(State(started: now, loadedAt: now))
    }

    func started(at instant: MonotonicInstant) { state.withLock { $0.started = instant } }
    func stopping() { state.withLock { $0.stopping = true } }
    func reloaded(generation: Int) {
        let now = clock.now()
        state.withLock { state in
            state.loadedAt = now
            state.generation = generation
        }
    }

    /// Opens the control socket at `path`; a failure is logged and the daemon runs on without it.
    func open(path: String) {
        do {
            let server = try ControlServer.start(
                ControlServerConfiguration(path: path),
                handler: { [self] request, reply in answer(request, reply: reply) },
                report: { [report] event in
                    switch event {
                    case .refused(let uid, let pid, let suppressed):
                        report(
                            .warning,
                            "control socket: refused a client of uid \(uid) (pid \(pid)): only root and the daemon's user may ask"
                                + (suppressed > 0 ? "; \(suppressed) more refused since the last such record" : ""),
                            [.result: "refused", .peer: "uid \(uid) pid \(pid)"])
                    case .rejected(let reason):
                        report(.notice, "control socket: \(reason)", [.result: "rejected"])
                    }
                })
            state.withLock { $0.server = server }
            report(.info, "control socket listening on \(path) (mode 0600)", [.result: "listening"])
        } catch {
            // Outside systemd the default directory (/run/mutewarden) is usually absent: that is
            // a daemon run by hand, not a fault.
            let severity: AuditSeverity = if case .directoryMissing = error { .notice } else { .error }
            report(severity, "\(error); `mutewarden status` cannot reach this daemon", [.result: "unavailable"])
        }
    }

    /// Closes the socket and removes its file.
    func close() {
        let server = state.withLock { state in
            defer { state.server = nil }
            return state.server
        }
        server?.stop()
    }

    private func answer(_ request: ControlRequest, reply: @escaping @Sendable (String) -> Void) {
        switch request.line.trimmingCharacters(in: .whitespaces) {
        case "status":
            status { status in
                let answer = ControlAnswer(status: status)
                guard let data = try? DaemonStatus.encoder().encode(answer) else {
                    reply(controlErrorAnswer(code: "internal", "the status could not be encoded"))
                    return
                }
                reply(String(decoding: data, as: UTF8.self))
            }
        case "ping":
            reply("{\"ok\":true,\"pong\":true}")
        default:
            // The request is not echoed: whatever a client sent is not ours to repeat.
            reply(controlErrorAnswer(code: "unknown-request", "unknown request; the requests are: status, ping"))
        }
    }

    /// The status, from the engine if it answers within ``engineTimeout``, else from what the
    /// loop last published. `reply` is called once, on the engine thread or a dispatch thread.
    func status(reply: @escaping @Sendable (DaemonStatus) -> Void) {
        let once = Atomic<Bool>(false)
        let build: @Sendable (EngineStatusSnapshot?) -> Void = { [self] snapshot in
            guard !once.exchange(true, ordering: .acquiringAndReleasing) else { return }
            reply(make(snapshot))
        }
        loop.post(.status(limit: DaemonStatus.listLimit, reply: { build($0) }))
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(Self.engineTimeout.milliseconds))) {
            build(nil)
        }
    }

    private func make(_ snapshot: EngineStatusSnapshot?) -> DaemonStatus {
        let now = clock.now()
        let state = state.withLock { $0 }
        return DaemonStatus.make(
            engine: snapshot, loop: loop.snapshot, activity: loop.activity.withLock { $0 }, queueDepth: loop.queueDepth,
            attemptsInFlight: loop.attemptsInFlightCount, failuresLastHour: loop.controlFailures(inLastHourAt: now),
            configuration: DaemonStatus.Configuration(
                files: files(), generation: state.generation, loadedAt: StatusClock(now: now, wallNow: wallClockNanoseconds()).wall(state.loadedAt),
                digest: digest()),
            stopping: state.stopping, started: state.started, clock: StatusClock(now: now, wallNow: wallClockNanoseconds()))
    }
}
