import MutewardenModel

/// Why a window closed. The raw value is the audit record's `result`.
enum CloseReason: String {
    case stopped
    /// A reload removed the policy: its windows close as if the capture had ended.
    case policyRemoved = "policy-removed"
    case callEnded = "call-ended"
    case capExpired = "cap-expired"
    case callExpired = "call-expired"
}

struct ExtensionWindowKey: Hashable {
    var policy: Int
    var ext: Engine.ExtensionKey
}

/// One target an engagement has used: the action's own target, then each fallback tried.
struct EngagedTarget {
    let target: String
    /// Every apply job sent to this target for the engagement (a re-send for a call that joined
    /// an extension window adds one); each may have finished. All must be settled at close.
    var applyJobs: [UInt64] = []
    /// Counts as applied without a job of this process: a dry-run policy "applied" it without
    /// sending anything, or it was applied before a restart.
    var assumedApplied = false
}

/// One action of a window, bound to one address (a covered call, or the agent's extension).
struct Engagement {
    let action: Int
    let address: ActionAddress
    /// The covered call for `by: call`; nil for `by: extension`.
    let call: Engine.CallKey?
    /// The call whose ids travel with the request, for the provider's context.
    let context: CallIdentifiers
    let agentExtension: String?
    var targets: [EngagedTarget]
    /// Bumped when an extension action is sent again for a call that joined the window, so that
    /// the re-send has its own idempotency key.
    var generation: UInt64 = 0
    /// When the first apply was sent: what an `action.recovered` counts the unprotected time from.
    var applyStartedAt: MonotonicInstant?
    /// When the latest apply was confirmed; nil while none is, or after a drift.
    var confirmedAt: MonotonicInstant?
    /// An apply failed its control; `recovered` once one was confirmed after that.
    var controlFailed = false
    var recovered = false
    /// Reported states that contradicted the action while it was in place.
    var drifts = 0
}

/// An open policy window: the span during which the policy's actions must hold on its calls.
final class Window {
    let id: UInt64
    /// The policy's index in the current configuration; remapped by a reload.
    var policy: Int
    /// The policy as it was when the window opened. Its actions, and so their undo, stay as they
    /// were even if a reload changes the policy: a reload never lifts protection mid-capture.
    let definition: PolicyDefinition
    /// When the cap closes the window: the open time plus the current policy's `max_duration`.
    var capAt: MonotonicInstant
    /// Restored from the state file: its calls may not have been seen since the restart.
    var restored = false
    /// The provider's sequence number of the event that opened the window, when the provider
    /// numbers events: after a restart, older or replayed events of the call are stale.
    var openingSequence: UInt64?
    /// The provider's sequence number of the event that opened the window or, for providers that
    /// do not number their events, how many windows this policy has opened for the same call or
    /// extension. Part of the idempotency key: the same in every replica that sees the same events
    /// and, when the provider numbers events, across restarts too.
    let sequence: UInt64
    let subject: Engine.CallKey
    var extensionKey: ExtensionWindowKey?
    let openedAt: MonotonicInstant
    /// The opening call's extension, kept for audit records after that call is gone.
    let agentExtension: String?
    /// Calls whose start condition holds the window open.
    var triggers: [Engine.CallKey]
    /// Calls the window's actions cover.
    var covered: [Engine.CallKey]
    var engagements: [Engagement] = []
    var isOpen = true
    /// The fields every record about this window carries, built once.
    let fields: AuditFields
    /// `definition`'s actions as the state file has them.
    let actionStates: [ActionSpecState]
    /// Whether the actions should still hold: true while open, and after a cap expiry with
    /// `on_timeout: keep`. A failed apply falls back to the next target only while this holds.
    var protectionWanted = true
    /// Waiting in ``Engine/windowsToPersist`` for its state-file entry to be rebuilt.
    var needsPersisting = false

    init(
        id: UInt64, policy: Int, sequence: UInt64, subject: Engine.CallKey, extensionKey: ExtensionWindowKey?,
        openedAt: MonotonicInstant, agentExtension: String?, covered: [Engine.CallKey], definition: PolicyDefinition,
        actionStates: [ActionSpecState]
    ) {
        self.actionStates = actionStates
        self.agentExtension = agentExtension
        var fields: AuditFields = [
            .policy: definition.name, .feed: subject.feed, .call: subject.id, .window: String(sequence),
            .mode: definition.mode.rawValue,
        ]
        fields.extension = agentExtension
        self.fields = fields
        self.id = id
        self.policy = policy
        self.definition = definition
        capAt = openedAt + definition.maxDuration
        self.sequence = sequence
        self.subject = subject
        self.extensionKey = extensionKey
        self.openedAt = openedAt
        triggers = [subject]
        self.covered = covered
    }
}

extension Engine {
    // MARK: - Evaluation

    func evaluate(policy index: Int, slot: Int, call: TrackedCall, now: MonotonicInstant) {
        let policy = policies[index]
        let startHolds = policy.start.holds(attributes: call.attributes, state: call.state)
        if !startHolds, !call.slots[slot].armed { call.slots[slot].armed = true }

        if let window = call.slots[slot].window {
            let stopHolds = policy.stop?.holds(attributes: call.attributes, state: call.state) ?? !startHolds
            guard stopHolds else { return }
            call.slots[slot].window = nil
            window.triggers.removeAll { $0 == call.key }
            touch(window)
            if window.triggers.isEmpty { close(window, reason: .stopped, now: now) }
            return
        }
        guard startHolds, call.slots[slot].armed else { return }
        // Both at once (e.g. first seen after the capture already finished): nothing to protect.
        if let stop = policy.stop, stop.holds(attributes: call.attributes, state: call.state) { return }
        call.slots[slot].armed = false
        open(policy: index, slot: slot, call: call, now: now)
    }

    // MARK: - Opening

    private func open(policy index: Int, slot: Int, call: TrackedCall, now: MonotonicInstant) {
        let definition = policies[index].definition
        let window: Window
        if definition.scope == .agentExtension, let ext = call.agentExtension {
            let key = ExtensionWindowKey(policy: index, ext: ExtensionKey(feed: call.key.feed, agentExtension: ext))
            if let existing = extensionWindows[key] {
                // Another capture on the same agent: the window already covers this call.
                existing.triggers.append(call.key)
                touch(existing)
                call.slots[slot].window = existing
                return
            }
            let count = (extensionWindowsOpened[key] ?? 0) + 1
            extensionWindowsOpened[key] = count
            let sequence = call.lastSequence ?? count
            window = Window(
                id: nextWindowID, policy: index, sequence: sequence, subject: call.key, extensionKey: key,
                openedAt: now, agentExtension: ext, covered: activeCalls(on: key.ext), definition: definition,
                actionStates: policies[index].actionStates)
            extensionWindows[key] = window
        } else {
            call.slots[slot].windowsOpened += 1
            window = Window(
                id: nextWindowID, policy: index, sequence: call.lastSequence ?? call.slots[slot].windowsOpened,
                subject: call.key,
                extensionKey: nil, openedAt: now, agentExtension: call.agentExtension, covered: [call.key],
                definition: definition, actionStates: policies[index].actionStates)
        }
        nextWindowID += 1
        window.openingSequence = call.lastSequence
        call.slots[slot].window = window
        register(window)
        audit(
            .windowOpened, .notice,
            "\(definition.name): window opened on call \(call.key.id)"
                + (window.extensionKey.map { " covering extension \($0.ext.agentExtension)" } ?? ""),
            window.fields.overlaid(with: [.attributes: options.renderAttributes(call.attributes), .result: "opened"]))

        for (actionIndex, action) in definition.actions.enumerated() {
            switch action.addressing {
            case .call:
                for covered in window.covered {
                    guard let coveredCall = calls[covered] else { continue }
                    engage(window, action: actionIndex, address: .call(id: covered.id), call: coveredCall, now: now)
                }
            case .agentExtension:
                engage(window, action: actionIndex, address: nil, call: call, now: now)
            }
        }
        // After the sends: the journal's write never comes before the pause.
        journalOpened(window)
    }

    /// Binds one action to one address and starts applying it on the action's own target.
    /// `address` nil means "the call's extension".
    private func engage(_ window: Window, action: Int, address: ActionAddress?, call: TrackedCall, now: MonotonicInstant) {
        let spec = window.definition.actions[action]
        guard let resolved = address ?? call.agentExtension.map(ActionAddress.agentExtension) else {
            // Addressing by extension is impossible without one: that is a control failure now,
            // not after a deadline.
            stats.controlFailures += 1
            audit(
                .actionFailed, .critical,
                "PCI control failure: \(window.definition.name) cannot \(spec.kind.operation(.apply)) "
                    + "call \(call.key.id) by extension: the feed reported no extension for it",
                window.fields.overlaid(with: [
                    .target: spec.target, .action: spec.kind.operation(.apply), .result: "failed",
                    .reason: "no-extension",
                ]))
            return
        }
        window.engagements.append(
            Engagement(
                action: action, address: resolved, call: address == nil ? nil : call.key, context: call.ids,
                agentExtension: call.agentExtension, targets: [EngagedTarget(target: spec.target)]))
        touch(window)
        startApply(window, engagement: window.engagements.count - 1, targetIndex: 0, now: now)
    }

    /// A call joined an extension that has open extension windows: cover it too.
    func extendExtensionWindows(to call: TrackedCall, on key: ExtensionKey) {
        guard let routing = policiesByFeed[key.feed] else { return }
        for index in routing where policies[index].definition.scope == .agentExtension {
            guard let window = extensionWindows[ExtensionWindowKey(policy: index, ext: key)], window.isOpen,
                !window.covered.contains(call.key)
            else { continue }
            window.covered.append(call.key)
            touch(window)
            audit(
                .windowOpened, .notice,
                "\(policies[index].definition.name): window on extension \(key.agentExtension) now covers new call \(call.key.id)",
                window.fields.overlaid(with: [.call: call.key.id, .result: "extended"]))
            let now = call.lastEventAt
            for (actionIndex, action) in window.definition.actions.enumerated() {
                switch action.addressing {
                case .call:
                    engage(window, action: actionIndex, address: .call(id: call.key.id), call: call, now: now)
                case .agentExtension:
                    // Platforms that mute "all calls on the extension" miss calls made afterwards:
                    // send the extension action again.
                    for engagementIndex in window.engagements.indices
                    where window.engagements[engagementIndex].action == actionIndex {
                        window.engagements[engagementIndex].generation += 1
                        touch(window)
                        let targetIndex = window.engagements[engagementIndex].targets.count - 1
                        startApply(window, engagement: engagementIndex, targetIndex: targetIndex, now: now)
                    }
                }
            }
        }
    }

    func extensionWindowsCovering(_ call: TrackedCall) -> [Window] {
        guard let ext = call.agentExtension, let routing = policiesByFeed[call.key.feed] else { return [] }
        let extKey = ExtensionKey(feed: call.key.feed, agentExtension: ext)
        return routing.compactMap { index in
            guard policies[index].definition.scope == .agentExtension,
                let window = extensionWindows[ExtensionWindowKey(policy: index, ext: extKey)],
                window.covered.contains(call.key)
            else { return nil }
            return window
        }
    }

    // MARK: - Closing

    /// A call left a window (it ended or expired).
    func callLeft(_ window: Window, call: CallKey, now: MonotonicInstant, reason: CloseReason) {
        guard window.isOpen else { return }
        window.triggers.removeAll { $0 == call }
        window.covered.removeAll { $0 == call }
        touch(window)
        if window.triggers.isEmpty { close(window, reason: reason, now: now) }
    }

    func capExpired(_ window: Window, now: MonotonicInstant) {
        // While stopping, open windows stay as they are: muted stays muted. A reload may have
        // moved the cap: an earlier timer for the same window then finds it not yet due.
        guard window.isOpen, !shuttingDown, now >= window.capAt else { return }
        close(window, reason: .capExpired, now: now)
    }

    func close(_ window: Window, reason: CloseReason, now: MonotonicInstant) {
        guard window.isOpen else { return }
        window.isOpen = false
        unregister(window)
        if let key = window.extensionKey { extensionWindows[key] = nil }
        if window.restored { restoredWindows[RestoredKey(policy: window.policy, call: window.subject)] = nil }
        for trigger in window.triggers {
            guard let call = calls[trigger], let slot = policiesByFeed[trigger.feed]?.firstIndex(of: window.policy)
            else { continue }
            if call.slots[slot].window === window { call.slots[slot].window = nil }
        }
        window.triggers.removeAll()

        let definition = window.definition
        // The cap's rule is the current policy's, if it still exists.
        let onTimeout = window.policy >= 0 ? policies[window.policy].definition.onTimeout : definition.onTimeout
        let undo: Bool
        switch reason {
        case .stopped, .callEnded, .policyRemoved: undo = true
        case .capExpired: undo = onTimeout == .resume
        // The call may still be live and merely quiet: muted stays muted, the safe side.
        case .callExpired: undo = false
        }
        window.protectionWanted = !undo

        let duration = now.since(window.openedAt)
        var fields = window.fields
        fields[.result] = reason.rawValue
        fields[.latencyMs] = formatMilliseconds(duration)
        // An assessor must be able to tell a window that closed protected from one that never was.
        let unprotected = window.engagements.filter { $0.controlFailed && !$0.recovered }.map { engagement in
            "\(definition.actions[engagement.action].kind.operation(.apply)) \(engagement.address)"
        }
        let unprotectedNote =
            unprotected.isEmpty ? "" : "; still unprotected at close: \(unprotected.joined(separator: ", ")) never confirmed"
        if !unprotected.isEmpty { fields[.reason] = "unprotected" }
        if reason == .capExpired {
            let consequence =
                undo
                ? "its actions are undone (on_timeout: resume): check that the capture really ended"
                : "its actions stay in place (on_timeout: keep): an operator must undo them"
            audit(
                .windowClosed, .error,
                "\(definition.name): window on call \(window.subject.id) reached its cap of \(window.capAt.since(window.openedAt).compact); "
                    + consequence + unprotectedNote, fields)
        } else {
            audit(
                .windowClosed, unprotected.isEmpty ? .notice : .error,
                "\(definition.name): window closed on call \(window.subject.id) (\(reason.rawValue)) after \(duration.compact)"
                    + unprotectedNote, fields)
        }
        for index in window.engagements.indices { settle(window, engagement: index, undo: undo, now: now) }
        journalClosed(window)
    }

    /// Stops or lets finish the engagement's apply jobs, then sends the undo where the apply may
    /// have taken effect and the address still refers to a live call.
    private func settle(_ window: Window, engagement index: Int, undo: Bool, now: MonotonicInstant) {
        guard undo else { return }
        let engagement = window.engagements[index]
        let addressLive: Bool
        if let call = engagement.call {
            // A restored window's call may simply not have had an event since the restart.
            addressLive = calls[call] != nil || (window.restored && released[call] == nil)
        } else if case .agentExtension(let ext) = engagement.address {
            addressLive =
                window.restored || !activeCalls(on: ExtensionKey(feed: window.subject.feed, agentExtension: ext)).isEmpty
        } else {
            addressLive = false
        }
        for targetIndex in engagement.targets.indices {
            let engaged = engagement.targets[targetIndex]
            var mayHaveTakenEffect = engaged.assumedApplied
            // Newest first, so that stopping a queued job never starts one we are about to stop.
            for jobID in engaged.applyJobs.reversed() {
                guard let job = jobs[jobID] else {
                    mayHaveTakenEffect = true  // finished: sent at least once (or dropped unsent: an extra undo is harmless)
                    continue
                }
                switch job.phase {
                case .queued:
                    finish(job, now: now, outcome: .abandoned("the window closed before the action was sent"))
                case .backoff, .awaitingConfirmation:
                    finish(job, now: now, outcome: .abandoned("the window closed first"))
                    mayHaveTakenEffect = true
                case .inFlight:
                    // Let the attempt answer; the undo queues behind it on the same lane, so it
                    // can never overtake it.
                    job.cancelRequested = true
                    mayHaveTakenEffect = true
                }
            }
            if mayHaveTakenEffect, addressLive {
                startUndo(window, engagement: index, targetIndex: targetIndex, now: now)
            }
        }
    }

}

func formatMilliseconds(_ duration: Duration) -> String {
    let micros = duration.nanosecondsClamped / 1000
    let whole = micros / 1000
    let fraction = micros % 1000
    let padded = String(fraction).count < 3 ? String(repeating: "0", count: 3 - String(fraction).count) + String(fraction) : String(fraction)
    return "\(whole).\(padded)"
}

struct RestoredKey: Hashable {
    var policy: Int
    var call: Engine.CallKey
}

extension Engine {
    func register(_ window: Window) {
        openWindows[window.id] = window
        windowsBySubject[window.subject, default: []].append(window)
        timers.schedule(.cap(window.id), at: window.capAt)
        touch(window)
    }

    func unregister(_ window: Window) {
        openWindows[window.id] = nil
        if var list = windowsBySubject[window.subject] {
            list.removeAll { $0 === window }
            windowsBySubject[window.subject] = list.isEmpty ? nil : list
        }
        touch(window)
        pruneTimersIfMostlyDead()
    }

    /// Every live timer belongs to an open window or a job; once dead entries outnumber them
    /// three to one, a rebuild (linear) costs less than the memory they hold.
    private func pruneTimersIfMostlyDead() {
        let live = openWindows.count + jobs.count
        guard timers.count > 4_096, timers.count > 4 * live else { return }
        timers.prune { payload in
            switch payload {
            case .cap(let id): openWindows[id] != nil
            case .deadline(let job), .retry(let job, _): jobs[job] != nil
            }
        }
    }

    func noteStateChange() { stateVersion &+= 1 }

    /// Every change to what the state file says of a window comes through here: the window's
    /// entry is rebuilt at the next snapshot, and only then (a window that changes five times in
    /// a second is rebuilt once). The engine tests compare the result with a full rebuild after
    /// every step, so a change that bypasses this shows there.
    func touch(_ window: Window) {
        noteStateChange()
        guard !window.needsPersisting else { return }
        window.needsPersisting = true
        windowsToPersist.append(window)
        // Nobody may be taking snapshots (a daemon whose state directory is unusable, a
        // benchmark): the list must not grow with every window ever opened, nor keep closed
        // windows alive. Past this size most of it is closed windows, whose entries are dropped
        // now rather than at the next snapshot.
        if windowsToPersist.count - windowsToPersistHead > 2 * openWindows.count + 1_024 { dropClosedWindowsToPersist() }
    }

    private func dropClosedWindowsToPersist() {
        var kept: [Window] = []
        for window in windowsToPersist[windowsToPersistHead...] {
            if openWindows[window.id] === window {
                kept.append(window)
            } else {
                window.needsPersisting = false
                persistedWindows[window.id] = nil
            }
        }
        windowsToPersist = kept
        windowsToPersistHead = 0
    }

    /// The call's ids are part of the entry of every window it opened.
    func touchWindows(openedBy key: CallKey) {
        guard let windows = windowsBySubject[key] else { return }
        for window in windows { touch(window) }
    }
}
