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
        /// Voicenter runs only; absent from a Genesys report, whose shape stays as it was.
        var voicenter: VoicenterCounters?
    }

    /// What only the Voicenter side counts. On a Voicenter run the shared counters read:
    /// `logins` REST logins, `handshakes` Engine.IO opens, `subscriptions` and `connects` socket.io
    /// CONNECTs, `resyncs` snapshots written, `action_requests` MuteUnmuteCalls requests.
    struct VoicenterCounters: Sendable, Codable {
        var refreshes = 0
        var eio3Sessions = 0
        var eio4Sessions = 0
        /// Handshakes answered 400 (no or unknown EIO, a transport other than websocket).
        var refusedVersion = 0
        /// Handshakes and logins answered 401 (unknown or expired token, wrong credentials).
        var refusedToken = 0
        var pingsReceived = 0
        var pingsSent = 0
        var pongsReceived = 0
        /// Sessions closed because the heartbeat stopped (EIO3: no client ping; EIO4: no pong).
        var heartbeatTimeouts = 0
        var keepalives = 0
        /// `resync` emits, each answered with a fresh AllExtensionsStatus.
        var resyncRequests = 0
        /// The size of the last AllExtensionsStatus written.
        var snapshotBytes = 0
        var muteByCall = 0
        /// `extension` requests: answered, but no run expects one (its policy pauses by call).
        var muteByExtension = 0
        var unknownEvents = 0
        var malformedPackets = 0
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
        var newCallLatency: LatencySummary?
    }

    let final = Mutex<Final?>(nil)

    func snapshot() -> Counters { counters.withLock { $0 } }
}
