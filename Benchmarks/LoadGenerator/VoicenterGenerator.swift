import Foundation
import Synchronization

/// Socket.io packets rendered in one tick, each its own WebSocket frame (Engine.IO sends one
/// packet per frame), with the actions they call for.
struct FrameChunk: Sendable {
    var bytes: [UInt8]
    /// Where each frame ends in `bytes`.
    var ends: [Int]
    var expectations: [VoicenterTraffic.Expectation]
    var generatedAt: Int64
    /// A snapshot for one session (its first, or the one its `resync` asked for); nil: for every
    /// session that has had its snapshot.
    var recipient: UInt64?

    func frame(_ index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }
}

/// Service thread → generator: sessions waiting for a snapshot. The generator renders it in
/// the stream's order, so a session's snapshot and the events after it never disagree.
final class SnapshotRequests: Sendable {
    private let sessions = Mutex<[UInt64]>([])

    func post(_ session: UInt64) { sessions.withLock { $0.append(session) } }
    func drain() -> [UInt64] {
        sessions.withLock { sessions in
            defer { sessions = [] }; return sessions
        }
    }
}

/// The Voicenter pacing thread: as `Generator`, whose phases and statistics it shares, but for
/// socket.io frames, expectations that name their calls, and snapshots on request.
final class VoicenterGenerator: Pacing {
    private let rate: Double
    private let outbox: ChunkOutbox<FrameChunk>
    private let confirmations: ConfirmationQueue
    private let snapshots: SnapshotRequests
    private let phase = Atomic<Int>(Generator.Phase.waiting.rawValue)
    private let statistics = Mutex(Generator.Statistics())
    private let finished = Mutex(false)

    init(rate: Double, outbox: ChunkOutbox<FrameChunk>, confirmations: ConfirmationQueue, snapshots: SnapshotRequests) {
        self.rate = rate
        self.outbox = outbox
        self.confirmations = confirmations
        self.snapshots = snapshots
    }

    func set(_ phase: Generator.Phase) { self.phase.store(phase.rawValue, ordering: .releasing) }
    var currentStatistics: Generator.Statistics { statistics.withLock { $0 } }
    var isFinished: Bool { finished.withLock { $0 } }

    func start(traffic: VoicenterTraffic) -> Thread {
        let thread = Thread { [self] in
            var traffic = traffic
            run(&traffic)
        }
        thread.name = "loadgen-pacer"
        thread.start()
        return thread
    }

    private func run(_ traffic: inout VoicenterTraffic) {
        let tick: Int64 = 1_000_000
        // After a stall, catch up by at most 10 ms of traffic per tick rather than in one burst.
        let capPerTick = max(1, Int(rate / 100))
        var started: Int64?
        var sent = 0
        var lastWake = monotonicNanoseconds()
        while true {
            let tickStart = monotonicNanoseconds()
            let phase = Generator.Phase(rawValue: phase.load(ordering: .acquiring)) ?? .stopped
            if phase == .stopped { break }
            traffic.now = time(nil)
            for session in snapshots.drain() {
                var out = ByteWriter(capacity: traffic.extensions.count * 400)
                traffic.renderSnapshot(into: &out)
                outbox.push(
                    FrameChunk(bytes: out.bytes, ends: [out.bytes.count], expectations: [], generatedAt: tickStart, recipient: session))
                lastWake = tickStart
            }
            var out = ByteWriter(capacity: 64 * 1024)
            var ends: [Int] = []
            var expectations: [VoicenterTraffic.Expectation] = []
            var ignored = 0
            for item in confirmations.drain() {
                if traffic.confirm(callID: item.callID, operation: item.operation, into: &out) {
                    ends.append(out.bytes.count)
                } else {
                    ignored += 1
                }
            }
            let confirmed = ends.count
            var shortfall = 0
            if phase == .running {
                if started == nil { started = tickStart }
                let due = Int(Double(tickStart - started!) * rate / 1e9) - sent - confirmed
                let budget = min(due, capPerTick)
                if due > capPerTick { shortfall = due - capPerTick }
                if budget > 0 {
                    for _ in 0..<budget {
                        traffic.nextEvent(frame: ends.count, into: &out, expecting: &expectations)
                        ends.append(out.bytes.count)
                    }
                }
                if shortfall > 0 { sent += shortfall }
            }
            let count = ends.count
            sent += count
            if count > 0 {
                outbox.push(FrameChunk(bytes: out.bytes, ends: ends, expectations: expectations, generatedAt: tickStart))
                lastWake = tickStart
            } else if tickStart - lastWake > 100_000_000 {
                // The service thread keeps the heartbeats when it wakes.
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
