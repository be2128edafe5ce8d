/// A test's own failure: a wait that ran out, a peer that would not start.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `check` until it returns a value, and returns that value; throws once `timeout` has
/// passed.
///
/// Between polls the task sleeps (`Task.sleep`), so a waiting test holds no thread of Swift's
/// cooperative pool: on a two-core machine that pool has two threads, and a test that blocked one
/// would stall every other async test of the run. The loop is bounded in time and in count (a
/// clock that stood still would not keep it going).
///
/// The timeouts are for a loaded machine, not a quiet one: they bound a failure, and a passing
/// test returns as soon as its condition holds.
@discardableResult
public func eventually<T>(
    _ what: @autoclosure () -> String = "a condition", timeout: Duration = .seconds(20),
    every interval: Duration = .milliseconds(10), _ check: () async throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    let polls = maximumPolls(timeout, interval)
    for _ in 0..<polls {
        if let value = try await check() { return value }
        guard clock.now < deadline else { break }
        try await Task.sleep(for: interval)
    }
    // The last look, so that a condition that came true during the final sleep still counts.
    if let value = try await check() { return value }
    throw TestFailure("timed out after \(timeout) waiting for \(what())")
}

/// Whether `condition` came true within `timeout`, polled as ``eventually(_:timeout:every:_:)``
/// does. For `#expect(await waitUntil { ... })` and `try #require(await waitUntil { ... })`: the
/// expectation, not the wait, reports a failure, at the test's own line.
public func waitUntil(
    timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    let polls = maximumPolls(timeout, interval)
    for _ in 0..<polls {
        if try await condition() { return true }
        guard clock.now < deadline else { break }
        // A cancelled test stops waiting; the last look below decides.
        do { try await Task.sleep(for: interval) } catch { break }
    }
    return try await condition()
}

/// A bound on the number of polls: a sleep lasts at least its interval, so the time bound ends the
/// loop first; this ends it should the clock misbehave.
private func maximumPolls(_ timeout: Duration, _ interval: Duration) -> Int {
    let interval = max(interval, .milliseconds(1))
    return Int(min((timeout / interval).rounded(.up), 1_000_000)) + 1
}
