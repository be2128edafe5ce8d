import MutewardenModel
import MutewardenSupervisor

/// Turns a connection's status changes into the engine's feed up / feed down records, once per
/// real transition: a feed that retries every few seconds while down raises one alarm, not one
/// per attempt, and its `feed.down` names the latest reason.
public final class FeedStatusReporter: Sendable {
    private let feed: String
    private let sink: any CallUpdateSink
    /// nil until the first report: the first failure is a feed.down even if it never was up.
    private let lastReportedUp = Locked<Bool?>(nil)

    public init(feed: String, sink: any CallUpdateSink) {
        self.feed = feed
        self.sink = sink
    }

    /// Pass to `ConnectionSupervisor(onChange:)`.
    public func report(_ status: ConnectionStatus) {
        let up: Bool
        let detail: String
        switch status.phase {
        case .connecting:
            return
        case .up:
            up = true
            detail = "connected"
        case .down:
            up = false
            detail = status.description
        case .stopped:
            up = false
            detail = "stopped"
        }
        let changed = lastReportedUp.withLock { last in
            defer { last = up }
            return last != up
        }
        if changed { sink.feedStateChanged(feed: feed, up: up, detail: detail) }
    }
}
