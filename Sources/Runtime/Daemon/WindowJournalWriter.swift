import CMutewardenShims
import Dispatch
import Foundation
import MutewardenEngine
import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The window journal on disk: `<state directory>/windows-<epoch>.journal`, JSON lines of
/// ``WindowJournalRecord``, appended by a thread of its own and flushed by group commit: whatever
/// the engine handed over while the last `fdatasync` ran goes out in the next write, so a record
/// waits for at most one flush. The engine thread never waits for it.
///
/// Segments tie the journal to the state file's snapshots. When the engine thread takes a
/// snapshot it first rotates: the records before belong to the epoch that ends, the later ones
/// to the next segment. Once that snapshot is on disk, the segments up to its epoch are deleted.
/// At start every segment left is replayed, oldest first, over the snapshot.
final class WindowJournalWriter: Sendable {
    private enum Item: Sendable {
        case records([WindowJournalRecord])
        /// Close the current segment and start `epoch`.
        case rotate(UInt64)
        /// The snapshot that covers segments up to `epoch` is on disk: delete them.
        case release(UInt64)
    }

    let directory: String
    private let pending = Locked<[Item]>([])
    private let wakeup = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    /// The epoch records handed over now go to; read and bumped on the engine thread only.
    private let epoch: Atomic<UInt64>
    private let onError: @Sendable (String) -> Void
    /// Group commits so far, and records written: for the benchmark and status.
    let flushes = Atomic<UInt64>(0)
    let recordsWritten = Atomic<UInt64>(0)

    /// How often written records are also made durable with `fdatasync`; zero: at every group
    /// commit. A record is written (in the kernel's page cache, so it survives the daemon's
    /// crash or a SIGKILL) at each group commit whatever this is; the interval bounds what a
    /// power loss or a kernel crash can take.
    let syncInterval: Duration
    /// `fdatasync` calls so far.
    let syncs = Atomic<UInt64>(0)

    /// Starts after the segments already there (`firstEpoch`: one more than the newest).
    init(directory: String, firstEpoch: UInt64, syncInterval: Duration = .zero, onError: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.syncInterval = syncInterval
        self.onError = onError
        epoch = Atomic(firstEpoch)
        let thread = Thread { [self] in
            mw_set_thread_name("mw-journal")
            run(startingAt: firstEpoch)
        }
        thread.start()
    }

    /// The group commit's window: a record reaches the disk at most this long plus one
    /// `fdatasync` after the engine hands it over (well inside the 10 ms the journal promises).
    static let coalescing: Duration = .milliseconds(4)

    static func path(_ directory: String, epoch: UInt64) -> String { "\(directory)/windows-\(epoch).journal" }

    /// Engine thread: records of windows whose actions have been sent.
    func append(_ records: [WindowJournalRecord]) {
        guard !records.isEmpty else { return }
        post(.records(records))
    }

    /// Engine thread, just before it takes a snapshot: the epoch that the snapshot covers.
    func rotate() -> UInt64 {
        let ended = epoch.load(ordering: .relaxed)
        epoch.store(ended + 1, ordering: .relaxed)
        post(.rotate(ended + 1))
        return ended
    }

    /// State writer, once the snapshot covering `epoch` is durable.
    func release(through epoch: UInt64) { post(.release(epoch)) }

    /// Writes what is pending and stops the thread.
    func finish() {
        stopped.store(true, ordering: .releasing)
        wakeup.signal()
        done.wait()
    }

    private func post(_ item: Item) {
        let wasEmpty = pending.withLock { items in
            items.append(item)
            return items.count == 1
        }
        if wasEmpty { wakeup.signal() }
    }

    // MARK: - The writer's thread

    private func run(startingAt first: UInt64) {
        // The pause never waits for this thread: on a core shared with the engine thread (the
        // benchmark pins the daemon to one), a normal-priority writer woken for each record held
        // the engine's next wakeup behind it (p99 event→request up several milliseconds at 5,000
        // events/s; docs/performance.md). In SCHED_IDLE it writes in the engine's gaps, which
        // at any load the engine keeps up with are most of each millisecond.
        if mw_set_thread_idle_policy() != 0 { _ = mw_set_thread_nice(19) }
        let clock = SystemClock()
        var current = first
        var descriptor: Int32 = -1
        var lastError: String?
        func report(_ message: String) {
            guard message != lastError else { return }
            lastError = message
            onError(message)
        }
        func openSegment() {
            let path = Self.path(directory, epoch: current)
            descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            if descriptor < 0 { report("cannot open \(path): \(String(cString: strerror(errno)))") }
        }
        var lastSync: MonotonicInstant?
        var unsynced = false
        func sync(force: Bool) {
            guard unsynced, descriptor >= 0 else { return }
            let now = clock.now()
            if !force, let lastSync, now.since(lastSync) < syncInterval { return }
            if fdatasync(descriptor) == 0 {
                syncs.add(1, ordering: .relaxed)
                unsynced = false
                lastSync = now
            } else {
                report("cannot sync the window journal: \(String(cString: strerror(errno)))")
            }
        }
        func flush(_ buffer: inout [UInt8]) {
            guard !buffer.isEmpty else { return }
            if descriptor < 0 { openSegment() }
            guard descriptor >= 0 else {
                buffer.removeAll(keepingCapacity: true)
                return
            }
            let ok = buffer.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return false
                    }
                    offset += written
                }
                return true
            }
            if ok {
                lastError = nil
                flushes.add(1, ordering: .relaxed)
                unsynced = true
                sync(force: syncInterval == .zero)
            } else {
                report("cannot write the window journal: \(String(cString: strerror(errno)))")
            }
            buffer.removeAll(keepingCapacity: true)
        }

        var buffer: [UInt8] = []
        var lastFlush: MonotonicInstant?
        while true {
            if unsynced {
                // Records written and not yet synced: wake for the sync even if nothing else comes.
                let due = (lastSync ?? .zero) + syncInterval
                let left = max(.milliseconds(1), due.since(clock.now()))
                _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(left.nanosecondsClamped)))
                sync(force: false)
            } else {
                wakeup.wait()
            }
            // Group commit over a short window: a record that finds the last flush less than
            // `coalescing` ago waits out the rest of it with whatever else arrives, so a steady
            // trickle of windows costs at most one fdatasync per window-length, not one each.
            if let lastFlush, case let left = Self.coalescing - clock.now().since(lastFlush), left > .zero,
                !stopped.load(ordering: .acquiring)
            {
                var pause = timespec(tv_sec: 0, tv_nsec: Int(left.nanosecondsClamped))
                var rest = timespec()
                while nanosleep(&pause, &rest) != 0, errno == EINTR { pause = rest }
            }
            lastFlush = clock.now()
            let items = pending.withLock { items in
                defer { items.removeAll(keepingCapacity: true) }
                return items
            }
            for item in items {
                switch item {
                case .records(let records):
                    for record in records {
                        record.appendJSON(to: &buffer)
                        buffer.append(UInt8(ascii: "\n"))
                    }
                    recordsWritten.add(UInt64(records.count), ordering: .relaxed)
                case .rotate(let next):
                    flush(&buffer)
                    sync(force: true)
                    if descriptor >= 0 { close(descriptor) }
                    descriptor = -1
                    current = next
                case .release(let through):
                    flush(&buffer)
                    for segment in Self.segments(in: directory) where segment.epoch <= through && segment.epoch < current {
                        unlink(segment.path)
                    }
                }
            }
            flush(&buffer)
            if stopped.load(ordering: .acquiring), pending.withLock({ $0.isEmpty }) {
                sync(force: true)
                if descriptor >= 0 { close(descriptor) }
                done.signal()
                return
            }
        }
    }

    // MARK: - Reading it back at start

    /// The journal's segments in `directory`, oldest first.
    static func segments(in directory: String) -> [(epoch: UInt64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("windows-"), name.hasSuffix(".journal"),
                let epoch = UInt64(name.dropFirst("windows-".count).dropLast(".journal".count))
            else { return nil }
            return (epoch, "\(directory)/\(name)")
        }.sorted { $0.0 < $1.0 }
    }

    /// Every record of every segment, oldest first, and how many lines could not be read (a line
    /// torn by a crash in the middle of a write, say): skipped, never fatal.
    static func read(directory: String) -> (records: [WindowJournalRecord], unreadable: Int, nextEpoch: UInt64) {
        let decoder = JSONDecoder()
        var records: [WindowJournalRecord] = []
        var unreadable = 0
        var newest: UInt64 = 0
        for segment in segments(in: directory) {
            newest = max(newest, segment.epoch)
            guard let data = FileManager.default.contents(atPath: segment.path) else { continue }
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                if let record = try? decoder.decode(WindowJournalRecord.self, from: Data(line)) {
                    records.append(record)
                } else {
                    unreadable += 1
                }
            }
        }
        return (records, unreadable, newest + 1)
    }
}
