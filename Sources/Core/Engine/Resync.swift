import MutewardenModel

/// What a resync changed.
public struct ResyncOutcome: Sendable, Hashable {
    /// Tracked calls the platform no longer has: they ended while the feed was down.
    public var callsEnded = 0
    /// Calls the platform listed, applied like ordinary events.
    public var callsUpdated = 0
    /// Actions sent again because the platform's reported state disagreed with an open window.
    public var actionsReapplied = 0
}

extension Engine {
    /// Reconciles a feed with the platform's list of its current calls, taken right after the feed
    /// (re)connected, when events may have been missed:
    /// - a tracked call (or a restored window's call) missing from the list ended while the feed was
    ///   down: it leaves, and its windows close without an undo to it;
    /// - every listed call is applied like an event, so a capture under way opens its windows;
    /// - an open window whose call reports a state that contradicts what it applied (the agent is
    ///   reported unmuted while the window holds a mute) has that action sent again.
    public func resync(feed: String, current: [CallUpdate], at now: MonotonicInstant) -> ResyncOutcome {
        var outcome = ResyncOutcome()
        let listed = Set(current.map(\.ids.primary))
        let gone = calls.values.filter { $0.key.feed == feed && !listed.contains($0.key.id) }
        for call in gone.sorted(by: { $0.key.id < $1.key.id }) {
            outcome.callsEnded += 1
            forget(call, now: now, reason: .callEnded)
            rememberReleased(call.key, now: now)
        }
        // Windows restored from the state file whose call the platform no longer has.
        for window in openWindows.values.sorted(by: { $0.id < $1.id })
        where window.restored && window.subject.feed == feed && calls[window.subject] == nil
            && !listed.contains(window.subject.id)
        {
            rememberReleased(window.subject, now: now)
            outcome.callsEnded += 1
            close(window, reason: .callEnded, now: now)
        }
        resyncing = true
        defer { resyncing = false }
        for update in current where update.feed == feed {
            // The listing is the platform's present, not a replay: it is never stale.
            var fresh = update
            fresh.sequence = nil
            ingest(fresh, at: now)
            outcome.callsUpdated += 1
        }
        outcome.actionsReapplied = reapplyContradicted(feed: feed, now: now)
        reportOrphans(listed: current.filter { $0.feed == feed }, now: now)
        return outcome
    }

    /// Sends again the applies that the platform's reported state contradicts.
    private func reapplyContradicted(feed: String, now: MonotonicInstant) -> Int {
        var count = 0
        for window in openWindows.values.sorted(by: { $0.id < $1.id }) where window.subject.feed == feed {
            guard window.definition.mode == .enforce else { continue }
            for index in window.engagements.indices {
                let engagement = window.engagements[index]
                let spec = window.definition.actions[engagement.action]
                guard let targetIndex = engagement.targets.indices.last,
                    targets[engagement.targets[targetIndex].target]?.confirmsByEvent == true,
                    !engagement.targets[targetIndex].applyJobs.contains(where: { jobs[$0] != nil }),
                    let callKey = engagement.call ?? window.covered.first, let call = calls[callKey],
                    let contradiction = contradiction(spec.kind, call)
                else { continue }
                reapply(window, engagement: index, call: call, contradiction: contradiction + " after the feed reconnected", now: now)
                count += 1
            }
        }
        return count
    }

    /// A listed call paused or muted with no open window to explain it: nothing here would ever
    /// undo it. Reported, since only an operator can tell a window lost in a crash from someone
    /// else's action.
    private func reportOrphans(listed: [CallUpdate], now: MonotonicInstant) {
        for update in listed {
            let key = CallKey(feed: update.feed, id: update.ids.primary)
            guard let call = calls[key] else { continue }
            var held: [String] = []
            if call.recording == .paused { held.append("the recording is paused") }
            if call.mute == .on { held.append("the agent is muted") }
            guard !held.isEmpty, (windowsBySubject[key] ?? []).isEmpty, extensionWindowsCovering(call).isEmpty else { continue }
            var fields: AuditFields = [.feed: update.feed, .call: key.id, .reason: held.joined(separator: ", "), .result: "orphaned"]
            fields.extension = call.agentExtension
            audit(
                .windowOrphaned, .warning,
                "call \(key.id) on feed \(update.feed): \(held.joined(separator: " and ")), and no open window explains it "
                    + "(a window opened just before a crash, or someone else's action): check it on the platform", fields)
        }
    }
}
