import MutewardenModel

/// What a reload did to the windows that were open.
public struct ReloadOutcome: Sendable, Hashable {
    /// Windows whose policy still exists: they stay open.
    public var windowsKept = 0
    /// Windows whose policy was removed: closed, their actions undone.
    public var windowsClosed = 0
}

extension Engine {
    /// Replaces the configuration while calls and windows stay. The rule, which docs/operations.md
    /// states for operators:
    /// - a window whose policy still exists (same name) stays open. It keeps the actions it applied
    ///   (a reload never lifts protection mid-capture); its stop condition, cap and `on_timeout`
    ///   become the new policy's, the cap still counted from the original open time;
    /// - a window whose policy was removed closes, and its actions are undone, as if the capture
    ///   had ended;
    /// - new and changed policies apply to every window opened from now on.
    /// Throws only for a regex that does not compile, which the loader has already refused.
    public func reconfigure(_ configuration: EngineConfiguration, at now: MonotonicInstant) throws -> ReloadOutcome {
        let compiled = try configuration.policies.map { definition in
            CompiledPolicy(
                definition: definition, start: try CompiledCondition(definition.start),
                stop: try definition.stop.map(CompiledCondition.init))
        }
        let oldPolicies = policies
        var newIndex: [String: Int] = [:]
        for (index, policy) in compiled.enumerated() { newIndex[policy.definition.name] = index }
        let remap = oldPolicies.map { newIndex[$0.definition.name] ?? -1 }

        // Close windows of removed policies first, under the old configuration they belong to.
        var outcome = ReloadOutcome()
        for window in openWindows.values.sorted(by: { $0.id < $1.id }) {
            if window.policy < 0 || remap[window.policy] < 0 {
                close(window, reason: .policyRemoved, now: now)
                outcome.windowsClosed += 1
            } else {
                outcome.windowsKept += 1
            }
        }

        // Swap the configuration.
        policies = compiled
        policiesByFeed = [:]
        needsExtensionIndex = false
        for (index, definition) in configuration.policies.enumerated() {
            for feed in definition.feeds { policiesByFeed[feed, default: []].append(index) }
            if definition.scope == .agentExtension || definition.actions.contains(where: { $0.addressing == .agentExtension }) {
                needsExtensionIndex = true
            }
        }
        targets = [:]
        for target in configuration.targets { targets[target.name] = target }
        limits = configuration.limits

        // Windows follow their policy to its new index, cap and extension key.
        var movedExtensionWindows: [ExtensionWindowKey: Window] = [:]
        for window in openWindows.values {
            window.policy = remap[window.policy]
            window.capAt = window.openedAt + policies[window.policy].definition.maxDuration
            timers.schedule(.cap(window.id), at: window.capAt)
            if let key = window.extensionKey {
                let moved = ExtensionWindowKey(policy: window.policy, ext: key.ext)
                window.extensionKey = moved
                movedExtensionWindows[moved] = window
            }
        }
        extensionWindows = movedExtensionWindows
        var movedCounts: [ExtensionWindowKey: UInt64] = [:]
        for (key, count) in extensionWindowsOpened where remap[key.policy] >= 0 {
            movedCounts[ExtensionWindowKey(policy: remap[key.policy], ext: key.ext)] = count
        }
        extensionWindowsOpened = movedCounts
        var movedRestored: [RestoredKey: Window] = [:]
        for (key, window) in restoredWindows where window.isOpen {
            movedRestored[RestoredKey(policy: window.policy, call: key.call)] = window
        }
        restoredWindows = movedRestored

        // Every tracked call gets the new routing; a policy that stays keeps its per-call state.
        var rebuilt: [CallKey: TrackedCall] = [:]
        rebuilt.reserveCapacity(calls.count)
        callsByExtension = [:]
        for (key, old) in calls {
            let routing = policiesByFeed[key.feed] ?? []
            let call = TrackedCall(copying: old, routing: routing)
            for (slot, policy) in routing.enumerated() {
                guard let oldSlot = old.routing.firstIndex(where: { remap[$0] == policy }) else { continue }
                call.slots[slot] = old.slots[oldSlot]
            }
            rebuilt[key] = call
            if needsExtensionIndex, let ext = call.agentExtension {
                callsByExtension[ExtensionKey(feed: key.feed, agentExtension: ext), default: []].append(key)
            }
        }
        calls = rebuilt
        // Rare enough to rebuild every entry rather than reason about which a reload changed.
        for window in openWindows.values { touch(window) }
        noteStateChange()
        return outcome
    }
}

extension Engine.TrackedCall {
    /// A copy with another policy routing, for a reload: slots start fresh and are carried over by
    /// the caller.
    convenience init(copying other: Engine.TrackedCall, routing: [Int]) {
        self.init(
            key: other.key,
            update: CallUpdate(
                feed: other.key.feed, ids: other.ids, agentExtension: other.agentExtension, direction: other.direction,
                state: other.state),
            routing: routing, now: other.lastEventAt)
        attributes = other.attributes
        mute = other.mute
        recording = other.recording
        lastSequence = other.lastSequence
        awaitingConfirmation = other.awaitingConfirmation
    }
}
