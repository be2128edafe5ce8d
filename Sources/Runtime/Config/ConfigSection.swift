import MutewardenProviderKit
import Yams

/// Wraps one YAML mapping while decoding.
///
/// Every accessor records the key it was asked for, present or not. When the loader finishes the
/// section, each key in the file that nobody asked for is reported as unknown, with the list of
/// keys that were asked for. This is how a typo (`max_duraton: 30s`) becomes an error instead of a
/// silently applied default, including inside provider settings, which the loader knows nothing
/// about.
///
/// All accessors report problems themselves and return `nil` for a missing or invalid value, so a
/// decoder can carry on and the operator sees every error in one run.
///
/// Not thread-safe: a section lives only for the duration of one synchronous decode.
public final class ConfigSection {
    /// Where the mapping starts.
    public let location: SourceLocation
    /// How errors name this mapping: "policy 'card-capture'", "feed 'sim'".
    let context: String
    private let file: String
    private let sink: DiagnosticSink
    private let secrets: SecretResolver
    /// The first occurrence of each key; later occurrences have been reported as duplicates.
    private var entries: [(key: String, keyLocation: SourceLocation, value: Node)] = []
    /// Each key's position in `entries`: a mapping may have thousands of keys.
    private var index: [String: Int] = [:]
    /// Keys asked for, in order (error messages list them), and as a set.
    private var asked: [String] = []
    private var askedSet: Set<String> = []
    private var children: [ConfigSection] = []
    private var finished = false

    init(mapping: Node.Mapping, file: String, context: String, sink: DiagnosticSink, secrets: SecretResolver) {
        self.file = file
        self.context = context
        self.sink = sink
        self.secrets = secrets
        self.location = SourceLocation(file: file, line: mapping.mark?.line ?? 0, column: mapping.mark?.column ?? 0)
        var duplicates = 0
        var firstUnreported: SourceLocation?
        for (name, keyLocation, value) in Self.keyedEntries(of: mapping, file: file, sink: sink, context: context) {
            if let first = index[name] {
                duplicates += 1
                if duplicates <= Self.maximumReportedDuplicates {
                    sink.error(
                        "duplicate key '\(name)' in \(context); first defined at \(entries[first].keyLocation)", at: keyLocation)
                } else if firstUnreported == nil {
                    firstUnreported = keyLocation
                }
            } else {
                index[name] = entries.count
                entries.append((name, keyLocation, value))
            }
        }
        if let firstUnreported {
            // Each one would say the same; a count says how far the file is from right.
            sink.error(
                "\(duplicates - Self.maximumReportedDuplicates) more duplicate keys in \(context), from here on", at: firstUnreported)
        }
    }

    /// Duplicate keys reported one by one in a mapping; the rest are counted.
    static let maximumReportedDuplicates = 10

    private func entry(_ key: String) -> (key: String, keyLocation: SourceLocation, value: Node)? {
        index[key].map { entries[$0] }
    }

    private func markAsked(_ key: String) {
        if askedSet.insert(key).inserted { asked.append(key) }
    }

    // MARK: Typed accessors

    /// A scalar as text. Numbers and booleans are accepted as written (`1234`, `true`).
    public func string(_ key: String) -> String? {
        guard let node = node(key) else { return nil }
        return text(of: node, key: key)
    }

    public func requiredString(_ key: String) -> String? {
        guard has(key) else {
            missing(key)
            return nil
        }
        return string(key)
    }

    public func int(_ key: String, in range: ClosedRange<Int>? = nil) -> Int? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, tagName(node) == .int, let value = node.int else {
            wrongType(key, node, expected: "an integer")
            return nil
        }
        if let range, !range.contains(value) {
            error("'\(key)' in \(context) must be between \(range.lowerBound) and \(range.upperBound); found \(value)", key: key)
            return nil
        }
        return value
    }

    public func double(_ key: String, in range: ClosedRange<Double>? = nil) -> Double? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, [.int, .float].contains(tagName(node)), let value = node.float, value.isFinite else {
            wrongType(key, node, expected: "a number")
            return nil
        }
        if let range, !range.contains(value) {
            error("'\(key)' in \(context) must be between \(range.lowerBound) and \(range.upperBound); found \(value)", key: key)
            return nil
        }
        return value
    }

    public func bool(_ key: String) -> Bool? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, tagName(node) == .bool, let value = node.bool else {
            wrongType(key, node, expected: "true or false")
            return nil
        }
        return value
    }

    /// A duration such as `250ms`, `30s`, `5m` or `1h`; see ``parseDuration(_:)``.
    public func duration(_ key: String) -> Duration? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node, tagName(node) != .null else {
            wrongType(key, node, expected: "a duration such as 30s, 5m or 1h")
            return nil
        }
        guard let duration = parseDuration(scalar.string) else {
            error("invalid duration for '\(key)' in \(context): expected a duration such as 30s, 5m or 1h", key: key)
            return nil
        }
        return duration
    }

    /// Like ``duration(_:)``, for timeouts and limits where zero would disable the protection.
    public func positiveDuration(_ key: String) -> Duration? {
        guard let duration = duration(key) else { return nil }
        guard duration > .zero else {
            error("'\(key)' in \(context) must be greater than zero", key: key)
            return nil
        }
        return duration
    }

    /// A list of scalars. A single scalar is not promoted to a list: `feeds: sim` is reported, so
    /// that the schema reads the same everywhere.
    public func stringList(_ key: String) -> [String]? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            wrongType(key, node, expected: "a list")
            return nil
        }
        var values: [String] = []
        var valid = true
        for item in sequence {
            if let value = text(of: item, key: key, element: true) { values.append(value) } else { valid = false }
        }
        return valid ? values : nil
    }

    /// A credential: a literal (`reference == "inline"`), or `${env:NAME}`, `${file:/path}`,
    /// `${credential:NAME}` resolved now. Only fields read through this accept `${...}`.
    public func secret(_ key: String) -> Secret? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node, tagName(node) != .null else {
            wrongType(key, node, expected: "a secret (a value or a reference such as ${env:NAME})")
            return nil
        }
        switch secrets.resolve(scalar.string) {
        case .resolved(let secret):
            return secret
        case .failed(let message):
            error("\(message) ('\(key)' in \(context))", key: key)
            return nil
        }
    }

    public func requiredSecret(_ key: String) -> Secret? {
        guard has(key) else {
            missing(key)
            return nil
        }
        return secret(key)
    }

    /// A nested mapping, decoded with the same rules; its unknown keys are reported with this
    /// section's.
    public func section(_ key: String) -> ConfigSection? {
        guard let node = node(key) else { return nil }
        guard case .mapping(let mapping) = node else {
            wrongType(key, node, expected: "a mapping")
            return nil
        }
        return child(mapping, context: "'\(key)' in \(context)")
    }

    /// A list of mappings, such as a provider's list of servers.
    public func sectionList(_ key: String) -> [ConfigSection]? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else {
            wrongType(key, node, expected: "a list of mappings")
            return nil
        }
        var sections: [ConfigSection] = []
        for (index, item) in sequence.enumerated() {
            guard case .mapping(let mapping) = item else {
                sink.error("item \(index + 1) of '\(key)' in \(context) must be a mapping; found \(describe(item))", at: at(item))
                return nil
            }
            sections.append(child(mapping, context: "item \(index + 1) of '\(key)' in \(context)"))
        }
        return sections
    }

    /// One of an enumeration's raw values; the error lists them all.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T? where T.RawValue == String {
        choice(key, Array(T.allCases))
    }

    func choice<T: RawRepresentable>(_ key: String, _ values: [T]) -> T? where T.RawValue == String {
        choice(key, values.map { ($0.rawValue, $0) })
    }

    func choice<T>(_ key: String, _ values: [(name: String, value: T)]) -> T? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node, tagName(node) != .null else {
            wrongType(key, node, expected: "one of: \(values.map(\.name).joined(separator: ", "))")
            return nil
        }
        guard let match = values.first(where: { $0.name == scalar.string }) else {
            error(
                "invalid value '\(scalar.string)' for '\(key)' in \(context); expected one of: \(values.map(\.name).joined(separator: ", "))",
                key: key)
            return nil
        }
        return match.value
    }

    /// Reports a problem at the key's value, or at the mapping when the key is absent.
    public func error(_ message: String, key: String? = nil) {
        sink.error(message, at: key.flatMap(location(of:)) ?? location)
    }

    /// Where the key's value is written, if the key is present.
    public func location(of key: String) -> SourceLocation? {
        entry(key).map { at($0.value) }
    }

    // MARK: For the loader

    /// The raw value, recording the key as known.
    func node(_ key: String) -> Node? {
        markAsked(key)
        return entry(key)?.value
    }

    var isEmpty: Bool { entries.isEmpty }

    func has(_ key: String) -> Bool {
        index[key] != nil
    }

    /// Present keys among `keys`, in file order, recording them all as known.
    func present(_ keys: [String]) -> [(key: String, keyLocation: SourceLocation)] {
        for key in keys { markAsked(key) }
        let wanted = Set(keys)
        return entries.filter { wanted.contains($0.key) }.map { ($0.key, $0.keyLocation) }
    }

    func keyLocation(of key: String) -> SourceLocation? {
        entry(key)?.keyLocation
    }

    /// Records every key as known, for a mapping whose decoder could not run (an unknown provider
    /// type): reporting all its keys as unknown would bury the real error.
    func acceptAllKeys() {
        for entry in entries { markAsked(entry.key) }
    }

    func child(_ mapping: Node.Mapping, context: String) -> ConfigSection {
        let section = ConfigSection(mapping: mapping, file: file, context: context, sink: sink, secrets: secrets)
        children.append(section)
        return section
    }

    func error(_ message: String, at location: SourceLocation) {
        sink.error(message, at: location)
    }

    func missing(_ key: String) {
        // Still a known key: a misspelling of it must be told what it should have been.
        markAsked(key)
        sink.error("missing required key '\(key)' in \(context)", at: location)
    }

    func wrongType(_ key: String, _ node: Node, expected: String) {
        sink.error("'\(key)' in \(context) must be \(expected); found \(describe(node))", at: at(node))
    }

    func at(_ node: Node) -> SourceLocation {
        node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) } ?? location
    }

    /// Reports the keys nobody asked for, here and in nested sections.
    func finish() {
        guard !finished else { return }
        finished = true
        for child in children { child.finish() }
        for entry in entries where !askedSet.contains(entry.key) {
            var message = "unknown key '\(entry.key)' in \(context); "
            message += asked.isEmpty ? "it takes no keys" : "expected one of: \(asked.joined(separator: ", "))"
            if let suggestion = closestMatch(to: entry.key, among: asked) { message += " (did you mean '\(suggestion)'?)" }
            sink.error(message, at: entry.keyLocation)
        }
    }

    /// A scalar as text, refusing secret references outside secret fields so that a `${env:X}`
    /// placed in the wrong key is not used as a literal.
    private func text(of node: Node, key: String, element: Bool = false) -> String? {
        guard case .scalar(let scalar) = node, tagName(node) != .null else {
            let what = element ? "items of '\(key)' in \(context) must be strings" : "'\(key)' in \(context) must be a string"
            sink.error("\(what); found \(describe(node))", at: at(node))
            return nil
        }
        guard !SecretResolver.looksLikeReference(scalar.string) else {
            sink.error("secret references are only accepted in secret fields; '\(key)' in \(context) is not one", at: at(node))
            return nil
        }
        return scalar.string
    }

    /// The mapping's keys as strings, reporting keys that are not scalars.
    static func keyedEntries(of mapping: Node.Mapping, file: String, sink: DiagnosticSink, context: String)
        -> [(key: String, keyLocation: SourceLocation, value: Node)]
    {
        let fallback = SourceLocation(file: file, line: mapping.mark?.line ?? 0, column: mapping.mark?.column ?? 0)
        return mapping.compactMap { key, value in
            let location = key.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) } ?? fallback
            guard case .scalar(let scalar) = key else {
                sink.error("keys in \(context) must be names; found \(describe(key))", at: location)
                return nil
            }
            return (scalar.string, location, value)
        }
    }
}

/// How an error names what was found instead of what was expected. Never the value itself: the
/// wrong field may hold a password.
func describe(_ node: Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    case .scalar:
        switch tagName(node) {
        case .null: return "an empty value"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .float: return "a number"
        default: return "a string"
        }
    }
}

/// The known key a typo most likely meant: within two edits, and closer than any other.
func closestMatch(to word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1]
            for (j, cb) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
    let scored = candidates.map { ($0, distance(Array(word), Array($0))) }.filter { $0.1 <= 2 }
    guard let best = scored.min(by: { $0.1 < $1.1 }), scored.filter({ $0.1 == best.1 }).count == 1 else { return nil }
    return best.0
}

/// The node's resolved YAML type (`!!str`, `!!int`...). Quoted scalars are always strings.
func tagName(_ node: Node) -> Tag.Name {
    Tag.Name(rawValue: node.tag.description)
}

// The provider kit's reader: providers decode their settings through it without knowing YAML.
extension ConfigSection: SettingsReader {
    public func settings(_ key: String) -> (any SettingsReader)? { section(key) }
    public func settingsList(_ key: String) -> [any SettingsReader]? { sectionList(key) }
    public func choice(_ key: String, among names: [String]) -> String? { choice(key, names.map { ($0, $0) }) }
}
