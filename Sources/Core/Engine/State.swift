import MutewardenModel

/// What must survive a restart, SIGKILL included: every open window with what it has applied,
/// and every undo not yet confirmed. Times are wall-clock, so that a window's cap continues from
/// its original open time whatever happened to the process in between.
public struct EngineState: Codable, Sendable, Hashable {
    public static let currentVersion = 1

    public var version = EngineState.currentVersion
    public var windows: [WindowState] = []
    public var pendingUndos: [PendingUndo] = []

    public init(windows: [WindowState] = [], pendingUndos: [PendingUndo] = []) {
        self.windows = windows
        self.pendingUndos = pendingUndos
    }

    public var isEmpty: Bool { windows.isEmpty && pendingUndos.isEmpty }
}

public struct WindowState: Codable, Sendable, Hashable {
    public var policy: String
    public var feed: String
    /// The call that opened the window.
    public var call: CallIdentifiers
    public var agentExtension: String?
    /// True for an extension-scope window.
    public var extensionScope: Bool
    public var sequence: UInt64
    /// The provider's sequence number of the opening event, if the provider numbers events.
    public var openingSequence: UInt64?
    /// Wall-clock nanoseconds since the Unix epoch.
    public var openedAtWallNanoseconds: Int64
    public var triggers: [String]
    public var covered: [String]
    public var engagements: [EngagementState]
    /// The policy as it was when the window opened: its actions are what must be undone.
    public var actions: [ActionSpecState]
    public var mode: String
}

public struct ActionSpecState: Codable, Sendable, Hashable {
    public var kind: ActionKind
    public var target: String
    public var byExtension: Bool
    public var deadlineNanoseconds: Int64
    public var fallback: [String]

    static func states(of definition: PolicyDefinition) -> [ActionSpecState] {
        definition.actions.map {
            ActionSpecState(
                kind: $0.kind, target: $0.target, byExtension: $0.addressing == .agentExtension,
                deadlineNanoseconds: $0.deadline.nanosecondsClamped, fallback: $0.fallback)
        }
    }
}

public struct EngagementState: Codable, Sendable, Hashable {
    public var action: Int
    public var address: ActionAddress
    /// The covered call for an action addressed by call.
    public var call: String?
    public var context: CallIdentifiers
    public var agentExtension: String?
    public var generation: UInt64
    public var targets: [EngagedTargetState]
}

public struct EngagedTargetState: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        /// Confirmed, or sent at least once: it may be in place and must be undone at close.
        case applied
        /// Not yet sent, or not yet answered: sent again after a restart (same idempotency key).
        case pending
        /// Only recorded, by a dry-run policy.
        case simulated
    }

    public var target: String
    public var status: Status
}

/// An undo that had not been confirmed: a restart sends it again.
public struct PendingUndo: Codable, Sendable, Hashable {
    public var window: WindowState
    public var engagement: Int
    public var target: String
}

/// One open window's entry in the state file, as built when the window last changed. Immutable,
/// so the state writer reads it on its own thread while the engine goes on.
public final class PersistedWindow: Sendable {
    public let id: UInt64
    public let state: WindowState

    init(id: UInt64, state: WindowState) {
        self.id = id
        self.state = state
    }
}

/// What the engine hands the state writer once a second. Taking it costs the engine the windows
/// that changed since the last one, not every open window: the map is shared copy-on-write and
/// its entries are immutable. The sort and the ``EngineState`` are built by whoever reads it.
public struct EngineStateImage: Sendable {
    public let windows: [UInt64: PersistedWindow]
    public let pendingUndos: [PendingUndo]

    public var state: EngineState { EngineState(windows: sortedWindows.map(\.state), pendingUndos: pendingUndos) }

    /// The entries in the state file's order, by window id.
    var sortedWindows: [PersistedWindow] { windows.values.sorted { $0.id < $1.id } }
}

extension Engine {
    /// The state to persist now. `wallNow` is the wall clock at `now`.
    public func snapshot(now: MonotonicInstant, wallNow: Int64) -> EngineState {
        stateImage(now: now, wallNow: wallNow).state
    }

    /// The state to persist now, for another thread to encode.
    ///
    /// Building every open window's entry here took milliseconds once a second with many windows
    /// open (mostly reaching each window's scattered memory; docs/performance.md), and every event
    /// that arrived meanwhile waited. Now only the windows touched since their entry
    /// was last built are rebuilt (see ``touch(_:)``), and the daemon builds most of those ahead,
    /// in its idle moments (``persistTouchedWindows(atMost:now:wallNow:)``). An entry's
    /// wall-clock open time is worked out when it is built.
    public func stateImage(now: MonotonicInstant, wallNow: Int64) -> EngineStateImage {
        persistTouchedWindows(atMost: .max, now: now, wallNow: wallNow)
        return EngineStateImage(windows: persistedWindows, pendingUndos: pendingUndoStates(now: now, wallNow: wallNow))
    }

    /// Rebuilds the entries of up to `limit` touched windows, oldest touch first. True while
    /// some are left.
    @discardableResult
    public func persistTouchedWindows(atMost limit: Int, now: MonotonicInstant, wallNow: Int64) -> Bool {
        let count = min(limit, windowsToPersist.count - windowsToPersistHead)
        for window in windowsToPersist[windowsToPersistHead..<(windowsToPersistHead + count)] {
            window.needsPersisting = false
            if openWindows[window.id] === window {
                persistedWindows[window.id] = PersistedWindow(
                    id: window.id, state: windowState(window, now: now, wallNow: wallNow))
            } else {
                persistedWindows[window.id] = nil
            }
        }
        windowsToPersistHead += count
        guard windowsToPersistHead == windowsToPersist.count else { return true }
        windowsToPersist.removeAll(keepingCapacity: true)
        windowsToPersistHead = 0
        return false
    }

    /// The state as a rebuild of every entry would give it: for tests, against ``snapshot``.
    func fullSnapshot(now: MonotonicInstant, wallNow: Int64) -> EngineState {
        EngineState(
            windows: openWindows.values.sorted(by: { $0.id < $1.id }).map { windowState($0, now: now, wallNow: wallNow) },
            pendingUndos: pendingUndoStates(now: now, wallNow: wallNow))
    }

    /// Undos under way are few (a lane's worth at most per target), so they are rebuilt each time.
    private func pendingUndoStates(now: MonotonicInstant, wallNow: Int64) -> [PendingUndo] {
        jobs.values.filter { $0.request.verb == .undo }.sorted(by: { $0.id < $1.id }).map { job in
            PendingUndo(
                window: windowState(job.window, now: now, wallNow: wallNow), engagement: job.engagement,
                target: job.request.target)
        }
    }

    func windowState(_ window: Window, now: MonotonicInstant, wallNow: Int64) -> WindowState {
        WindowState(
            policy: window.definition.name, feed: window.subject.feed,
            call: calls[window.subject]?.ids ?? window.engagements.first { $0.call == window.subject }?.context
                ?? CallIdentifiers(primary: window.subject.id),
            agentExtension: window.agentExtension, extensionScope: window.extensionKey != nil,
            sequence: window.sequence, openingSequence: window.openingSequence,
            openedAtWallNanoseconds: wallNow - now.since(window.openedAt).nanosecondsClamped,
            triggers: window.triggers.map(\.id), covered: window.covered.map(\.id),
            engagements: window.engagements.map { engagement in
                EngagementState(
                    action: engagement.action, address: engagement.address, call: engagement.call?.id,
                    context: engagement.context, agentExtension: engagement.agentExtension,
                    generation: engagement.generation,
                    targets: engagement.targets.map { engaged in
                        EngagedTargetState(target: engaged.target, status: status(of: engaged, in: window))
                    })
            },
            actions: window.actionStates,
            mode: window.definition.mode.rawValue)
    }

    private func status(of engaged: EngagedTarget, in window: Window) -> EngagedTargetState.Status {
        if window.definition.mode == .dryRun { return .simulated }
        if engaged.assumedApplied { return .applied }
        // Answered (confirmed or failed) counts as applied: it may be in place. Still under way
        // counts as pending: a restart sends it again under the same idempotency key.
        if engaged.applyJobs.isEmpty || engaged.applyJobs.contains(where: { jobs[$0] != nil }) { return .pending }
        return .applied
    }

    /// Brings back what a previous run persisted: windows reopen with their original open time,
    /// so their caps continue; actions not known to be in place are sent again under the same
    /// idempotency keys; unconfirmed undos are sent again. Call once, before the first event.
    public func restore(_ state: EngineState, now: MonotonicInstant, wallNow: Int64) {
        var restoredWindows = 0
        var dropped = 0
        for saved in state.windows {
            guard let policy = policies.firstIndex(where: { $0.definition.name == saved.policy }),
                let window = rebuild(saved, policy: policy, now: now, wallNow: wallNow)
            else {
                // The policy is gone from the configuration: close it as a reload would.
                if let window = rebuild(saved, policy: -1, now: now, wallNow: wallNow) {
                    register(window)
                    close(window, reason: .policyRemoved, now: now)
                }
                dropped += 1
                continue
            }
            restoredWindows += 1
            register(window)
            if let key = window.extensionKey {
                extensionWindows[key] = window
            } else {
                self.restoredWindows[RestoredKey(policy: policy, call: window.subject)] = window
            }
            for (index, engagement) in window.engagements.enumerated() {
                for (targetIndex, engaged) in engagement.targets.enumerated() where !engaged.assumedApplied {
                    startApply(window, engagement: index, targetIndex: targetIndex, now: now)
                }
            }
        }
        for undo in state.pendingUndos {
            let policy = policies.firstIndex { $0.definition.name == undo.window.policy } ?? -1
            guard let window = rebuild(undo.window, policy: policy, now: now, wallNow: wallNow),
                undo.engagement < window.engagements.count,
                let targetIndex = window.engagements[undo.engagement].targets.firstIndex(where: { $0.target == undo.target })
            else { continue }
            window.isOpen = false
            window.protectionWanted = false
            startUndo(window, engagement: undo.engagement, targetIndex: targetIndex, now: now)
        }
        if !state.isEmpty {
            audit(
                .stateRestored, .notice,
                "restored \(restoredWindows) open window(s) and \(state.pendingUndos.count) pending undo(s) from the "
                    + "state file" + (dropped > 0 ? "; \(dropped) window(s) of removed policies closed" : ""),
                [.result: "restored"])
        }
    }

    private func rebuild(_ saved: WindowState, policy: Int, now: MonotonicInstant, wallNow: Int64) -> Window? {
        let actions = saved.actions.map {
            ActionSpec(
                kind: $0.kind, target: $0.target, addressing: $0.byExtension ? .agentExtension : .call,
                deadline: .nanoseconds($0.deadlineNanoseconds), fallback: $0.fallback)
        }
        guard let mode = PolicyMode(rawValue: saved.mode) else { return nil }
        var definition =
            policy >= 0
            ? policies[policy].definition
            : PolicyDefinition(
                name: saved.policy, feeds: [saved.feed], start: .all([]), actions: actions)
        definition.actions = actions
        definition.mode = mode
        let subject = CallKey(feed: saved.feed, id: saved.call.primary)
        let openedAt = now - .nanoseconds(max(0, wallNow - saved.openedAtWallNanoseconds))
        var extensionKey: ExtensionWindowKey?
        if saved.extensionScope, let ext = saved.agentExtension, policy >= 0 {
            extensionKey = ExtensionWindowKey(policy: policy, ext: ExtensionKey(feed: saved.feed, agentExtension: ext))
        }
        let window = Window(
            id: nextWindowID, policy: policy, sequence: saved.sequence, subject: subject, extensionKey: extensionKey,
            openedAt: openedAt, agentExtension: saved.agentExtension,
            covered: saved.covered.map { CallKey(feed: saved.feed, id: $0) }, definition: definition,
            actionStates: ActionSpecState.states(of: definition))
        nextWindowID += 1
        window.triggers = saved.triggers.map { CallKey(feed: saved.feed, id: $0) }
        window.restored = true
        window.openingSequence = saved.openingSequence
        for engagement in saved.engagements where engagement.action < actions.count {
            window.engagements.append(
                Engagement(
                    action: engagement.action, address: engagement.address,
                    call: engagement.call.map { CallKey(feed: saved.feed, id: $0) }, context: engagement.context,
                    agentExtension: engagement.agentExtension,
                    targets: engagement.targets.map { target in
                        EngagedTarget(target: target.target, assumedApplied: target.status != .pending)
                    },
                    generation: engagement.generation))
        }
        return window
    }

    /// The restored windows a call held before the restart, by its policy routing.
    func restoredWindowsHeld(by key: CallKey) -> [Window] {
        guard !restoredWindows.isEmpty, let routing = policiesByFeed[key.feed] else { return [] }
        return routing.compactMap { restoredWindows[RestoredKey(policy: $0, call: key)] }
    }

    /// An event a feed replays after a restart (a resync, say) that is not newer than the event
    /// that opened a restored window says nothing new: applying it could close the window.
    func isStaleForRestoredWindow(_ update: CallUpdate, key: CallKey) -> Bool {
        guard let sequence = update.sequence else { return false }
        return restoredWindowsHeld(by: key).contains { window in
            window.openingSequence.map { sequence <= $0 } ?? false
        }
    }

    /// A call seen for the first time since a restart takes back the windows it held.
    func reattachRestoredWindows(to call: TrackedCall) {
        guard !restoredWindows.isEmpty || !extensionWindows.isEmpty else { return }
        for (slot, policy) in call.routing.enumerated() {
            if let window = restoredWindows.removeValue(forKey: RestoredKey(policy: policy, call: call.key)),
                window.isOpen
            {
                call.slots[slot].window = window
                call.slots[slot].armed = false
                if let opening = window.openingSequence { call.lastSequence = max(call.lastSequence ?? 0, opening) }
            } else if policies[policy].definition.scope == .agentExtension, let ext = call.agentExtension,
                let window = extensionWindows[
                    ExtensionWindowKey(policy: policy, ext: ExtensionKey(feed: call.key.feed, agentExtension: ext))],
                window.restored, window.triggers.contains(call.key)
            {
                call.slots[slot].window = window
                call.slots[slot].armed = false
            }
        }
    }
}
