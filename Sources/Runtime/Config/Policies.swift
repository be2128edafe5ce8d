import MutewardenModel
import Yams

/// A name used in a policy, kept with its position until every file is read and it can be checked.
struct Reference {
    var name: String
    var location: SourceLocation
    /// How the error names the place: "policy 'p'", "action 1 of policy 'p'".
    var context: String
    /// For a target or a fallback: what the action asks of it, checked against the target's
    /// settings once every target is known (``TargetSettings/refusal(of:by:)``).
    var kind: ActionKind? = nil
    var addressing: Addressing = .call
}

struct DecodedPolicy {
    /// `nil` when the policy has errors; its references are still checked, so that one run
    /// reports everything.
    var definition: PolicyDefinition?
    var feedReferences: [Reference]
    /// Action targets and fallbacks.
    var targetReferences: [Reference]
}

/// Decodes one entry of `policies`. Names of feeds and targets are only collected here: they may
/// be defined in a later drop-in.
enum PolicyDecoder {
    // The model's enums are not all `CaseIterable`; these are the spellings the schema accepts.
    static let scopes: [WindowScope] = [.call, .agentExtension]
    static let modes: [PolicyMode] = [.enforce, .dryRun]
    static let timeouts: [TimeoutBehavior] = [.resume, .keep]
    static let addressings: [Addressing] = [.call, .agentExtension]

    static func decode(name: String, _ section: ConfigSection) -> DecodedPolicy {
        let context = section.context
        let feeds = references("feeds", in: section, required: true, what: "feed")
        let scope = section.choice("scope", scopes) ?? .call
        let mode = section.choice("mode", modes) ?? .enforce
        let start: Condition?
        if let node = section.node("start") {
            start = ConditionDecoder.decode(node, in: section, context: "'start' of \(context)")
        } else {
            section.missing("start")
            start = nil
        }
        let stop = section.node("stop").map { ConditionDecoder.decode($0, in: section, context: "'stop' of \(context)") }
        let maxDuration = section.positiveDuration("max_duration")
        let onTimeout = section.choice("on_timeout", timeouts) ?? .resume
        let actions = decodeActions(section)
        let targetReferences = actions.items.flatMap(\.references)

        var definition: PolicyDefinition?
        if feeds.valid, let start, stop != .some(nil), actions.valid,
            !(section.has("max_duration") && maxDuration == nil)
        {
            definition = PolicyDefinition(
                name: name, feeds: feeds.names.map(\.name), start: start, stop: stop ?? nil,
                actions: actions.items.compactMap(\.spec), scope: scope, maxDuration: maxDuration ?? .seconds(600),
                onTimeout: onTimeout, mode: mode)
        }
        return DecodedPolicy(definition: definition, feedReferences: feeds.names, targetReferences: targetReferences)
    }

    /// A list of names, each kept with its position; `valid` is false when the list has errors,
    /// but the names that could be read are still returned for checking. Repeats are errors: they
    /// are always a copy-and-paste slip, and the intended name is often missing.
    static func references(_ key: String, in section: ConfigSection, required: Bool, what: String)
        -> (names: [Reference], valid: Bool)
    {
        let context = section.context
        guard section.has(key) else {
            if required { section.missing(key) } else { _ = section.node(key) }
            return ([], !required)
        }
        guard let names = section.stringList(key), case .sequence(let items)? = section.node(key) else { return ([], false) }
        if required, names.isEmpty {
            section.error("'\(key)' in \(context) must name at least one \(what)", key: key)
            return ([], false)
        }
        var result: [Reference] = []
        var valid = true
        for (name, item) in zip(names, items) {
            let location = section.at(item)
            if result.contains(where: { $0.name == name }) {
                section.error("\(what) '\(name)' is listed twice in '\(key)' of \(context)", at: location)
                valid = false
            } else {
                result.append(Reference(name: name, location: location, context: context))
            }
        }
        return (result, valid)
    }

    typealias DecodedAction = (spec: ActionSpec?, references: [Reference])

    private static func decodeActions(_ policy: ConfigSection) -> (items: [DecodedAction], valid: Bool) {
        guard let node = policy.node("actions") else {
            policy.missing("actions")
            return ([], false)
        }
        guard case .sequence(let items) = node else {
            policy.wrongType("actions", node, expected: "a list of actions")
            return ([], false)
        }
        guard !items.isEmpty else {
            policy.error("\(policy.context) has no actions; 'actions' must list at least one", at: policy.at(node))
            return ([], false)
        }
        var actions: [DecodedAction] = []
        var valid = true
        for (index, item) in items.enumerated() {
            let context = "action \(index + 1) of \(policy.context)"
            guard case .mapping(let mapping) = item else {
                policy.error("\(context) must be a mapping; found \(describe(item))", at: policy.at(item))
                valid = false
                continue
            }
            let action = decodeAction(policy.child(mapping, context: context))
            valid = valid && action.spec != nil
            actions.append(action)
        }
        return (actions, valid)
    }

    private static func decodeAction(_ section: ConfigSection) -> DecodedAction {
        let context = section.context
        let kind: ActionKind?
        if section.has("kind") {
            kind = section.choice("kind", ActionKind.self)
        } else {
            section.missing("kind")
            kind = nil
        }
        let target = section.requiredString("target")
        let addressing = section.choice("by", addressings) ?? .call
        let deadline = section.positiveDuration("deadline")
        let retry = section.section("retry").map(decodeRetry)
        var fallback = references("fallback", in: section, required: false, what: "fallback target")
        if let target, let own = fallback.names.first(where: { $0.name == target }) {
            section.error("fallback target '\(own.name)' in \(context) is the action's own target", at: own.location)
            fallback.valid = false
        }

        let targetReference = target.map {
            Reference(
                name: $0, location: section.location(of: "target") ?? section.location, context: context, kind: kind,
                addressing: addressing)
        }
        let fallbackReferences = fallback.names.filter { $0.name != target }.map { reference in
            var reference = reference
            reference.kind = kind
            reference.addressing = addressing
            return reference
        }
        let references = (targetReference.map { [$0] } ?? []) + fallbackReferences
        guard let kind, let target, fallback.valid, retry != .some(nil), !(section.has("deadline") && deadline == nil)
        else { return (nil, references) }
        let spec = ActionSpec(
            kind: kind, target: target, addressing: addressing, deadline: deadline ?? .seconds(2),
            retry: retry.flatMap { $0 } ?? RetryPolicy(), fallback: fallback.names.map(\.name))
        return (spec, references)
    }

    private static func decodeRetry(_ section: ConfigSection) -> RetryPolicy? {
        let initial = section.positiveDuration("initial")
        let maximum = section.positiveDuration("max")
        let enforce = section.positiveDuration("enforce_every")
        if section.has("initial"), initial == nil { return nil }
        if section.has("max"), maximum == nil { return nil }
        if section.has("enforce_every"), enforce == nil { return nil }
        let defaults = RetryPolicy()
        let policy = RetryPolicy(
            initialBackoff: initial ?? defaults.initialBackoff, maximumBackoff: maximum ?? defaults.maximumBackoff,
            enforceInterval: enforce ?? defaults.enforceInterval)
        guard policy.initialBackoff <= policy.maximumBackoff else {
            section.error("'initial' in \(section.context) must not exceed 'max'", key: section.has("initial") ? "initial" : "max")
            return nil
        }
        return policy
    }
}
