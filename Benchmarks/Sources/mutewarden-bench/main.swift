// Engine throughput benchmark: normalized events per second through the call tracker and the
// policies, with a fixed number of concurrent calls, plus heap allocations per event.
//
// Usage: mutewarden-bench [--calls N] [--events N] [--rounds N] [--capture-ratio R]
// Build in release mode; the figure is meaningless in debug.
import CAllocationCounter
import MutewardenEngine
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

struct Options {
    var calls = 10_000
    var events = 2_000_000
    var rounds = 5
    /// Share of calls that go through a card capture.
    var captureRatio = 0.25

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let text = iterator.next(), let number = Double(text), number >= 0 else {
                printError("usage: mutewarden-bench [--calls N] [--events N] [--rounds N] [--capture-ratio 0...1]")
                exit(64)
            }
            let value = Int(number)
            switch flag {
            case "--capture-ratio" where number <= 1: captureRatio = number
            case "--calls": calls = value
            case "--events": events = value
            case "--rounds": rounds = value
            default:
                printError("unknown option \(flag)")
                exit(64)
            }
        }
    }
}

/// A GWS-like stream. Every call rings, is answered, gets its attached data updated many times
/// (routing, CRM lookups, wrap-up), is put on hold once, and ends: about 20 events. A share of the
/// calls (`captureRatio`) also goes through a card capture (start, a CVV step, stop), which opens
/// and closes windows and sends actions. A new call takes the place of each call that ends.
func makeEvents(calls: Int, count: Int, captureRatio: Double) -> [CallUpdate] {
    func data(_ step: Int, _ extra: [String: String] = [:]) -> [String: String] {
        var attributes = ["Queue": "billing", "CustomerTier": "gold", "CRMStep": String(step)]
        attributes.merge(extra) { $1 }
        return attributes
    }
    var plain: [(CallState, [String: String]?)] = [(.ringing, [:]), (.established, data(0))]
    for step in 1...8 { plain.append((.established, data(step))) }
    plain += [(.held, nil), (.established, nil)]
    for step in 9...14 { plain.append((.established, data(step))) }
    plain.append((.released, nil))
    var capture = Array(plain.prefix(6))
    capture += [
        (.established, data(5, ["PCI_STAGE": "CARD"])),
        (.established, data(6, ["PCI_STAGE": "CARD", "Step": "cvv"])),
        (.established, data(7, ["PCI_STAGE": "CARD"])),
        (.established, data(8, ["PCI_STAGE": "DONE"])),
    ]
    capture += plain.suffix(from: 10)
    let lifecycles = [plain, capture]

    var rng = SplitMix64(seed: 7)
    func pickLifecycle() -> Int { Double(rng.next() % 10_000) / 10_000 < captureRatio ? 1 : 0 }
    var generation = [Int](repeating: 0, count: calls)
    var lifecycle = (0..<calls).map { _ in pickLifecycle() }
    // Stagger the calls so that every stage is in flight at once.
    var position = (0..<calls).map { $0 % lifecycles[0].count }
    var ids = (0..<calls).map { "call-\($0)-0" }
    let extensions = (0..<calls).map { String(3000 + $0) }
    var events: [CallUpdate] = []
    events.reserveCapacity(count)
    while events.count < count {
        let call = Int(rng.next() % UInt64(calls))
        let steps = lifecycles[lifecycle[call]]
        let (state, attributes) = steps[min(position[call], steps.count - 1)]
        events.append(
            CallUpdate(
                feed: "bench", ids: CallIdentifiers(primary: ids[call]), agentExtension: extensions[call],
                direction: .inbound, state: state, attributes: attributes))
        position[call] += 1
        if position[call] >= steps.count {
            position[call] = 0
            generation[call] += 1
            lifecycle[call] = pickLifecycle()
            ids[call] = "call-\(call)-\(generation[call])"
        }
    }
    return events
}

func makeEngine() -> Engine {
    let policies = [
        PolicyDefinition(
            name: "pause-during-card", feeds: ["bench"],
            start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
            stop: .any([.attributeIn(key: "PCI_STAGE", values: ["DONE", "ABORTED"]), .state([.released])]),
            actions: [ActionSpec(kind: .pauseRecording, target: "recorder")]),
        PolicyDefinition(
            name: "mute-during-cvv", feeds: ["bench"],
            start: .all([.attributeEquals(key: "Step", value: "cvv"), .attributePresent(key: "PCI_STAGE")]),
            actions: [ActionSpec(kind: .mute, target: "recorder")]),
    ]
    return try! Engine(
        configuration: EngineConfiguration(
            policies: policies, targets: [TargetDescriptor(name: "recorder", confirmsByEvent: false)],
            limits: TrackerLimits(maxCalls: 100_000)),
        options: EngineOptions(randomSeed: 1))
}

func formatted(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}

func monotonicNanoseconds() -> Int64 { SystemClock().now().nanoseconds }

let options = Options(arguments: CommandLine.arguments)
let events = makeEvents(calls: options.calls, count: options.events, captureRatio: options.captureRatio)
print(
    "mutewarden-bench: \(options.calls) concurrent calls, \(events.count) events per round, \(options.rounds) rounds, capture ratio \(options.captureRatio)"
)

var best = 0.0
var actions = 0
var records = 0
var allocationsPerEvent = 0.0
for round in 1...options.rounds {
    let engine = makeEngine()
    // Warm-up: fill the tracker to its steady state, outside the measurement.
    var now = MonotonicInstant(nanoseconds: 1_000_000_000)
    for update in events.prefix(options.calls * 3) { engine.ingest(update, at: now) }
    _ = engine.takeEffects()

    actions = 0
    records = 0
    let allocationsBefore = mw_allocation_count()
    let start = monotonicNanoseconds()
    // Borrowed from the buffer: the benchmark must not charge the engine for copying events.
    events.withUnsafeBufferPointer { buffer in
        for index in buffer.indices {
            if index & 1023 == 0 { now = now + .milliseconds(1) }
            engine.ingest(buffer[index], at: now)
            if engine.hasEffects {
                for effect in engine.takeEffects() {
                    switch effect {
                    case .send(_, let ticket):
                        actions += 1
                        engine.attemptFinished(ticket, result: .accepted, at: now)
                    case .audit:
                        records += 1
                    }
                }
                // Answers produce effects too (confirmations); they are part of the work.
                records += engine.takeEffects().count
            }
        }
    }
    let elapsed = Double(monotonicNanoseconds() - start) / 1e9
    let allocations = mw_allocation_count() - allocationsBefore
    let rate = Double(events.count) / elapsed
    allocationsPerEvent = Double(allocations) / Double(events.count)
    best = max(best, rate)
    let stats = engine.statistics
    // The state image the daemon takes once a second on the engine thread: its time is a stall
    // for every event that arrives meanwhile. The first builds the entry of every window that
    // changed during the round (all those open, here) and drops those of windows since closed;
    // the next ones find nothing changed, as the daemon's do once its idle moments have built the
    // entries ahead.
    let wallNow: Int64 = 1_800_000_000_000_000_000
    let buildStart = monotonicNanoseconds()
    let windowsBuilt = engine.stateImage(now: now, wallNow: wallNow).windows.count
    let buildMicroseconds = Double(monotonicNanoseconds() - buildStart) / 1_000
    let takeStart = monotonicNanoseconds()
    for _ in 0..<20 { _ = engine.stateImage(now: now, wallNow: wallNow) }
    let takeMicroseconds = Double(monotonicNanoseconds() - takeStart) / 20_000
    print(
        "round \(round): \(Int(rate)) events/s, \(formatted(allocationsPerEvent)) allocations/event, "
            + "\(actions) actions, \(records) audit records, \(stats.trackedCalls) calls tracked, "
            + "\(stats.openWindows) windows open; state image \(formatted(buildMicroseconds)) µs after the round "
            + "(\(windowsBuilt) entries built, those of windows closed since dropped), "
            + "\(formatted(takeMicroseconds)) µs with nothing changed")
}
print("best: \(Int(best)) events/s on one core (goal: 1000000)")
print(
    "{\"benchmark\":\"engine\",\"calls\":\(options.calls),\"capture_ratio\":\(options.captureRatio),\"events\":\(events.count),\"best_events_per_second\":\(Int(best)),"
        + "\"allocations_per_event\":\(formatted(allocationsPerEvent))}")
