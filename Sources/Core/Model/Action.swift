/// What a policy holds in place while its window is open.
public enum ActionKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Mute the agent (undo: unmute).
    case mute
    /// Pause the call recording (undo: resume).
    case pauseRecording = "pause-recording"

    /// The platform-neutral name of one direction of this kind, for logs: mute, unmute, pause, resume.
    public func operation(_ verb: ActionVerb) -> String {
        switch (self, verb) {
        case (.mute, .apply): "mute"
        case (.mute, .undo): "unmute"
        case (.pauseRecording, .apply): "pause-recording"
        case (.pauseRecording, .undo): "resume-recording"
        }
    }
}

/// Whether an action puts the protection in place or takes it away.
public enum ActionVerb: String, Sendable, Hashable, Codable {
    case apply, undo
}

/// How a target finds the call: by the provider's call id, or by the agent's extension.
public enum Addressing: String, Sendable, Hashable {
    case call
    case agentExtension = "extension"
}

/// The concrete thing an action is sent to.
public enum ActionAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    case call(id: String)
    case agentExtension(String)

    public var description: String {
        switch self {
        case .call(let id): "call \(id)"
        case .agentExtension(let ext): "extension \(ext)"
        }
    }
}

/// One request to a target: the normalized action that a provider turns into its own API call.
public struct ActionRequest: Sendable {
    public var kind: ActionKind
    public var verb: ActionVerb
    /// The target's configured name.
    public var target: String
    public var address: ActionAddress
    /// The call the request is about, for the provider's context (secondary ids, feed).
    public var feed: String
    public var call: CallIdentifiers
    public var agentExtension: String?
    /// Stable across retries and across replicas: derived from the policy, the window's subject and
    /// sequence, the address (and re-send generation), the action, the target and the verb.
    public var idempotencyKey: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var policy: String
    /// The call's attributes when the action was made, for a target that takes a value from one
    /// (the ACS target's `recording_id_attribute`). A target reads only the attribute its
    /// configuration names, and never logs the others: they may hold card data.
    public var attributes: [String: String] = [:]
    /// Time left before the action's deadline when this attempt was sent; nil once it has none
    /// (kept up after a control failure). A target bounds its request by it, so that a request
    /// still queued at the deadline fails saying so, before the engine's alarm goes out.
    public var timeLeft: Duration?

    public init(
        kind: ActionKind, verb: ActionVerb, target: String, address: ActionAddress, feed: String,
        call: CallIdentifiers, agentExtension: String?, idempotencyKey: String, attempt: Int,
        policy: String
    ) {
        self.kind = kind
        self.verb = verb
        self.target = target
        self.address = address
        self.feed = feed
        self.call = call
        self.agentExtension = agentExtension
        self.idempotencyKey = idempotencyKey
        self.attempt = attempt
        self.policy = policy
    }
}

/// Why an attempt failed, and what that means for retrying.
public struct ActionFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Disposition: String, Sendable, Hashable {
        /// Transient (timeout, 5xx, connection reset): try again while the deadline allows.
        case retryable
        /// The target refused in a way a retry will not fix (bad request, forbidden).
        case permanent
        /// The call no longer exists on the platform (it ended or moved on): stop, without a storm.
        case callGone = "call-gone"
    }

    public var disposition: Disposition
    /// What happened, in an operator's words. Must never contain a secret or a token.
    public var message: String
    /// The provider's or transport's own code (HTTP status, curl code, statusCode), if any.
    public var code: String?

    public init(_ disposition: Disposition, _ message: String, code: String? = nil) {
        self.disposition = disposition
        self.message = message
        self.code = code
    }

    public var description: String {
        code.map { "\(message) (code \($0))" } ?? message
    }
}

/// The outcome of one attempt, as the target reports it.
public enum ActionAttemptResult: Sendable, Hashable {
    /// The target took the request. For targets that confirm by event, this is not yet success.
    case accepted
    case failed(ActionFailure)
}
