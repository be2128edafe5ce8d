import MutewardenModel
import Yams

/// Decodes a policy's `start` and `stop` conditions.
enum ConditionDecoder {
    static let forms = ["all", "any", "attribute", "state"]
    static let operators = ["equals", "not_equals", "in", "matches", "present", "absent"]

    /// `parent` owns the new sections, so their unknown keys are reported when it finishes.
    static func decode(_ node: Node, in parent: ConfigSection, context: String) -> Condition? {
        guard case .mapping(let mapping) = node else {
            parent.error(
                "\(context) must be a mapping with one of: \(forms.joined(separator: ", ")); found \(describe(node))",
                at: parent.at(node))
            return nil
        }
        let section = parent.child(mapping, context: context)
        let presentForms = section.present(forms)
        let presentOperators = section.present(operators)
        guard let form = presentForms.first else {
            if let stray = presentOperators.first {
                section.error("'\(stray.key)' in \(context) needs an 'attribute' key naming the attribute it tests", at: stray.keyLocation)
            } else if section.isEmpty {
                section.error("\(context) needs exactly one of: \(forms.joined(separator: ", "))", at: section.location)
            }
            // Otherwise its keys are all unknown, and each is reported with the list of valid ones.
            return nil
        }
        if presentForms.count > 1 {
            let second = presentForms[1]
            section.error(
                "\(context) has both '\(form.key)' and '\(second.key)'; a condition takes exactly one of: \(forms.joined(separator: ", ")) (combine conditions with 'all' or 'any')",
                at: second.keyLocation)
            return nil
        }
        if form.key != "attribute", let stray = presentOperators.first {
            section.error("'\(stray.key)' in \(context) belongs to an 'attribute' condition, not to '\(form.key)'", at: stray.keyLocation)
            return nil
        }
        switch form.key {
        case "all", "any":
            return list(form.key, in: section, context: context)
        case "attribute":
            return attribute(section, operators: presentOperators, context: context)
        default:
            return state(section, context: context)
        }
    }

    private static func list(_ key: String, in section: ConfigSection, context: String) -> Condition? {
        guard let node = section.node(key) else { return nil }
        guard case .sequence(let items) = node else {
            section.wrongType(key, node, expected: "a list of conditions")
            return nil
        }
        guard !items.isEmpty else {
            section.error("'\(key)' in \(context) must list at least one condition", at: section.at(node))
            return nil
        }
        let decoded = items.enumerated().map { index, item in
            decode(item, in: section, context: "condition \(index + 1) of '\(key)' in \(context)")
        }
        let conditions = decoded.compactMap { $0 }
        guard conditions.count == decoded.count else { return nil }
        return key == "all" ? .all(conditions) : .any(conditions)
    }

    private static func attribute(
        _ section: ConfigSection, operators present: [(key: String, keyLocation: SourceLocation)], context: String
    ) -> Condition? {
        let name = section.string("attribute")
        if name?.isEmpty == true {
            section.error("'attribute' in \(context) must name an attribute", key: "attribute")
        }
        guard let op = present.first else {
            section.error("an attribute condition needs exactly one of: \(operators.joined(separator: ", "))", at: section.location)
            return nil
        }
        if present.count > 1 {
            section.error(
                "an attribute condition takes exactly one of: \(operators.joined(separator: ", ")); found both '\(op.key)' and '\(present[1].key)'",
                at: present[1].keyLocation)
            return nil
        }
        let condition: Condition?
        switch op.key {
        case "equals":
            condition = section.string("equals").flatMap { value in name.map { .attributeEquals(key: $0, value: value) } }
        case "not_equals":
            condition = section.string("not_equals").flatMap { value in name.map { .attributeNotEquals(key: $0, value: value) } }
        case "in":
            guard let values = section.stringList("in") else { return nil }
            if values.isEmpty {
                section.error("'in' in \(context) must list at least one value", key: "in")
                return nil
            }
            condition = name.map { .attributeIn(key: $0, values: Set(values)) }
        case "matches":
            guard let pattern = section.string("matches") else { return nil }
            do {
                _ = try Regex(pattern)
            } catch {
                section.error("invalid regular expression in 'matches' of \(context): \(error)", key: "matches")
                return nil
            }
            condition = name.map { .attributeMatches(key: $0, pattern: pattern) }
        default:
            // `present` and `absent` take only `true`: `present: false` reads as a negation that
            // would silently be the opposite of `absent: true` with a different spelling.
            guard let flag = section.bool(op.key) else { return nil }
            guard flag else {
                let other = op.key == "present" ? "absent" : "present"
                section.error("'\(op.key)' in \(context) only takes 'true'; write '\(other): true' for the opposite", key: op.key)
                return nil
            }
            condition = name.map { op.key == "present" ? .attributePresent(key: $0) : .attributeAbsent(key: $0) }
        }
        guard name?.isEmpty == false else { return nil }
        return condition
    }

    private static func state(_ section: ConfigSection, context: String) -> Condition? {
        guard let node = section.node("state") else { return nil }
        let items: [Node]
        switch node {
        case .scalar: items = [node]
        case .sequence(let sequence): items = Array(sequence)
        default:
            section.wrongType("state", node, expected: "a call state or a list of call states")
            return nil
        }
        guard !items.isEmpty else {
            section.error("'state' in \(context) must list at least one call state", at: section.at(node))
            return nil
        }
        let allowed = CallState.allCases.map(\.rawValue).joined(separator: ", ")
        var states = Set<CallState>()
        var valid = true
        for item in items {
            guard case .scalar(let scalar) = item, let state = CallState(rawValue: scalar.string) else {
                let found = if case .scalar(let scalar) = item, tagName(item) != .null { "'\(scalar.string)'" } else { describe(item) }
                section.error("unknown call state \(found) in \(context); expected one of: \(allowed)", at: section.at(item))
                valid = false
                continue
            }
            states.insert(state)
        }
        return valid ? .state(states) : nil
    }
}
