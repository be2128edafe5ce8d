import Dispatch
import Foundation
import MutewardenConfig
import MutewardenProviderKit
import MutewardenDaemon
import MutewardenModel
import MutewardenTesting
import Synchronization
import Testing

/// A task executor with one thread of its own, named so that a job can tell where it runs. One
/// for the process: jobs hold their executor unowned.
private final class NamedThreadExecutor: TaskExecutor {
    static let shared = NamedThreadExecutor()
    static let threadName = "test-sink"

    private let jobs = Mutex<[UnownedJob]>([])
    private let wakeup = DispatchSemaphore(value: 0)

    private init() {
        // Captures self, which is never released (shared).
        let thread = Thread { [self] in
            _ = try? "\(NamedThreadExecutor.threadName)".write(
                toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            while true {
                let batch = jobs.withLock { jobs in
                    defer { jobs.removeAll() }
                    return jobs
                }
                for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
                if batch.isEmpty { wakeup.wait() }
            }
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let first = jobs.withLock { jobs in
            jobs.append(job)
            return jobs.count == 1
        }
        if first { wakeup.signal() }
    }
}

extension GenesysProviderTests {
    /// The feed reads, parses and hands over its events on the executor its sink names (the
    /// daemon's engine thread), on both transports: over WebSocket the reader of pushed frames
    /// runs there too, not on a thread of Swift's pool.
    @Test(arguments: transports) func theFeedHandsOverItsEventsOnTheSinksExecutor(_ transport: String) async throws {
        let peer = try await GenesysPeer.start(connectTimeout: 2)
        let configuration = try GenesysProviderTests.configuration(peer: peer, transport: transport)
        let feed = try configuration.feeds[0].settings.makeFeed(
            name: "gws", context: TestProviderContext().context)
        // The sink offers its own executor, as the engine's offers the engine thread.
        let sink = RecordingSink(taskExecutor: NamedThreadExecutor.shared)
        let running = Task(executorPreference: sink.taskExecutor) { try await feed.run(delivering: sink) }
        try await peer.waitForSubscribers()
        for index in 1...3 { try await peer.createCall(id: "E\(index)", userData: ["PCI_STAGE": "CARD"]) }
        func captures() -> [CallUpdate] { sink.updates.filter { $0.ids.primary.hasPrefix("E") } }
        #expect(await waitUntil(every: .milliseconds(20)) { captures().count >= 3 })
        running.cancel()
        _ = try? await running.value
        #expect(captures().count == 3, "\(sink.updates)")
        let threads = sink.deliveries.map(\.thread)
        #expect(threads.allSatisfy { $0 == NamedThreadExecutor.threadName }, "delivered on \(Set(threads).sorted())")
    }
}
