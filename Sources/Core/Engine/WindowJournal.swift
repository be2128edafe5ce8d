import MutewardenModel

/// One line of the window journal: a window opened (with its whole state-file entry) or closed.
///
/// The state file is a snapshot taken at most once a second, off the engine thread. A window
/// opened in the second before a SIGKILL was in no snapshot, and after the restart nothing knew to
/// undo it. Each opening and closing is therefore also appended to a journal right after the
/// window's actions are sent (the pause never waits for a disk), flushed by group commit, and
/// replayed over the snapshot at start (``EngineState/replaying(_:)``).
public struct WindowJournalRecord: Codable, Sendable, Hashable {
    public enum Operation: String, Codable, Sendable {
        case open, close
    }

    public var op: Operation
    /// For `open`: the window as the state file would have it.
    public var window: WindowState?
    /// For `close`: which window.
    public var key: WindowKey?

    public static func opened(_ window: WindowState) -> WindowJournalRecord { .init(op: .open, window: window, key: nil) }
    public static func closed(_ key: WindowKey) -> WindowJournalRecord { .init(op: .close, window: nil, key: key) }
}

/// What names one window across restarts: its policy, the call that opened it and its sequence.
public struct WindowKey: Codable, Sendable, Hashable {
    public var policy: String
    public var feed: String
    public var call: String
    public var sequence: UInt64

    public init(policy: String, feed: String, call: String, sequence: UInt64) {
        self.policy = policy
        self.feed = feed
        self.call = call
        self.sequence = sequence
    }

    public init(_ window: WindowState) {
        self.init(policy: window.policy, feed: window.feed, call: window.call.primary, sequence: window.sequence)
    }
}

extension EngineState {
    /// The snapshot with journal records laid over it, oldest first: a window opened after the
    /// snapshot is added, one closed is removed. Replaying a record the snapshot already holds
    /// changes nothing, so a journal that outlived its snapshot (a crash between the two) is safe.
    public func replaying(_ records: [WindowJournalRecord]) -> EngineState {
        var state = self
        var index: [WindowKey: Int] = [:]
        for (position, window) in state.windows.enumerated() { index[WindowKey(window)] = position }
        var removed = Set<WindowKey>()
        for record in records {
            switch record.op {
            case .open:
                guard let window = record.window else { continue }
                let key = WindowKey(window)
                removed.remove(key)
                if index[key] == nil {
                    index[key] = state.windows.count
                    state.windows.append(window)
                }
            case .close:
                if let key = record.key, index[key] != nil { removed.insert(key) }
            }
        }
        if !removed.isEmpty { state.windows.removeAll { removed.contains(WindowKey($0)) } }
        return state
    }
}

/// A window opened or closed, noted by the engine for the journal until the daemon takes it.
enum JournalEvent {
    case opened(Window)
    case closed(WindowKey)
}

extension Engine {
    /// Whether there are records for ``takeJournal(now:wallNow:)``.
    public var hasJournal: Bool { !journalEvents.isEmpty }

    /// The journal records since the last call, in order. Called by the daemon after it has
    /// started the sends of the inputs that produced them.
    public func takeJournal(now: MonotonicInstant, wallNow: Int64) -> [WindowJournalRecord] {
        defer { journalEvents.removeAll(keepingCapacity: true) }
        return journalEvents.map { event in
            switch event {
            case .opened(let window): .opened(windowState(window, now: now, wallNow: wallNow))
            case .closed(let key): .closed(key)
            }
        }
    }

    func journalOpened(_ window: Window) {
        guard journaling else { return }
        journalEvents.append(.opened(window))
    }

    func journalClosed(_ window: Window) {
        guard journaling else { return }
        journalEvents.append(
            .closed(
                WindowKey(policy: window.definition.name, feed: window.subject.feed, call: window.subject.id, sequence: window.sequence)))
    }
}
