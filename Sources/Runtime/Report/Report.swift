/// The evidence for one period, as ``ReportAggregator`` builds it from the audit records and the
/// renderers print it. Times are microseconds since the Unix epoch, durations milliseconds.
///
/// Every string in it comes from a record's fields (identifiers, names, error texts that the
/// daemon already PAN-masked), and is masked again when the report is built
/// (``ReportAggregator``): the report is a second line of defence, not a way around the first.
public struct Report: Sendable {
    public var period: ReportPeriod
    public var source: Source
    public var windows: [WindowGroup] = []
    public var targets: [TargetLatency] = []
    /// Counts of first confirmations by time to protection, over every target.
    public var histogram: [HistogramBucket] = []
    public var unconfirmed: [UnconfirmedWindow] = []
    public var outages: [FeedOutage] = []
    public var configurations: [ConfigurationEvent] = []
    public var daemon: [DaemonEvent] = []
    public var drifts: [Drift] = []
    public var alarms: [OtherAlarm] = []
    public var boundary = Boundary()
    public var verdict = Verdict()

    public init(period: ReportPeriod, source: Source) {
        self.period = period
        self.source = source
    }

    /// Where the records came from, and what was not taken from it.
    public struct Source: Sendable {
        /// `journal` (the sd-journal API) or `export` (a `journalctl -o json` file).
        public var kind: String
        /// The journal directory or the export file; nil for the system journal.
        public var path: String?
        /// Audit records of the daemon inside the period.
        public var records = 0
        /// Export lines that were not a JSON object with a usable timestamp: counted, skipped.
        public var malformed = 0
        /// Lines or entries that are not the daemon's audit records (other programs, log lines).
        public var skipped = 0
        /// The daemon's audit records outside the period (only an export has them).
        public var outsidePeriod = 0

        public init(kind: String, path: String?) {
            self.kind = kind
            self.path = path
        }
    }

    /// Windows of one policy on one feed, and how they ended.
    public struct WindowGroup: Sendable, Equatable {
        public var policy: String
        public var feed: String
        /// `enforce` or `dry-run`.
        public var mode: String
        /// `window.opened` records with `result=opened`: card captures that opened a window.
        public var opened = 0
        /// Captures on another call that an open extension window took in (`result=extended`).
        public var extended = 0
        /// How the windows ended: `window.closed`'s `result` (`stopped`, `call-ended`,
        /// `cap-expired`, `call-expired`, `policy-removed`), `left-in-place` (open at a
        /// shutdown), `open-at-period-end`.
        public var ended: [String: Int] = [:]
        /// Windows whose actions were all confirmed (at once, on a fallback, or recovered).
        public var protected = 0
        /// Windows that opened before the period: they appear through later records only.
        public var openedBeforePeriod = 0
    }

    /// Time to protection through one target: window open to the first confirmation of each
    /// apply action (mute, pause-recording) sent through it.
    public struct TargetLatency: Sendable, Equatable {
        public var target: String
        public var confirmed: Int
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
    }

    public struct HistogramBucket: Sendable, Equatable {
        /// The bucket's upper bound in milliseconds, included; nil for the last, open bucket.
        public var upTo: Double?
        public var count: Int
    }

    /// A window with an apply action that failed its control (or was never confirmed).
    public struct UnconfirmedWindow: Sendable, Equatable {
        public var openedAt: Int64?
        public var failedAt: Int64?
        public var policy: String
        public var feed: String
        public var call: String
        public var window: String
        public var action: String
        public var target: String
        /// The last error the target gave, PAN-masked; the failure's reason when there was no attempt.
        public var error: String?
        public var errorCode: String?
        /// Fallback targets tried after the failure, in order.
        public var fallbacks: [String] = []
        /// `recovered` (confirmed later while the window was open), `fallback-confirmed`,
        /// `unprotected-at-close`, `unconfirmed-at-close` (the window closed before any
        /// confirmation and no control failure was raised), `open-at-period-end`.
        public var outcome: String
        /// How long the call went unprotected, when it ended in the period: from the window
        /// opening (the daemon's own measure for `action.recovered`) to the confirmation, or to
        /// the window's close.
        public var unprotectedMs: Double?
        /// Whether a critical `action.failed` record raised the alarm.
        public var alarmed: Bool
    }

    public struct FeedOutage: Sendable, Equatable {
        public var feed: String
        /// nil: the feed was already down when the period began.
        public var downAt: Int64?
        /// nil: still down at the end of the period.
        public var upAt: Int64?
        /// `down` (connection lost) or `failed` (the feed stopped with an error).
        public var result: String
        public var reason: String?
        /// Calls live on the feed when it went down: what could have gone unseen. nil when the
        /// record does not say (records written before the field existed).
        public var callsActive: Int?
        /// The resync that closed the outage: when, and how many calls the platform listed.
        public var resyncAt: Int64?
        public var resyncCalls: Int?
        /// `daemon-stopped` when the daemon stopped during the outage.
        public var endedBy: String?
        public var durationMs: Double? {
            guard let downAt, let upAt else { return nil }
            return Double(upAt - downAt) / 1000
        }
    }

    public struct ConfigurationEvent: Sendable, Equatable {
        public var time: Int64
        /// `loaded` (at start), `reloaded`, `rejected`.
        public var result: String
        public var digest: String?
        public var error: String?
    }

    public struct DaemonEvent: Sendable, Equatable {
        public var time: Int64
        /// `started`, `ready`, `stopping`, `unconfirmed`, `stopped`.
        public var event: String
    }

    public struct Drift: Sendable, Equatable {
        public var time: Int64
        public var policy: String
        public var feed: String
        public var call: String
        public var target: String
        public var reason: String
        public var critical: Bool
    }

    /// Alarms that are not about one window: the tracker full, a window orphaned by a crash, a
    /// call that went idle, an undo that failed, the state not restored.
    public struct OtherAlarm: Sendable, Equatable {
        public var time: Int64
        public var kind: String
        public var feed: String?
        public var call: String?
        public var detail: String?
    }

    /// What the period's edges cut off, said in the report rather than guessed at.
    public struct Boundary: Sendable, Equatable {
        public var windowsOpenedBeforePeriod = 0
        public var windowsOpenAtPeriodEnd = 0
        public var outagesOpenAtStart = 0
        public var outagesOpenAtEnd = 0

        public init() {}
    }

    public struct Verdict: Sendable, Equatable {
        /// True when every capture of the period was protected or alarmed.
        public var ok = true
        public var captures = 0
        public var protected = 0
        public var alarmed = 0
        /// Captures of dry-run policies: nothing was sent, by the operator's choice.
        public var dryRun = 0
        /// Captures cut off by the end of the period before their action was confirmed.
        public var pendingAtPeriodEnd = 0
        /// One line per capture that was neither protected nor alarmed.
        public var exceptions: [String] = []

        /// The verdict in one line.
        public var line: String {
            if ok {
                return "every capture protected or alarmed: \(captures) capture(s), \(protected) protected, \(alarmed) alarmed"
                    + (dryRun > 0 ? ", \(dryRun) dry-run" : "")
                    + (pendingAtPeriodEnd > 0 ? ", \(pendingAtPeriodEnd) pending at period end" : "")
            }
            return "\(exceptions.count) exception(s): capture(s) neither protected nor alarmed"
        }
    }
}
