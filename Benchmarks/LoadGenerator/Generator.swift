import Foundation
import Synchronization

/// The pacing thread: it owns the simulated calls, renders events at the target rate and hands
/// them to the service thread, and turns accepted operations into GWS's confirming events.
///
/// Confirmations count towards the rate, since they are events the daemon has to read like any
/// other; traffic fills what is left of each tick's budget.
final class Generator: Sendable {
    enum Phase: Int, Sendable {
        case waiting = 0, running, confirmationsOnly, stopped
    }

    struct Statistics: Sendable {
        var events = 0
        var confirmations = 0
        var ignoredConfirmations = 0
        /// Events the generator could not render on time (it fell behind by more than a tick cap).
        var shortfall = 0
    }

    private let rate: Double
    private let outbox: Outbox
    private let confirmations: ConfirmationQueue
    private let phase = Atomic<Int>(Phase.waiting.rawValue)
    private let statistics = Mutex(Statistics())
    private let finished = Mutex(false)

    init(rate: Double, outbox: Outbox, confirmations: ConfirmationQueue) {
        self.rate = rate
        self.outbox = outbox
        self.confirmations = confirmations
    }

    func set(_ phase: Phase) { self.phase.store(phase.rawValue, ordering: .releasing) }
    var currentStatistics: Statistics { statistics.withLock { $0 } }

    func start(traffic: Traffic) -> Thread {
        let thread = Thread { [self] in
            var traffic = traffic
            run(&traffic)
        }
        thread.name = "loadgen-pacer"
        thread.start()
        return thread
    }

    var isFinished: Bool { finished.withLock { $0 } }

    private func run(_ traffic: inout Traffic) {
        let tick: Int64 = 1_000_000
        // After a stall, catch up by at most 10 ms of traffic per tick rather than in one burst.
        let capPerTick = max(1, Int(rate / 100))
        var started: Int64?
        var sent = 0
        var lastWake = monotonicNanoseconds()
        while true {
            let tickStart = monotonicNanoseconds()
            let phase = Phase(rawValue: phase.load(ordering: .acquiring)) ?? .stopped
            if phase == .stopped { break }
            var out = ByteWriter(capacity: 64 * 1024)
            var count = 0
            var edges: [WindowEdge] = []
            var confirmed = 0
            var ignored = 0
            for item in confirmations.drain() {
                if count > 0 { out.byte(",") }
                if traffic.confirm(callID: item.callID, operation: item.operation, into: &out) {
                    count += 1
                    confirmed += 1
                } else {
                    if count > 0 { out.bytes.removeLast() }
                    ignored += 1
                }
            }
            var shortfall = 0
            if phase == .running {
                if started == nil { started = tickStart }
                let due = Int(Double(tickStart - started!) * rate / 1e9) - sent - count
                let budget = min(due, capPerTick)
                if due > capPerTick { shortfall = due - capPerTick }
                if budget > 0 {
                    for _ in 0..<budget {
                        if count > 0 { out.byte(",") }
                        if let edge = traffic.nextEvent(into: &out) { edges.append(edge) }
                        count += 1
                    }
                }
                if shortfall > 0 { sent += shortfall }
            }
            sent += count
            if count > 0 {
                outbox.push(EventChunk(bytes: out.bytes, count: count, edges: edges, generatedAt: tickStart))
                lastWake = tickStart
            } else if tickStart - lastWake > 100_000_000 {
                // The service thread checks its held polls' deadlines when it wakes.
                outbox.wake()
                lastWake = tickStart
            }
            if count > 0 || ignored > 0 {
                statistics.withLock {
                    $0.events += count
                    $0.confirmations += confirmed
                    $0.ignoredConfirmations += ignored
                    $0.shortfall += shortfall
                }
            }
            sleepNanoseconds(tick - (monotonicNanoseconds() - tickStart))
        }
        finished.withLock { $0 = true }
    }
}
