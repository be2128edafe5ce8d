// The callback ingress under load: keep-alive POSTs with a bearer token, authenticated and handed
// to a handler that answers 200 at once. The ingress runs here (pin it to one core); the load
// comes from `mutewarden-http-cbench client --header 'Authorization: Bearer …'` on another.
//
//   mutewarden-ingress-bench [--seconds S]
//
// Prints "port N" once listening, then, when the time is up or SIGTERM arrives, the requests its
// handler got and the CPU this process spent on them. A later step swaps the bearer token for JWT
// validation and measures the difference with the same client.

import Dispatch
import Glibc
import MutewardenIngress
import MutewardenModel
import Synchronization

let token = "bench-token-0123456789abcdef"
var seconds = 600.0
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst(), let value = arguments.popFirst() {
    if flag == "--seconds", let parsed = Double(value) { seconds = parsed }
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// One line straight to stdout: the driver reads the port while this runs, and stdout is a
/// C global that Swift 6 will not let this code flush.
func line(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

let handled = Atomic<Int>(0)
let server = try IngressServer(
    configuration: IngressConfiguration(address: "127.0.0.1", port: 0, security: .plain(behindProxy: false)),
    report: { _, message, _ in line("record: \(message)") })
_ = try server.routes.register(
    IngressRoute(path: "/callbacks", owner: "bench", authenticator: BearerTokenAuthenticator(token: token)) { request in
        handled.add(1, ordering: .relaxed)
        return IngressResponse(status: 200, json: "{}")
    })
line("port \(server.port)")
line("header Authorization: Bearer \(token)")
let cpuAtStart = cpuSeconds()
let clock = ContinuousClock()
let started = clock.now
// Ends at the deadline, or when the driver sends SIGTERM after its client is done.
let done = DispatchSemaphore(value: 0)
signal(SIGTERM, SIG_IGN)
let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
terminate.setEventHandler { @Sendable in done.signal() }
terminate.resume()
_ = done.wait(timeout: .now() + seconds)
let elapsed = (clock.now - started)
let cpu = cpuSeconds() - cpuAtStart
let count = handled.load(ordering: .relaxed)
line(
    "ingress: \(count) callbacks handled, \(String(format: "%.2f", cpu)) s CPU "
        + "(\(String(format: "%.1f", count > 0 ? cpu * 1e6 / Double(count) : 0)) µs each), "
        + "\(server.statistics[.unauthorized]) refused, \(String(format: "%.1f", Double(elapsed.components.seconds))) s open")
server.stop()
