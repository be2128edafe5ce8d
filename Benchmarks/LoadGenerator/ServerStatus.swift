import Synchronization

/// What the main thread reads from, and tells, the service thread while a run goes on.
final class ServerStatus: Sendable {
    struct Counters: Sendable, Codable {
        var port = 0
        var logins = 0
        var handshakes = 0
        var subscriptions = 0
        var resyncs = 0
        var connects = 0
        var eventsWritten = 0
        var pollReplies = 0
        var webSocketFrames = 0
        var webSocketUpgrades = 0
        /// Upgrades that carried the session cookie and Basic credentials, as GWS wants.
        var webSocketUpgradesWithCredentials = 0
        var actionRequests = 0
        /// POSTs without the session's CSRF token (GWS would refuse them with 403; counted here).
        var csrfMissing = 0
        var unknownClient = 0
        var maximumBacklog = 0
        var eventsDropped = 0
        var badRequests = 0
    }

    let counters = Mutex(Counters())
    /// Stamps taken while set count towards the latency percentiles.
    let measuring = Atomic<Bool>(false)
    let stopRequested = Atomic<Bool>(false)
    /// The daemon's pid, for reading its memory when it first shakes hands (0 in sink mode).
    let daemonPID = Atomic<Int32>(0)
    let rssAtHandshake = Mutex<Int?>(nil)

    struct Final: Sendable {
        var counts: Ledger.Counts
        var latency: LatencySummary
        var latencyFromGeneration: LatencySummary
    }

    let final = Mutex<Final?>(nil)

    func snapshot() -> Counters { counters.withLock { $0 } }
}
