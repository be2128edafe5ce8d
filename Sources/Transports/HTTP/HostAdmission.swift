/// How many transfers of one host (scheme, host and port) are in libcurl at once; the rest wait
/// here, in order, and start as that host's transfers finish.
///
/// Why: libcurl gives every transfer an easy handle with its 16 KiB receive buffer the moment it
/// is added, even one that only queues for a free connection. A burst (the resync of a large
/// site reapplies thousands of actions at once) cost 16 KiB a request; here a waiting request
/// costs its `Submission`. Counting per host keeps one slow platform from holding the places of
/// another's requests.
struct HostAdmission {
    let limit: Int
    private var active: [String: Int] = [:]
    /// Limits of keys that have their own (a request's budget); the rest have `limit`.
    private var limits: [String: Int] = [:]
    private var waiting: [String: Queue] = [:]
    private(set) var waitingCount = 0

    var hasWaiting: Bool { waitingCount > 0 }

    init(limit: Int) { self.limit = max(1, limit) }

    /// True: start it now. False: it waits for ``next()``.
    mutating func admit(_ submission: Submission) -> Bool {
        let host = submission.host
        if let own = submission.limit { limits[host] = own }
        // Behind others of its host it waits, even with a place free, so that order holds.
        if waiting[host] == nil, active[host, default: 0] < limit(of: host) {
            active[host, default: 0] += 1
            return true
        }
        waiting[host, default: Queue()].append(submission)
        waitingCount += 1
        return false
    }

    /// A transfer of `host` (a ``Submission/host``) has finished, or failed to start.
    mutating func release(_ host: String) {
        guard let count = active[host] else { return }
        active[host] = count > 1 ? count - 1 : nil
    }

    /// The next waiting submission whose host has a place, which it now holds.
    mutating func next() -> Submission? {
        guard waitingCount > 0 else { return nil }
        // Few hosts (one per platform), so a scan is cheaper than bookkeeping.
        for (host, var queue) in waiting where active[host, default: 0] < limit(of: host) {
            guard let submission = queue.popFirst() else { continue }
            waiting[host] = queue.isEmpty ? nil : queue
            waitingCount -= 1
            active[host, default: 0] += 1
            return submission
        }
        return nil
    }

    private func limit(of key: String) -> Int { limits[key] ?? limit }

    /// Takes out every waiting submission that matches, each with how many requests of its key
    /// were ahead of it (waiting before it, or in libcurl): what a request that expires while
    /// queued says.
    mutating func removeAllCountingAhead(where matches: (Submission) -> Bool) -> [(Submission, Int)] {
        guard waitingCount > 0 else { return [] }
        var removed: [(Submission, Int)] = []
        for (host, queue) in waiting {
            let inFlight = active[host, default: 0]
            let (taken, kept) = queue.split(matches, positions: true)
            guard !taken.isEmpty else { continue }
            removed += taken.map { ($0.0, inFlight + $0.1) }
            waiting[host] = kept.isEmpty ? nil : kept
        }
        waitingCount -= removed.count
        return removed
    }

    /// Takes out every waiting submission that matches, in order.
    mutating func removeAll(where matches: (Submission) -> Bool) -> [Submission] {
        guard waitingCount > 0 else { return [] }
        var removed: [Submission] = []
        for (host, queue) in waiting {
            let (taken, kept) = queue.split(matches)
            guard !taken.isEmpty else { continue }
            removed += taken
            waiting[host] = kept.isEmpty ? nil : kept
        }
        waitingCount -= removed.count
        return removed
    }

    /// "scheme://authority", lowercased: what libcurl's per-host limit counts by, near enough.
    /// Scanned as UTF-8 bytes: it runs for every request, and Foundation's `range(of:)` showed
    /// in the HTTP thread's profile when it ran there.
    static func host(of url: String) -> String {
        let bytes = url.utf8
        var index = bytes.startIndex
        var slashes = 0
        var end = bytes.endIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if slashes < 2 {
                slashes = byte == UInt8(ascii: "/") ? slashes + 1 : 0
            } else if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") {
                end = index
                break
            }
            index = bytes.index(after: index)
        }
        return String(url[..<end]).lowercased()
    }

    /// A FIFO that pops from a moving head, compacted when the dead front outgrows the rest.
    struct Queue {
        private var items: [Submission] = []
        private var head = 0

        var isEmpty: Bool { head == items.count }

        mutating func append(_ submission: Submission) { items.append(submission) }

        mutating func popFirst() -> Submission? {
            guard head < items.count else { return nil }
            let first = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 64, head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return first
        }

        func split(_ matches: (Submission) -> Bool) -> (taken: [Submission], kept: Queue) {
            let (taken, kept) = split(matches, positions: true)
            return (taken.map(\.0), kept)
        }

        /// Also gives each taken submission's position in the queue (how many waited before it).
        func split(_ matches: (Submission) -> Bool, positions: Bool) -> (taken: [(Submission, Int)], kept: Queue) {
            var taken: [(Submission, Int)] = []
            var kept = Queue()
            for (position, submission) in items[head...].enumerated() {
                if matches(submission) { taken.append((submission, position)) } else { kept.append(submission) }
            }
            return (taken, kept)
        }
    }
}
