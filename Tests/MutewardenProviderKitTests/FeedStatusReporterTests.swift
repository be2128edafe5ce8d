import MutewardenModel
import Testing

import MutewardenProviderKit
import MutewardenSupervisor

private final class RecordingSink: CallUpdateSink {
    let states = Locked<[(Bool, String)]>([])
    func deliver(_ update: CallUpdate) {}
    func resync(feed: String, current: [CallUpdate]) {}
    func feedStateChanged(feed: String, up: Bool, detail: String) { states.withLock { $0.append((up, detail)) } }
}

@Test func onlyRealTransitionsAreReported() {
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
    let states = sink.states.withLock { $0 }
    #expect(states.map(\.0) == [false, true, false])
    #expect(states[0].1 == "down (connection refused), retrying in 2s")
    #expect(states[1].1 == "connected")
    #expect(states[2].1.contains("HTTP 503"))
}
