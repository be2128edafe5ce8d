import MutewardenModel
import Yams

/// A name used in a policy, kept with its position until every file is read and it can be checked.
struct Reference {
    var name: String
    var location: SourceLocation
    /// How the error names the place: "policy 'p'", "action 1 of policy 'p'".
    var context: String
}

struct DecodedPolicy {
    var definition: PolicyDefinition
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

    static func decode(name: String, _ section: ConfigSection) -> DecodedPolicy? {
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

        guard let feeds, let start, stop != .some(nil), let actions else { return nil }
        if section.has("max_duration"), maxDuration == nil { return nil }
        let definition = PolicyDefinition(
            name: name, feeds: feeds.map(\.name), start: start, stop: stop ?? nil, actions: actions.map(\.spec),
            scope: scope, maxDuration: maxDuration ?? .seconds(600), onTimeout: onTimeout, mode: mode)
        return DecodedPolicy(
            definition: definition, feedReferences: feeds, targetReferences: actions.flatMap(\.references))
    }

    /// A list of names, each kept with its position. Repeats are errors: they are always a
    /// copy-and-paste slip, and the intended name is often missing.
    static func references(
        _ key: String, in section: ConfigSection, required: Bool, what: String, context: String? = nil
    ) -> [Reference]? {
        let context = context ?? section.context
        guard section.has(key) else {
            if required { section.missing(key) } else { _ = section.node(key) }
            return required ? nil : []
        }
        guard let names = section.stringList(key), case .sequence(let items)? = section.node(key) else { return nil }
        if required, names.isEmpty {
            section.error("'\(key)' in \(context) must name at least one \(what)", key: key)
            return nil
        }
        var result: [Reference] = []
        var valid = true
        for (name, item) in zip(names, items) {
            let location = section.at(item)
            if result.contains(where: { $0.name == name }) {
                section.error("\(what) '\(name)' is listed twice in '\(key)' of \(context)", at: location)
                valid = false
            }
            result.append(Reference(name: name, location: location, context: context))
        }
        return valid ? result : nil
    }

    private static func decodeActions(_ policy: ConfigSection) -> [(spec: ActionSpec, references: [Reference])]? {
        guard let node = policy.node("actions") else {
            policy.missing("actions")
            return nil
        }
        guard case .sequence(let items) = node else {
            policy.wrongType("actions", node, expected: "a list of actions")
            return nil
        }
        guard !items.isEmpty else {
            policy.error("\(policy.context) has no actions; 'actions' must list at least one", at: policy.at(node))
            return nil
        }
        var actions: [(spec: ActionSpec, references: [Reference])] = []
        var valid = true
        for (index, item) in items.enumerated() {
            let context = "action \(index + 1) of \(policy.context)"
            guard case .mapping(let mapping) = item else {
                policy.error("\(context) must be a mapping; found \(describe(item))", at: policy.at(item))
                valid = false
                continue
            }
            if let action = decodeAction(policy.child(mapping, context: context)) {
                actions.append(action)
            } else {
                valid = false
            }
        }
        return valid ? actions : nil
    }

    private static func decodeAction(_ section: ConfigSection) -> (spec: ActionSpec, references: [Reference])? {
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
        if let target, let own = fallback?.first(where: { $0.name == target }) {
            section.error("fallback target '\(own.name)' in \(context) is the action's own target", at: own.location)
            fallback = nil
        }

        guard let kind, let target, let fallback, retry != .some(nil) else { return nil }
        if section.has("deadline"), deadline == nil { return nil }
        let targetReference = Reference(name: target, location: section.location(of: "target") ?? section.location, context: context)
        let spec = ActionSpec(
            kind: kind, target: target, addressing: addressing, deadline: deadline ?? .seconds(2),
            retry: retry.flatMap { $0 } ?? RetryPolicy(), fallback: fallback.map(\.name))
        return (spec, [targetReference] + fallback)
    }

    private static func decodeRetry(_ section: ConfigSection) -> RetryPolicy? {
        let initial = section.positiveDuration("initial")
        let maximum = section.positiveDuration("max")
        if section.has("initial"), initial == nil { return nil }
        if section.has("max"), maximum == nil { return nil }
        let defaults = RetryPolicy()
        let policy = RetryPolicy(
            initialBackoff: initial ?? defaults.initialBackoff, maximumBackoff: maximum ?? defaults.maximumBackoff)
        guard policy.initialBackoff <= policy.maximumBackoff else {
            section.error("'initial' in \(section.context) must not exceed 'max'", key: section.has("initial") ? "initial" : "max")
            return nil
        }
        return policy
    }
}
