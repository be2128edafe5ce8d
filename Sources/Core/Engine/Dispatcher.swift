import MutewardenModel

/// Actions to one target, of one kind, for one address run one at a time in order, so an undo
/// can never overtake its apply.
struct LaneKey: Hashable {
    var target: String
    var kind: ActionKind
    var feed: String
    var address: ActionAddress

    // The address and the target tell lanes apart well enough; equality compares every part.
    func hash(into hasher: inout Hasher) {
        switch address {
        case .call(let id): hasher.combine(id)
        case .agentExtension(let ext): hasher.combine(ext)
        }
        hasher.combine(target)
    }
}

/// One action (an apply or an undo, to one target) on its way to confirmation.
final class ActionJob {
    enum Phase {
        /// Behind another job on its lane.
        case queued
        case inFlight
        /// Waiting for the next retry.
        case backoff
        /// Accepted; waiting for the call event that confirms it.
        case awaitingConfirmation
    }

    let id: UInt64
    var request: ActionRequest
    let lane: LaneKey
    let spec: ActionSpec
    let window: Window
    let engagement: Int
    let confirmsByEvent: Bool
    /// Calls whose reported state must show the result.
    let confirmCalls: [Engine.CallKey]
    /// Built once: "policy: operation address via target", and the fields of every record.
    let label: String
    let fields: AuditFields
    var phase: Phase = .queued
    var attempts = 0
    var activatedAt: MonotonicInstant?
    var deadline: MonotonicInstant?
    var lastError: ActionFailure?
    var cancelRequested = false
    /// Failed its control (and its fallbacks failed too) while its window is open: tried again
    /// at growing intervals, with no deadline, until confirmed or the window closes.
    var enforcing = false
    var enforcements = 0

    init(
        id: UInt64, request: ActionRequest, lane: LaneKey, spec: ActionSpec, window: Window, engagement: Int,
        confirmsByEvent: Bool, confirmCalls: [Engine.CallKey]
    ) {
        self.id = id
        self.request = request
        self.lane = lane
        self.spec = spec
        self.window = window
        self.engagement = engagement
        self.confirmsByEvent = confirmsByEvent
        self.confirmCalls = confirmCalls
        label = "\(request.policy): \(request.kind.operation(request.verb)) \(request.address) via \(request.target)"
        var fields = window.fields
        fields.target = request.target
        fields.action = request.kind.operation(request.verb)
        fields.idempotencyKey = request.idempotencyKey
        // The address the target was sent, next to the feed's call id from the window: with a
        // recorder of another vendor, by extension, the two are how the records are matched up.
        switch request.address {
        case .call(let id): fields.call = id
        case .agentExtension(let ext): fields.extension = ext
        }
        self.fields = fields
    }
}

enum JobOutcome {
    case confirmed
    case failed
    case abandoned(String)
}

extension ActionAddress {
    /// Whether `call` is what this address acts on.
    func covers(_ call: Engine.TrackedCall) -> Bool {
        switch self {
        case .call(let id): call.key.id == id
        case .agentExtension(let ext): call.agentExtension == ext
        }
    }
}

extension Engine {
    // MARK: - Starting actions

    func startApply(_ window: Window, engagement index: Int, targetIndex: Int, now: MonotonicInstant) {
        if window.engagements[index].applyStartedAt == nil { window.engagements[index].applyStartedAt = now }
        if let jobID = dispatch(window, engagement: index, targetIndex: targetIndex, verb: .apply, now: now) {
            window.engagements[index].targets[targetIndex].applyJobs.append(jobID)
        } else {
            window.engagements[index].targets[targetIndex].assumedApplied = true
        }
        touch(window)
    }

    func startUndo(_ window: Window, engagement index: Int, targetIndex: Int, now: MonotonicInstant) {
        _ = dispatch(window, engagement: index, targetIndex: targetIndex, verb: .undo, now: now)
    }

    /// Queues one action on its lane, or in dry-run only records it. Returns the job's id.
    private func dispatch(_ window: Window, engagement index: Int, targetIndex: Int, verb: ActionVerb, now: MonotonicInstant)
        -> UInt64?
    {
        let definition = window.definition
        let engagement = window.engagements[index]
        let spec = definition.actions[engagement.action]
        let target = engagement.targets[targetIndex].target
        let key = IdempotencyKey.make(
            policy: definition.name, subject: window.subject.id, address: engagement.address,
            generation: engagement.generation, windowSequence: window.sequence, action: engagement.action,
            target: target, verb: verb)

        if definition.mode == .dryRun {
            audit(
                .dryRun, .notice,
                "\(definition.name) (dry-run): would \(spec.kind.operation(verb)) \(engagement.address) via \(target)",
                window.fields.overlaid(with: [
                    .target: target, .action: spec.kind.operation(verb), .idempotencyKey: key,
                    .result: "not-sent",
                ]))
            return nil
        }

        var request = ActionRequest(
            kind: spec.kind, verb: verb, target: target, address: engagement.address, feed: window.subject.feed,
            call: engagement.context, agentExtension: engagement.agentExtension, idempotencyKey: key, attempt: 0,
            policy: definition.name)
        if let call = engagement.call, let attributes = calls[call]?.attributes { request.attributes = attributes }
        let confirmCalls: [CallKey]
        switch engagement.address {
        case .call: confirmCalls = engagement.call.map { [$0] } ?? []
        case .agentExtension(let ext):
            confirmCalls = activeCalls(on: ExtensionKey(feed: window.subject.feed, agentExtension: ext))
        }
        let job = ActionJob(
            id: nextJobID, request: request,
            lane: LaneKey(target: target, kind: spec.kind, feed: window.subject.feed, address: engagement.address),
            spec: spec, window: window, engagement: index,
            confirmsByEvent: targets[target]?.confirmsByEvent ?? false, confirmCalls: confirmCalls)
        nextJobID += 1
        jobs[job.id] = job
        // An apply under way is "pending" in the window's entry.
        touch(window)
        lanes[job.lane, default: []].append(job.id)
        if lanes[job.lane]?.count == 1 { activate(job, now: now) }
        return job.id
    }

    private func activate(_ job: ActionJob, now: MonotonicInstant) {
        job.activatedAt = now
        let deadline = now + job.spec.deadline
        job.deadline = deadline
        timers.schedule(.deadline(job.id), at: deadline)
        startAttempt(job, now: now)
    }

    private func startAttempt(_ job: ActionJob, now: MonotonicInstant) {
        job.attempts += 1
        job.request.attempt = job.attempts
        job.request.timeLeft = job.deadline.map { $0.since(now) }
        job.phase = .inFlight
        effects.append(.send(job.request, AttemptTicket(job: job.id, attempt: job.attempts)))
        audit(
            .actionAttempt, .info,
            "\(job.label), attempt \(job.attempts)",
            jobFields(job).overlaid(with: [.result: "sent"]))
    }

    // MARK: - Results

    /// Reports how one attempt went. Late answers to attempts already given up on are ignored.
    public func attemptFinished(_ ticket: AttemptTicket, result: ActionAttemptResult, at now: MonotonicInstant) {
        guard let job = jobs[ticket.job], job.phase == .inFlight, job.attempts == ticket.attempt else { return }
        if job.cancelRequested {
            finish(job, now: now, outcome: .abandoned("the window closed while the attempt was in flight"))
            return
        }
        switch result {
        case .accepted:
            if isConfirmed(job) {
                finish(job, now: now, outcome: .confirmed)
            } else {
                job.phase = .awaitingConfirmation
                for key in job.confirmCalls where calls[key]?.awaitingConfirmation.contains(job.id) == false {
                    calls[key]?.awaitingConfirmation.append(job.id)
                }
                // Enforcing: no deadline any more, so a confirmation that never comes is asked
                // for again by sending again.
                if job.enforcing { scheduleEnforcement(job, now: now) }
            }
        case .failed(let failure):
            job.lastError = failure
            switch failure.disposition {
            case .callGone where addressIsGone(job):
                finish(job, now: now, outcome: .abandoned("the call is gone on the platform: \(failure)"))
            case .permanent:
                if job.enforcing { scheduleEnforcement(job, now: now, after: failure) } else { fail(job, now: now) }
            case .retryable, .callGone:
                // "The call is gone" while the feed still shows it live is not to be believed: a
                // wrong id, a platform lagging behind, or a transfer. It is a failure like any other.
                let doubt =
                    failure.disposition == .callGone ? " (the platform says the call is gone, but the feed still shows it live)" : ""
                if job.enforcing {
                    scheduleEnforcement(job, now: now, after: failure, note: doubt)
                    return
                }
                let retryAt = now + backoff(after: job.attempts, policy: job.spec.retry)
                guard let deadline = job.deadline, retryAt < deadline else {
                    fail(job, now: now)
                    return
                }
                job.phase = .backoff
                timers.schedule(.retry(job.id, attempt: job.attempts), at: retryAt)
                audit(
                    .actionRetry, .warning,
                    "\(job.label) failed (\(failure))\(doubt); retrying in \(retryAt.since(now).compact)",
                    jobFields(job).overlaid(with: [.result: "retry", .error: failure.message, .errorCode: failure.code ?? ""]))
            }
        }
    }

    /// Whether the feed agrees that what the job acts on is gone: its call released (or never
    /// tracked), or no live call left on its extension.
    private func addressIsGone(_ job: ActionJob) -> Bool {
        switch job.request.address {
        case .call(let id): calls[CallKey(feed: job.request.feed, id: id)] == nil
        case .agentExtension(let ext): activeCalls(on: ExtensionKey(feed: job.request.feed, agentExtension: ext)).isEmpty
        }
    }

    /// Keeps a failed apply going: the next attempt after 1 s, 2 s, 4 s... up to the action's
    /// `enforce_every`.
    private func scheduleEnforcement(_ job: ActionJob, now: MonotonicInstant, after failure: ActionFailure? = nil, note: String = "") {
        let cap = job.spec.retry.enforceInterval.nanosecondsClamped
        let grown = Int64(1_000_000_000) << Int64(min(job.enforcements, 20))
        let delay = Duration.nanoseconds(max(1, min(cap, grown)))
        job.enforcements += 1
        if job.phase != .awaitingConfirmation { job.phase = .backoff }
        timers.schedule(.retry(job.id, attempt: job.attempts), at: now + delay)
        guard let failure else { return }
        audit(
            .actionRetry, .warning,
            "\(job.label) still unprotected after its control failure: attempt \(job.attempts) failed (\(failure))\(note); "
                + "trying again in \(delay.compact)",
            jobFields(job).overlaid(with: [.result: "retry", .error: failure.message, .errorCode: failure.code ?? ""]))
    }

    /// Full jitter: uniformly random in [0, min(maximum, initial * 2^(attempt-1))].
    private func backoff(after attempt: Int, policy: RetryPolicy) -> Duration {
        let initial = policy.initialBackoff.nanosecondsClamped
        let (grown, overflow) = initial.multipliedReportingOverflow(by: 1 << Int64(min(attempt - 1, 30)))
        let ceiling = min(policy.maximumBackoff.nanosecondsClamped, overflow ? .max : grown)
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling, using: &random))
    }

    func retryDue(_ id: UInt64, attempt: Int, now: MonotonicInstant) {
        guard let job = jobs[id], job.attempts == attempt,
            job.phase == .backoff || (job.enforcing && job.phase == .awaitingConfirmation)
        else { return }
        if job.enforcing, shuttingDown {
            finish(job, now: now, outcome: .abandoned("the daemon stopped while the action was still unconfirmed after its control failure"))
            return
        }
        if job.phase == .awaitingConfirmation {
            for key in job.confirmCalls { calls[key]?.awaitingConfirmation.removeAll { $0 == job.id } }
        }
        startAttempt(job, now: now)
    }

    func deadlinePassed(_ id: UInt64, now: MonotonicInstant) {
        guard let job = jobs[id], !job.enforcing else { return }
        if shuttingDown, job.phase == .awaitingConfirmation {
            // The feeds have stopped, so no event can confirm it: not a control failure.
            finish(job, now: now, outcome: .abandoned("accepted, but the daemon stopped before an event confirmed it"))
        } else if job.cancelRequested {
            // Its window closed while it was in flight: that is not a control failure.
            finish(job, now: now, outcome: .abandoned("the window closed while the attempt was in flight"))
        } else {
            fail(job, now: now)
        }
    }

    private func expected(_ job: ActionJob, on call: TrackedCall) -> Bool {
        switch (job.request.kind, job.request.verb) {
        case (.mute, .apply): call.mute == .on
        case (.mute, .undo): call.mute == .off
        case (.pauseRecording, .apply): call.recording == .paused
        case (.pauseRecording, .undo): call.recording == .recording
        }
    }

    private func isConfirmed(_ job: ActionJob) -> Bool {
        guard job.confirmsByEvent else { return true }
        for key in job.confirmCalls {
            guard let call = calls[key] else { continue }
            if !expected(job, on: call) { return false }
        }
        return true
    }

    func checkConfirmations(for call: TrackedCall, now: MonotonicInstant) {
        let waiting = call.awaitingConfirmation
        for id in waiting {
            guard let job = jobs[id], job.phase == .awaitingConfirmation, isConfirmed(job) else { continue }
            finish(job, now: now, outcome: .confirmed)
        }
    }

    // MARK: - Ending jobs

    /// The action was not confirmed by its deadline, or was refused for good.
    private func fail(_ job: ActionJob, now: MonotonicInstant) {
        let isApply = job.request.verb == .apply
        let elapsed = job.activatedAt.map { now.since($0) } ?? .zero
        let lastError = job.lastError.map { "\($0)" } ?? "no confirmation received"
        let fallback = isApply && job.window.protectionWanted ? nextFallback(for: job) : nil
        // The last resort failed too: keep trying while the window wants protection.
        let keepEnforcing = isApply && fallback == nil && job.window.isOpen && job.window.protectionWanted && !shuttingDown
        var fields = jobFields(job)
        fields[.result] = "failed"
        fields[.latencyMs] = formatMilliseconds(elapsed)
        fields[.error] = lastError
        fields[.errorCode] = job.lastError?.code ?? ""
        if isApply {
            stats.controlFailures += 1
            audit(
                .actionFailed, .critical,
                "PCI control failure: \(job.request.policy) could not \(job.request.kind.operation(.apply)) "
                    + "\(job.request.address) via \(job.request.target): not confirmed within \(job.spec.deadline.compact) "
                    + "after \(job.attempts) attempt(s); last error: \(lastError)"
                    + (fallback.map { "; trying fallback target \($0)" } ?? "")
                    + (keepEnforcing
                        ? "; trying again until it is confirmed or the window closes (at most every "
                            + "\(job.spec.retry.enforceInterval.compact))" : ""),
                fields)
        } else {
            audit(
                .actionFailed, .error,
                "\(job.request.policy) could not \(job.request.kind.operation(.undo)) \(job.request.address) "
                    + "via \(job.request.target) within \(job.spec.deadline.compact) after \(job.attempts) attempt(s); "
                    + "it may still be in place: last error: \(lastError)", fields)
        }
        if let fallback {
            // The same engagement's applies still queued on the failed target would only fail the
            // same way and raise the same alarm: the fallback takes over from them.
            for id in lanes[job.lane] ?? [] where id != job.id {
                guard let queued = jobs[id], queued.phase == .queued, queued.window === job.window,
                    queued.engagement == job.engagement, queued.request.verb == .apply
                else { continue }
                finish(queued, now: now, outcome: .abandoned("superseded by fallback target \(fallback)"))
            }
        }
        if isApply { job.window.engagements[job.engagement].controlFailed = true }
        if keepEnforcing {
            job.enforcing = true
            job.deadline = nil
            scheduleEnforcement(job, now: now)
            return
        }
        finish(job, now: now, outcome: .failed)
        if let fallback {
            let window = job.window
            window.engagements[job.engagement].targets.append(EngagedTarget(target: fallback))
            touch(window)
            startApply(
                window, engagement: job.engagement,
                targetIndex: window.engagements[job.engagement].targets.count - 1, now: now)
        }
    }

    private func nextFallback(for job: ActionJob) -> String? {
        let used = Set(job.window.engagements[job.engagement].targets.map(\.target))
        return job.spec.fallback.first { !used.contains($0) }
    }

    /// Removes the job and starts the next one on its lane.
    func finish(_ job: ActionJob, now: MonotonicInstant, outcome: JobOutcome) {
        jobs[job.id] = nil
        // An apply answered is "applied" in the window's entry.
        touch(job.window)
        for key in job.confirmCalls {
            calls[key]?.awaitingConfirmation.removeAll { $0 == job.id }
        }
        switch outcome {
        case .confirmed where job.enforcing:
            let since = job.window.engagements[job.engagement].applyStartedAt ?? job.activatedAt ?? now
            let unprotected = now.since(since)
            job.window.engagements[job.engagement].confirmedAt = now
            job.window.engagements[job.engagement].recovered = true
            audit(
                .actionRecovered, .warning,
                "\(job.label) confirmed at last, after its control failure and \(job.attempts) attempt(s): the call "
                    + "was unprotected for \(unprotected.compact)",
                jobFields(job).overlaid(with: [.result: "recovered", .latencyMs: formatMilliseconds(unprotected)]))
        case .confirmed:
            let latency = job.activatedAt.map { now.since($0) } ?? .zero
            if job.request.verb == .apply { job.window.engagements[job.engagement].confirmedAt = now }
            audit(
                .actionConfirmed, .info,
                "\(job.label) confirmed after \(job.attempts) attempt(s)",
                jobFields(job).overlaid(with: [.result: "confirmed", .latencyMs: formatMilliseconds(latency)]))
        case .abandoned(let reason):
            audit(
                .actionAbandoned, .info,
                "\(job.label) stopped: \(reason)",
                jobFields(job).overlaid(with: [.result: "abandoned", .reason: reason]))
        case .failed:
            break
        }
        guard var lane = lanes[job.lane], let position = lane.firstIndex(of: job.id) else { return }
        lane.remove(at: position)
        if lane.isEmpty {
            lanes[job.lane] = nil
        } else {
            lanes[job.lane] = lane
            if position == 0, let next = jobs[lane[0]], next.phase == .queued { activate(next, now: now) }
        }
    }

    /// Stops every job addressed to a call that has gone: nothing more can be done to it.
    func abandonJobs(forCall key: CallKey, now: MonotonicInstant, reason: String) {
        guard !jobs.isEmpty else { return }
        for target in targets.keys {
            for kind in ActionKind.allCases {
                let lane = LaneKey(target: target, kind: kind, feed: key.feed, address: .call(id: key.id))
                guard let ids = lanes[lane] else { continue }
                for id in ids.reversed() {
                    guard let job = jobs[id] else { continue }
                    if job.phase == .inFlight {
                        job.cancelRequested = true
                    } else {
                        finish(job, now: now, outcome: .abandoned(reason))
                    }
                }
            }
        }
    }

    private func jobFields(_ job: ActionJob) -> AuditFields {
        var fields = job.fields
        fields.attempt = String(job.attempts)
        return fields
    }

    // MARK: - Drift

    /// What in `call`'s reported state contradicts an applied `kind`, in operator words.
    func contradiction(_ kind: ActionKind, _ call: TrackedCall) -> String? {
        switch kind {
        case .mute: call.mute == .off ? "the agent is unmuted" : nil
        case .pauseRecording: call.recording == .recording ? "the recording is running" : nil
        }
    }

    /// The platform reported a state of `call` that contradicts an open window whose action was in
    /// place (confirmed, or restored): the recording resumed, the agent was unmuted.
    func checkDrift(for call: TrackedCall, now: MonotonicInstant) {
        var windows = windowsBySubject[call.key] ?? []
        if !extensionWindows.isEmpty {
            for window in extensionWindowsCovering(call) where !windows.contains(where: { $0 === window }) {
                windows.append(window)
            }
        }
        for window in windows where window.isOpen && window.protectionWanted && window.definition.mode == .enforce {
            for index in window.engagements.indices {
                let engagement = window.engagements[index]
                guard engagement.address.covers(call),
                    engagement.confirmedAt != nil || engagement.targets.contains(where: \.assumedApplied),
                    let contradiction = contradiction(window.definition.actions[engagement.action].kind, call),
                    // An apply still under way will be confirmed or fail on its own.
                    !engagement.targets.contains(where: { $0.applyJobs.contains { jobs[$0] != nil } })
                else { continue }
                reapply(window, engagement: index, call: call, contradiction: contradiction, now: now)
            }
        }
    }

    /// Applies an engagement's action again at once, on its last target, with a `window.drift`
    /// record; a repeated drift in one window is critical. The re-apply gets the next generation
    /// of the engagement's idempotency key: the same in every replica that sees the same events,
    /// and not the first apply's, which a platform that deduplicates would drop as a repeat.
    func reapply(_ window: Window, engagement index: Int, call: TrackedCall, contradiction: String, now: MonotonicInstant) {
        let engagement = window.engagements[index]
        let kind = window.definition.actions[engagement.action].kind
        window.engagements[index].drifts += 1
        window.engagements[index].confirmedAt = nil
        window.engagements[index].generation += 1
        touch(window)
        let drifts = window.engagements[index].drifts
        let targetIndex = engagement.targets.count - 1
        let target = engagement.targets[targetIndex].target
        audit(
            .windowDrift, drifts > 1 ? .critical : .warning,
            "\(window.definition.name): \(contradiction) on call \(call.key.id) while its window is open"
                + (drifts > 1 ? " (drift \(drifts) in this window: something keeps undoing the control)" : "")
                + "; applying \(kind.operation(.apply)) \(engagement.address) via \(target) again",
            window.fields.overlaid(with: [
                .call: call.key.id, .target: target, .action: kind.operation(.apply), .reason: contradiction,
                .result: "reapplied",
            ]))
        startApply(window, engagement: index, targetIndex: targetIndex, now: now)
    }
}
