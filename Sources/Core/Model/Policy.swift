/// A condition over a tracked call, as written in a policy's `start` or `stop`.
public indirect enum Condition: Sendable, Hashable {
    case all([Condition])
    case any([Condition])
    case attributeEquals(key: String, value: String)
    /// True when the attribute is absent or has another value.
    case attributeNotEquals(key: String, value: String)
    case attributeIn(key: String, values: Set<String>)
    /// The pattern must match the whole value (anchored), so `\d{4}` does not match `12345`.
    case attributeMatches(key: String, pattern: String)
    case attributePresent(key: String)
    case attributeAbsent(key: String)
    case state(Set<CallState>)
}

public enum WindowScope: String, Sendable, Hashable {
    /// The window covers the call whose events opened it.
    case call
    /// The window covers the agent: every call on the extension, including calls that start while
    /// it is open.
    case agentExtension = "extension"
}

public enum PolicyMode: String, Sendable, Hashable {
    case enforce
    /// Log every decision; send nothing.
    case dryRun = "dry-run"
}

/// What happens to the actions when a window reaches its `max_duration`.
public enum TimeoutBehavior: String, Sendable, Hashable {
    /// Undo the actions (unmute, resume recording).
    case resume
    /// Leave the actions in place; an operator must act.
    case keep
}

/// Exponential backoff with full jitter, bounded by the action's deadline.
public struct RetryPolicy: Sendable, Hashable {
    public var initialBackoff: Duration
    public var maximumBackoff: Duration
    /// After a control failure, and once the fallbacks have failed too, the apply is tried again,
    /// its interval doubling from one second up to this, until it is confirmed or the window closes:
    /// a capture must end protected or alarmed, and protection late is better than none.
    public var enforceInterval: Duration

    public init(
        initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(1),
        enforceInterval: Duration = .seconds(5)
    ) {
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.enforceInterval = enforceInterval
    }
}

/// One action a policy holds while its window is open.
public struct ActionSpec: Sendable, Hashable {
    public var kind: ActionKind
    public var target: String
    public var addressing: Addressing
    /// Time allowed from the first attempt to confirmation before it is a PCI control failure.
    public var deadline: Duration
    public var retry: RetryPolicy
    /// Targets tried in order when this one fails to confirm by its deadline.
    public var fallback: [String]

    public init(
        kind: ActionKind, target: String, addressing: Addressing = .call,
        deadline: Duration = .seconds(2), retry: RetryPolicy = RetryPolicy(), fallback: [String] = []
    ) {
        self.kind = kind
        self.target = target
        self.addressing = addressing
        self.deadline = deadline
        self.retry = retry
        self.fallback = fallback
    }
}

/// A compliance rule: while `start` has held and `stop` has not, hold `actions` on the call.
public struct PolicyDefinition: Sendable, Hashable {
    public var name: String
    /// Feeds whose calls the policy watches.
    public var feeds: [String]
    public var start: Condition
    /// When absent, the window closes as soon as `start` no longer holds.
    public var stop: Condition?
    public var actions: [ActionSpec]
    public var scope: WindowScope
    public var maxDuration: Duration
    public var onTimeout: TimeoutBehavior
    public var mode: PolicyMode

    public init(
        name: String, feeds: [String], start: Condition, stop: Condition? = nil,
        actions: [ActionSpec], scope: WindowScope = .call, maxDuration: Duration = .seconds(600),
        onTimeout: TimeoutBehavior = .resume, mode: PolicyMode = .enforce
    ) {
        self.name = name
        self.feeds = feeds
        self.start = start
        self.stop = stop
        self.actions = actions
        self.scope = scope
        self.maxDuration = maxDuration
        self.onTimeout = onTimeout
        self.mode = mode
    }
}

/// What the engine must know about a target.
public struct TargetDescriptor: Sendable, Hashable {
    public var name: String
    /// True when success needs a confirming call event (e.g. `mute: On`), not just acceptance.
    public var confirmsByEvent: Bool

    public init(name: String, confirmsByEvent: Bool) {
        self.name = name
        self.confirmsByEvent = confirmsByEvent
    }
}

/// Bounds on the call tracker.
public struct TrackerLimits: Sendable, Hashable {
    /// Calls tracked at most; a new call beyond this is refused and logged as an error.
    public var maxCalls: Int
    /// A call with no event for this long is expired with a warning.
    public var idleLimit: Duration

    public init(maxCalls: Int = 100_000, idleLimit: Duration = .seconds(4 * 3600)) {
        self.maxCalls = maxCalls
        self.idleLimit = idleLimit
    }
}

/// Everything the engine needs: policies, the targets they name, and the tracker's bounds.
public struct EngineConfiguration: Sendable, Hashable {
    public var policies: [PolicyDefinition]
    public var targets: [TargetDescriptor]
    public var limits: TrackerLimits

    public init(policies: [PolicyDefinition], targets: [TargetDescriptor], limits: TrackerLimits = TrackerLimits()) {
        self.policies = policies
        self.targets = targets
        self.limits = limits
    }
}
