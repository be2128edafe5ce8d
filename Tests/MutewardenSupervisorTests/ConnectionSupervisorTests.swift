import MutewardenModel
import MutewardenTesting
import Synchronization
import Testing

@testable import MutewardenSupervisor

/// A clock that only moves when told, shared by the test and the supervisor.
final class ManualClock: MonotonicClock {
    let current = Mutex(MonotonicInstant(nanoseconds: 1_000_000_000))
    func now() -> MonotonicInstant { current.withLock { $0 } }
    func advance(_ duration: Duration) { current.withLock { $0 = $0 + duration } }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
}

/// Runs a supervisor over a script of attempts; sleeping advances the manual clock instantly.
private func supervise(
    policy: ReconnectPolicy, attempts: Int, _ script: @escaping @Sendable (Int, ConnectionHandle, ManualClock) throws -> Void
) async -> (statuses: [ConnectionStatus], sleeps: [Duration]) {
    let clock = ManualClock()
    let statuses = Mutex<[ConnectionStatus]>([])
    let sleeps = Mutex<[Duration]>([])
    let count = Mutex(0)
    let task = Task {
        let supervisor = ConnectionSupervisor(
            name: "test", policy: policy, clock: clock, randomSeed: 5,
            sleep: { duration in
                sleeps.withLock { $0.append(duration) }
                clock.advance(duration)
                if sleeps.withLock({ $0.count }) >= attempts { throw CancellationError() }
            },
            onChange: { status in statuses.withLock { $0.append(status) } })
        await supervisor.run { handle in
            let index = count.withLock { value in
                value += 1
                return value
            }
            try script(index, handle, clock)
        }
    }
    await task.value
    return (statuses.withLock { $0 }, sleeps.withLock { $0 })
}

@Test func failuresBackOffExponentiallyWithFullJitterUpToTheCap() async {
    let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(2), stableAfter: .seconds(30))
    let (statuses, sleeps) = await supervise(policy: policy, attempts: 12) { _, _, _ in
        throw Failure(description: "connection refused")
    }
    #expect(sleeps.count == 12)
    for (index, delay) in sleeps.enumerated() {
        #expect(delay >= .zero && delay <= policy.ceiling(afterFailures: index + 1))
    }
    #expect(policy.ceiling(afterFailures: 1) == .milliseconds(100))
    #expect(policy.ceiling(afterFailures: 4) == .milliseconds(800))
    #expect(policy.ceiling(afterFailures: 12) == .seconds(2))
    let downs = statuses.filter { $0.phase == .down }
    #expect(downs.map(\.consecutiveFailures) == Array(1...12))
    #expect(downs.allSatisfy { $0.lastError == "connection refused" })
    #expect(statuses.last?.phase == .stopped)
    #expect(!statuses.contains { $0.phase == .up })
}

@Test func aStableConnectionResetsTheBackoff() async {
    let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(60), stableAfter: .seconds(30))
    let (statuses, _) = await supervise(policy: policy, attempts: 6) { index, handle, clock in
        if index == 4 {
            handle.markUp()
            clock.advance(.seconds(31))  // stays up past stableAfter, then drops
            throw Failure(description: "peer closed")
        }
        throw Failure(description: "connection refused")
    }
    let downs = statuses.filter { $0.phase == .down }.map(\.consecutiveFailures)
    #expect(downs == [1, 2, 3, 1, 2, 3])
    #expect(statuses.filter { $0.phase == .up }.count == 1)
}

@Test func aConnectionThatDropsAtOnceKeepsBackingOff() async {
    let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(60), stableAfter: .seconds(30))
    let (statuses, _) = await supervise(policy: policy, attempts: 4) { _, handle, _ in
        handle.markUp()
        throw Failure(description: "dropped right after the upgrade")
    }
    #expect(statuses.filter { $0.phase == .down }.map(\.consecutiveFailures) == [1, 2, 3, 4])
    #expect(statuses.filter { $0.phase == .up }.count == 4)
}

@Test func statusesGoConnectingUpDownInOrder() async {
    let (statuses, _) = await supervise(policy: ReconnectPolicy(), attempts: 1) { _, handle, _ in
        handle.markUp()
        handle.markUp()  // a second call is ignored
    }
    #expect(statuses.map(\.phase) == [.connecting, .up, .down, .stopped])
    #expect(statuses[2].lastError == "the connection was closed")
    #expect(statuses[2].description.hasPrefix("down (the connection was closed), retrying in"))
}

@Test func cancellationStopsTheLoop() async {
    let started = Mutex(false)
    let task = Task {
        await ConnectionSupervisor(name: "test", onChange: { _ in }).run { handle in
            handle.markUp()
            started.withLock { $0 = true }
            try await Task.sleep(for: .seconds(3600))
        }
    }
    #expect(await waitUntil { started.withLock { $0 } })
    task.cancel()
    await task.value  // returns: the loop ended
}
