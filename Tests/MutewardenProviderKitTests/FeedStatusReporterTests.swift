import MutewardenModel
import MutewardenTesting
import Testing

import MutewardenProviderKit
import MutewardenSupervisor

@Test func onlyRealTransitionsAreReported() throws {
    let sink = RecordingSink()
    let reporter = FeedStatusReporter(feed: "gws", sink: sink)
    let now = MonotonicInstant.zero
    func status(_ phase: ConnectionStatus.Phase, _ error: String? = nil) -> ConnectionStatus {
        ConnectionStatus(phase: phase, since: now, lastError: error, consecutiveFailures: 1, retryIn: error == nil ? nil : .seconds(2))
    }
    reporter.report(status(.connecting))
    reporter.report(status(.down, "connection refused"))  // never up: still an alarm
    reporter.report(status(.connecting))
    reporter.report(status(.down, "connection refused"))  // still down: no second alarm
    reporter.report(status(.connecting))
    reporter.report(status(.up))
    reporter.report(status(.down, "HTTP 503"))
    reporter.report(status(.stopped))
    let states = sink.feedStates
    #expect(states.map(\.up) == [false, true, false])
    #expect(states.allSatisfy { $0.feed == "gws" })
    try #require(states.count == 3)
    #expect(states[0].detail == "down (connection refused), retrying in 2s")
    #expect(states[1].detail == "connected")
    #expect(states[2].detail.contains("HTTP 503"))
}
