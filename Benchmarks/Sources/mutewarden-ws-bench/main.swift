// WebSocket client throughput: text messages received per second from a local flooding server.
//
//   swift build -c release --product mutewarden-ws-bench
//   .build/release/mutewarden-ws-bench [--messages 1000000] [--size 1024] [--rounds 3]
//
// The server (Tests/MutewardenWebSocketTests/Peers/flood_server.py) writes pre-built frames with
// large sendall calls. The figure counts messages the consumer took from `events`: every byte went
// through lws's parser on the service thread, reassembly, UTF-8 validation and the AsyncStream.
// CPU time is reported per side so that it is clear which one bounds the figure.
import Foundation
import MutewardenModel
import MutewardenWebSocket

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var messages = 1_000_000
    var size = 1024
    var rounds = 3
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let argument = arguments.next() {
        guard let value = arguments.next().flatMap(Int.init), value > 0 else {
            FileHandle.standardError.write(Data("usage: mutewarden-ws-bench [--messages N] [--size BYTES] [--rounds N]\n".utf8))
            exit(2)
        }
        switch argument {
        case "--messages": options.messages = value
        case "--size": options.size = value
        case "--rounds": options.rounds = value
        default:
            FileHandle.standardError.write(Data("unknown option \(argument)\n".utf8))
            exit(2)
        }
    }
    return options
}

/// User + system CPU seconds of this process.
func processCPU() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// User + system CPU seconds of the lws service threads of this process (named mw-lws-*).
func serviceThreadCPU() -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    var total = 0.0
    for task in tasks {
        let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
        if name.hasPrefix("mw-lws-") { total += statCPU("/proc/self/task/\(task)/stat") }
    }
    return total
}

/// User + system CPU seconds of another process, from /proc.
func childCPU(_ pid: Int32) -> Double { statCPU("/proc/\(pid)/stat") }

func statCPU(_ path: String) -> Double {
    guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

let options = parseOptions()
let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Tests/MutewardenWebSocketTests/Peers/flood_server.py").standardized.path
let server = Process()
server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
server.arguments = [script, "--count", String(options.messages), "--size", String(options.size)]
let pipe = Pipe()
server.standardOutput = pipe
try server.run()
defer { server.terminate() }
var line = ""
while !line.contains("\n") {
    let data = pipe.fileHandleForReading.availableData
    if data.isEmpty { break }
    line += String(decoding: data, as: UTF8.self)
}
guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
    fatalError("the flood server did not start: \(line)")
}

print("mutewarden-ws-bench: \(options.messages) text messages of \(options.size) bytes per round, \(options.rounds) rounds")
var rates: [Double] = []
for round in 1...options.rounds {
    let configuration = WebSocketConfiguration(
        url: try WebSocketURL("ws://127.0.0.1:\(port)/"), pingInterval: nil, idleTimeout: nil,
        maximumMessageSize: max(1 << 20, options.size))
    let client = try WebSocketClient(name: "bench", configuration: configuration, report: { _ in })
    let clock = ContinuousClock()
    var received = 0
    var bytes = 0
    var started: ContinuousClock.Instant?
    var cpuStart = 0.0
    var serverStart = 0.0
    var serviceStart = 0.0
    client.start()
    for await event in client.events {
        guard case .text(let text) = event else { continue }
        if started == nil {
            started = clock.now
            cpuStart = processCPU()
            serverStart = childCPU(server.processIdentifier)
            serviceStart = serviceThreadCPU()
        }
        received += 1
        bytes += text.utf8.count
        if received == options.messages { break }
    }
    let elapsed = clock.now - started!
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let cpu = processCPU() - cpuStart
    let serverCPU = childCPU(server.processIdentifier) - serverStart
    let serviceCPU = serviceThreadCPU() - serviceStart
    await client.close()
    let rate = Double(received - 1) / seconds
    rates.append(rate)
    print(
        String(
            format: "round %d: %.0f messages/s, %.0f MB/s; CPU: lws service thread %.2f cores, whole client %.2f, server %.2f",
            round, rate, Double(bytes) / seconds / 1e6, serviceCPU / seconds, cpu / seconds, serverCPU / seconds))
}
rates.sort()
print(String(format: "median: %.0f messages/s", rates[rates.count / 2]))
