// Throughput and latency of MutewardenHTTP: POSTs on loopback keep-alive, K in flight.
//
//   mutewarden-http-bench --url http://127.0.0.1:PORT/ [--requests N] [--in-flight K] [--body BYTES]
//
// Run it against `mutewarden-http-cbench serve` (see docs/transports.md): the same requests as
// `mutewarden-http-cbench client`, so the two figures differ by the Swift layer only.

import Glibc
import MutewardenHTTP
import MutewardenModel
import Synchronization

struct Options {
    var url = ""
    var requests = 100_000
    var inFlight = 1
    var body = 64
}

func parse() -> Options? {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let flag = arguments.popFirst() {
        guard let value = arguments.popFirst() else { return nil }
        switch flag {
        case "--url": options.url = value
        case "--requests": options.requests = Int(value) ?? 0
        case "--in-flight": options.inFlight = Int(value) ?? 0
        case "--body": options.body = Int(value) ?? -1
        default: return nil
        }
    }
    return options.url.isEmpty || options.requests <= 0 || options.inFlight <= 0 || options.body < 0 ? nil : options
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// Sends `count` requests with `inFlight` workers; returns each request's latency in nanoseconds.
func run(_ client: HTTPClient, _ request: HTTPRequest, count: Int, inFlight: Int) async -> (latencies: [Int64], failures: Int) {
    let next = Counter()
    let clock = SystemClock()
    return await withTaskGroup(of: ([Int64], Int).self) { group in
        for _ in 0..<inFlight {
            group.addTask {
                var latencies: [Int64] = []
                latencies.reserveCapacity(count / inFlight + 1)
                var failures = 0
                while next.value.add(1, ordering: .relaxed).oldValue < count {
                    let started = clock.now()
                    do {
                        let response = try await client.send(request)
                        if response.status != 200 { failures += 1 }
                    } catch {
                        failures += 1
                    }
                    latencies.append(clock.now().nanoseconds - started.nanoseconds)
                }
                return (latencies, failures)
            }
        }
        var all: [Int64] = []
        var failures = 0
        for await (latencies, failed) in group {
            all += latencies
            failures += failed
        }
        return (all, failures)
    }
}

guard let options = parse() else {
    print("usage: mutewarden-http-bench --url URL [--requests N] [--in-flight K] [--body BYTES]")
    exit(2)
}
// As many connections as requests in flight, like the C client: HTTP/1.1 has one exchange per
// connection, and the default per-host cap (16) would queue the rest.
let transport = try HTTPTransport(
    options: .init(maxConnectionsPerHost: max(16, options.inFlight), maxConnections: max(64, options.inFlight)))
let client = try HTTPClient(
    configuration: HTTPClientConfiguration(name: "bench", proxy: .none, httpVersion: .http1_1), transport: transport)
let request = HTTPRequest(
    .post, options.url, headers: [HTTPHeader("Content-Type", "application/json")],
    body: Array(repeating: UInt8(ascii: "x"), count: options.body))

_ = await run(client, request, count: min(options.requests, 2000), inFlight: options.inFlight)  // warm-up
let before = transport.statistics
let clock = SystemClock()
let cpuBefore = cpuSeconds()
let started = clock.now()
let (latencies, failures) = await run(client, request, count: options.requests, inFlight: options.inFlight)
let elapsed = clock.now().since(started).seconds
let cpu = cpuSeconds() - cpuBefore
let sorted = latencies.sorted()
let opened = transport.statistics.connectionsOpened - before.connectionsOpened
/// One decimal place, without Foundation's formatter.
func tenths(_ value: Double) -> String {
    let scaled = Int((value * 10).rounded())
    return "\(scaled / 10).\(scaled % 10)"
}

print(
    "swift/MutewardenHTTP: \(options.requests) requests, \(options.inFlight) in flight: "
        + "\(Int(Double(options.requests) / elapsed)) req/s, "
        + "p50 \(tenths(Double(sorted[sorted.count / 2]) / 1e3)) us, "
        + "p99 \(tenths(Double(sorted[sorted.count * 99 / 100]) / 1e3)) us, "
        + "client CPU \(tenths(cpu)) s (\(tenths(cpu / elapsed)) cores), \(opened) connections, \(failures) failures")
client.close()
transport.close()
exit(failures == 0 ? 0 : 1)
