// Journal backend throughput: audit records per second that JournalLogHandler sustains into
// systemd-journald, and the handler's own cost without a journal.
//
// Usage: mutewarden-journal-bench [--records N] [--rounds N] [--sink journal|null|line]
//   journal  sends to /run/systemd/journal/socket: the journald that receives is the limit, as
//            sd_journal_sendv blocks while journald's socket buffer is full. bench/journal.sh
//            runs it against a private journald and checks that every record was stored.
//   null     sanitizes and encodes every record, then drops it: the handler's CPU cost alone.
//   line     the stderr backend's CPU cost alone: sanitizes and formats each line, then drops it.
// Build in release mode; the figure is meaningless in debug.
import Logging
import MutewardenLogging
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String, status: Int32) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

var records = 200_000
var rounds = 3
var sinkName = "journal"
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    guard let value = arguments.next() else { fail("\(flag) needs a value", status: 64) }
    switch flag {
    case "--records": records = Int(value) ?? 0
    case "--rounds": rounds = Int(value) ?? 0
    case "--sink" where ["journal", "null", "line"].contains(value): sinkName = value
    default: fail("usage: mutewarden-journal-bench [--records N] [--rounds N] [--sink journal|null|line]", status: 64)
    }
}
guard records > 0, rounds > 0 else { fail("--records and --rounds must be positive", status: 64) }

let sink: JournalSink
if sinkName == "journal" {
    let error = LogBackend.probeJournalSocket()
    guard error == 0 else {
        fail("no journal at \(LogBackend.journalSocketPath) (errno \(error)); see bench/journal.sh", status: 69)
    }
    sink = JournalSink(fallback: { _ in fail("the journal refused a record", status: 70) })
} else {
    sink = JournalSink(sender: { _, _ in 0 })
}
let logger =
    sinkName == "line"
    ? Logger(label: "mutewarden") { StderrLogHandler(label: $0, logLevel: .info, writer: { _ in }) }
    : Logger(label: "mutewarden") { JournalLogHandler(label: $0, logLevel: .info, sink: sink) }
let audit = AuditLogger(logger: logger)

/// What the engine writes most: a confirmed action, with the fields it really carries.
func record(_ index: Int) -> AuditRecord {
    AuditRecord(
        .actionConfirmed, .info,
        "mute-agent-during-card: mute of extension 3007 via gws confirmed after 143.250 ms",
        [
            .policy: "mute-agent-during-card", .feed: "gws", .call: "call-\(index)", .extension: "3007",
            .target: "gws", .action: "mute", .attempt: "1", .latencyMs: "143.250", .result: "confirmed",
            .idempotencyKey: "7d0c2a4e-5b1f-4c3a-9e8d-\(index)", .window: "1", .mode: "enforce",
        ])
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var best = 0.0
for round in 1...rounds {
    let start = now()
    for index in 0..<records { audit.emit(record(round * records + index)) }
    let seconds = now() - start
    let rate = Double(records) / seconds
    best = max(best, rate)
    print("round \(round): \(records) records in \(String(format3(seconds))) s = \(Int(rate)) records/s")
}
print("sink \(sinkName): best \(Int(best)) records/s (\(String(format3(1e6 / best))) µs per record), \(records * rounds) records sent")

func format3(_ value: Double) -> String {
    let scaled = Int((value * 1000).rounded())
    let fraction = String(scaled % 1000)
    return "\(scaled / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
