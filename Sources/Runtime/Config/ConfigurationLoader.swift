import Crypto
import MutewardenProviderKit
import Foundation
import MutewardenIngress
import MutewardenModel
import Yams

/// Reads, validates and merges the configuration: the main file, then `conf.d/*.yaml` beside it.
///
/// Loading is all-or-nothing and reports every problem it finds, each with its file, line and
/// column, so that an operator fixes a configuration in one pass and the daemon never runs with a
/// policy it half understood.
public struct ConfigurationLoader: Sendable, CustomStringConvertible, CustomReflectable {
    private let registry: ProviderRegistry
    /// Holds the values of `${env:...}` secrets, hence the redacted descriptions below.
    private let environment: [String: String]

    public init(registry: ProviderRegistry, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.registry = registry
        self.environment = environment
    }

    public var description: String {
        "ConfigurationLoader(feed types: \(registry.feedTypes), target types: \(registry.targetTypes))"
    }

    public var customMirror: Mirror { Mirror(self, children: ["registry": registry], displayStyle: .struct) }

    /// Loads `path` and its drop-ins.
    public func load(path: String) throws(ConfigurationError) -> DaemonConfiguration {
        var sources: [(file: String, text: String?)] = []
        let sink = DiagnosticSink()
        sources.append((path, readText(path, what: "configuration file", sink: sink)))
        for dropIn in dropIns(beside: path, sink: sink) {
            sources.append((dropIn, readText(dropIn, what: "drop-in file", sink: sink)))
        }
        return try build(sources, sink: sink)
    }

    /// Loads configuration text that has no file on disk (tests, standard input), without drop-ins.
    /// `file` names it in diagnostics.
    public func load(yaml: String, file: String) throws(ConfigurationError) -> DaemonConfiguration {
        try build([(file, yaml)], sink: DiagnosticSink())
    }

    // MARK: Files

    /// The most one configuration or drop-in file may hold.
    static let maximumFileBytes = 1024 * 1024

    private func readText(_ path: String, what: String, sink: DiagnosticSink) -> String? {
        switch readWholeFile(path, maximumBytes: Self.maximumFileBytes) {
        case .failure(let error):
            sink.error("cannot read \(what): \(error.message)", at: SourceLocation(file: path))
            return nil
        case .success(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else {
                sink.error("\(what) is not valid UTF-8", at: SourceLocation(file: path))
                return nil
            }
            return text
        }
    }

    /// `conf.d/*.yaml` in the main file's directory, in byte order of their names (as systemd and
    /// `ls` under the C locale sort them). Hidden files are skipped: editors leave lock files such as
    /// `.#10-site.yaml` there.
    private func dropIns(beside path: String, sink: DiagnosticSink) -> [String] {
        let directory = path.lastIndex(of: "/").map { String(path[...$0]) + "conf.d" } ?? "conf.d"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else {
            sink.error("drop-in directory is not a directory", at: SourceLocation(file: directory))
            return []
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            sink.error("cannot list drop-in directory", at: SourceLocation(file: directory))
            return []
        }
        let visible = names.filter { !$0.hasPrefix(".") }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        // `.yml` is the one near miss that would otherwise be skipped without a word.
        for name in visible where name.hasSuffix(".yml") {
            sink.error("drop-in files must end in .yaml; this one is not read", at: SourceLocation(file: directory + "/" + name))
        }
        return visible.filter { $0.hasSuffix(".yaml") }.map { directory + "/" + $0 }
    }

    // MARK: Decoding

    private func build(_ sources: [(file: String, text: String?)], sink: DiagnosticSink) throws(ConfigurationError)
        -> DaemonConfiguration
    {
        var merger = Merger(registry: registry, secrets: SecretResolver(environment: environment), sink: sink)
        for source in sources {
            guard let text = source.text else { continue }
            merger.add(file: source.file, text: text)
        }
        let configuration = merger.finish(files: sources.map(\.file))
        guard sink.isEmpty, var configuration else {
            throw ConfigurationError(diagnostics: sink.sorted(fileOrder: sources.map(\.file)))
        }
        configuration.digest = Self.digest(of: sources.compactMap(\.text))
        return configuration
    }

    /// `sha256:<hex>` over `texts`' UTF-8 bytes, one after the other: the files as read, since
    /// each was checked to be UTF-8 and kept as it is.
    static func digest(of texts: [String]) -> String {
        var hash = SHA256()
        for text in texts { hash.update(data: Array(text.utf8)) }
        return "sha256:"
            + hash.finalize().map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }.joined()
    }
}

/// Decodes files one by one into a merged result, then checks cross-references.
private struct Merger {
    let registry: ProviderRegistry
    let secrets: SecretResolver
    let sink: DiagnosticSink

    static let topLevelKeys = ["feeds", "targets", "policies", "logging", "state", "ingress", "metrics", "control"]

    /// Where each name was first defined, whether or not its definition was valid: a reference to
    /// a broken feed is reported once, at the feed, not again at every policy that names it.
    var feedNames: [String: SourceLocation] = [:]
    var targetNames: [String: SourceLocation] = [:]
    var policyNames: [String: SourceLocation] = [:]
    var feeds: [FeedConfiguration] = []
    var targets: [TargetConfiguration] = []
    var policies: [DecodedPolicy] = []
    var logging = LoggingConfiguration()
    var state = StateConfiguration()
    var ingress: IngressConfiguration?
    var metrics: MetricsConfiguration?
    var control = ControlConfiguration()

    init(registry: ProviderRegistry, secrets: SecretResolver, sink: DiagnosticSink) {
        self.registry = registry
        self.secrets = secrets
        self.sink = sink
    }

    mutating func add(file: String, text: String) {
        guard let root = YAMLParser(file: file).parse(text, into: sink) else {
            if sink.diagnostics.allSatisfy({ $0.location?.file != file }) {
                sink.error(
                    "configuration file is empty; expected a mapping with any of: \(Self.topLevelKeys.joined(separator: ", "))",
                    at: SourceLocation(file: file, line: 1, column: 1))
            }
            return
        }
        guard case .mapping(let mapping) = root else {
            sink.error(
                "the top level of a configuration file must be a mapping with any of: \(Self.topLevelKeys.joined(separator: ", ")); found \(describe(root))",
                at: SourceLocation(file: file, line: root.mark?.line ?? 1, column: root.mark?.column ?? 1))
            return
        }
        let top = ConfigSection(mapping: mapping, file: file, context: "the top level", sink: sink, secrets: secrets)
        if let node = top.node("feeds") {
            for entry in namedEntries(node, key: "feeds", in: top) { addFeed(entry, in: top) }
        }
        if let node = top.node("targets") {
            for entry in namedEntries(node, key: "targets", in: top) { addTarget(entry, in: top) }
        }
        if let node = top.node("policies") {
            for entry in namedEntries(node, key: "policies", in: top) { addPolicy(entry, in: top) }
        }
        if let section = top.section("logging") { addLogging(section) }
        if let section = top.section("state") { addState(section) }
        if let section = top.section("ingress") { addIngress(section) }
        if let section = top.section("metrics") { addMetrics(section) }
        if let section = top.section("control") { addControl(section) }
        top.finish()
    }

    typealias Entry = (name: String, location: SourceLocation, value: Node)

    /// The entries of a name → definition mapping, with names checked.
    private func namedEntries(_ node: Node, key: String, in top: ConfigSection) -> [Entry] {
        guard case .mapping(let mapping) = node else {
            top.wrongType(key, node, expected: "a mapping of names to definitions")
            return []
        }
        return ConfigSection.keyedEntries(of: mapping, file: top.location.file, sink: sink, context: "'\(key)'")
            .compactMap { name, location, value in
                guard isValidName(name) else {
                    sink.error(
                        "invalid name '\(name)' in '\(key)': names start with a letter or digit and contain only letters, digits, '.', '_' and '-'",
                        at: location)
                    return nil
                }
                return (name, location, value)
            }
    }

    private func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first)
        else { return false }
        return name.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0))
        }
    }

    /// Records the name; reports a second definition with the first one's location.
    private func claim(_ entry: Entry, kind: String, in names: inout [String: SourceLocation]) -> Bool {
        if let first = names[entry.name] {
            sink.error("duplicate \(kind) '\(entry.name)'; first defined at \(first)", at: entry.location)
            return false
        }
        names[entry.name] = entry.location
        return true
    }

    /// The definition's mapping, with the provider's `type` read and looked up.
    private func providerSection(_ entry: Entry, kind: String, types: [String], in top: ConfigSection)
        -> (section: ConfigSection, type: String)?
    {
        guard case .mapping(let mapping) = entry.value else {
            sink.error("\(kind) '\(entry.name)' must be a mapping with a 'type'; found \(describe(entry.value))", at: top.at(entry.value))
            return nil
        }
        let section = top.child(mapping, context: "\(kind) '\(entry.name)'")
        guard let type = section.requiredString("type") else {
            section.acceptAllKeys()
            return nil
        }
        guard types.contains(type) else {
            let known = types.isEmpty ? "none are available" : "known types: \(types.joined(separator: ", "))"
            section.error("unknown \(kind) type '\(type)' for \(kind) '\(entry.name)'; \(known)", key: "type")
            section.acceptAllKeys()
            return nil
        }
        return (section, type)
    }

    /// Runs a provider's decode, making sure a refusal always comes with a reason.
    private func decodeSettings<S>(_ section: ConfigSection, _ decode: (ConfigSection) -> S?) -> S? {
        let before = sink.diagnostics.count
        let settings = decode(section)
        if settings == nil, sink.diagnostics.count == before {
            section.error("invalid settings in \(section.context)", at: section.location)
        }
        return settings
    }

    private mutating func addFeed(_ entry: Entry, in top: ConfigSection) {
        let isNew = claim(entry, kind: "feed", in: &feedNames)
        guard let (section, type) = providerSection(entry, kind: "feed", types: registry.feedTypes, in: top),
            let provider = registry.feed(type),
            let settings = decodeSettings(section, provider.decode), isNew
        else { return }
        feeds.append(FeedConfiguration(name: entry.name, type: type, settings: settings, location: entry.location))
    }

    private mutating func addTarget(_ entry: Entry, in top: ConfigSection) {
        let isNew = claim(entry, kind: "target", in: &targetNames)
        guard let (section, type) = providerSection(entry, kind: "target", types: registry.targetTypes, in: top),
            let provider = registry.target(type),
            let settings = decodeSettings(section, provider.decode), isNew
        else { return }
        targets.append(TargetConfiguration(name: entry.name, type: type, settings: settings, location: entry.location))
    }

    private mutating func addPolicy(_ entry: Entry, in top: ConfigSection) {
        let isNew = claim(entry, kind: "policy", in: &policyNames)
        guard case .mapping(let mapping) = entry.value else {
            sink.error("policy '\(entry.name)' must be a mapping; found \(describe(entry.value))", at: top.at(entry.value))
            return
        }
        let section = top.child(mapping, context: "policy '\(entry.name)'")
        var policy = PolicyDecoder.decode(name: entry.name, section)
        // A second definition is still checked, references included, but only the first counts.
        if !isNew { policy.definition = nil }
        policies.append(policy)
    }

    private static let levels: [(name: String, value: AuditSeverity)] = [
        ("debug", .debug), ("info", .info), ("notice", .notice), ("warning", .warning), ("error", .error),
        ("critical", .critical),
    ]

    /// Later files override earlier ones key by key, so a drop-in can change one setting.
    private mutating func addLogging(_ section: ConfigSection) {
        if let level = section.choice("level", Self.levels) { logging.level = level }
        if let target = section.choice("target", LogTarget.self) { logging.target = target }
        if let attributes = section.stringList("attributes") { logging.attributeAllowlist = Set(attributes) }
    }

    private mutating func addState(_ section: ConfigSection) {
        if let directory = section.string("directory") {
            if directory.hasPrefix("/") {
                state.directory = directory
            } else {
                section.error("'directory' in \(section.context) must be an absolute path", key: "directory")
            }
        }
        if let maxCalls = section.int("max_calls", in: 1...10_000_000) { state.limits.maxCalls = maxCalls }
        if let idleLimit = section.positiveDuration("idle_limit") { state.limits.idleLimit = idleLimit }
        if let interval = section.duration("journal_sync_interval") {
            if interval <= .seconds(10) {
                state.journalSyncInterval = interval
            } else {
                section.error("'journal_sync_interval' in \(section.context) must be at most 10s", key: "journal_sync_interval")
            }
        }
    }

    /// The callback listener. TLS unless `tls: false` says otherwise, and plain HTTP off loopback
    /// only with `behind_proxy: true`: an operator must say so to expose an unencrypted listener.
    private mutating func addIngress(_ section: ConfigSection) {
        let address = section.string("address") ?? "127.0.0.1"
        let port = section.int("port", in: 1...65535) ?? 8443
        let behindProxy = section.bool("behind_proxy") ?? false
        var security = IngressConfiguration.Security.plain(behindProxy: behindProxy)
        if let node = section.node("tls"), case .scalar = node, node.bool == false {
            _ = section.bool("tls")
        } else if let tls = section.section("tls") {
            let certificate = tls.requiredString("certificate")
            let key = tls.requiredString("key")
            if let certificate, let key { security = .tls(certificate: certificate, key: key) }
            if behindProxy {
                section.error("'behind_proxy' in \(section.context) is for plain HTTP; remove it or set 'tls: false'", key: "behind_proxy")
            }
        } else if !section.has("tls") {
            section.error(
                "\(section.context) needs 'tls' with a 'certificate' and a 'key', or 'tls: false' for plain HTTP (on a loopback address, or with 'behind_proxy: true')",
                at: section.location)
        }
        var configuration = IngressConfiguration(address: address, port: port, security: security)
        if let bytes = section.int("max_body_bytes", in: 1...(64 << 20)) { configuration.maximumBodySize = bytes }
        if let bytes = section.int("max_header_bytes", in: 1024...65535) { configuration.maximumHeaderSize = bytes }
        if let count = section.int("max_connections", in: 1...65535) { configuration.maximumConnections = count }
        if let value = section.positiveDuration("header_timeout") { configuration.headerTimeout = value }
        if let value = section.positiveDuration("body_timeout") { configuration.bodyTimeout = value }
        if let value = section.positiveDuration("authentication_timeout") { configuration.authenticationTimeout = value }
        if let value = section.positiveDuration("handler_timeout") { configuration.handlerTimeout = value }
        if let value = section.positiveDuration("refusal_record_interval") { configuration.refusalRecordInterval = value }
        for problem in configuration.problems {
            section.error("\(section.context): \(problem)", key: problem.hasPrefix("plain HTTP") ? "address" : nil)
        }
        ingress = configuration
    }

    /// The metrics listener: off unless `enabled: true`; loopback and plain HTTP by default; TLS,
    /// or plain HTTP off loopback only with `behind_proxy: true`, as for the ingress. A later file
    /// replaces the whole section.
    private mutating func addMetrics(_ section: ConfigSection) {
        let enabled = section.bool("enabled") ?? false
        let address = section.string("address") ?? "127.0.0.1"
        let port = section.int("port", in: 1...65535) ?? MetricsConfiguration.defaultPort
        let behindProxy = section.bool("behind_proxy") ?? false
        var security = IngressConfiguration.Security.plain(behindProxy: behindProxy)
        if let node = section.node("tls"), case .scalar = node, node.bool == false {
            _ = section.bool("tls")
        } else if let tls = section.section("tls") {
            let certificate = tls.requiredString("certificate")
            let key = tls.requiredString("key")
            if let certificate, let key { security = .tls(certificate: certificate, key: key) }
            if behindProxy {
                section.error("'behind_proxy' in \(section.context) is for plain HTTP; remove it or set 'tls: false'", key: "behind_proxy")
            }
        }
        var path = "/metrics"
        if let value = section.string("path") {
            if !value.hasPrefix("/") || value.count > 256 || value == "/healthz"
                || !value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "?" && $0 != "#" })
            {
                section.error(
                    "'path' in \(section.context) must start with '/', hold only printable ASCII without '?' or '#', "
                        + "be at most 256 characters and not be /healthz (which the listener answers itself)", key: "path")
            } else {
                path = value
            }
        }
        let configuration = MetricsConfiguration(
            listener: MetricsConfiguration.listenerDefaults(address: address, port: port, security: security), path: path)
        for problem in configuration.listener.problems {
            section.error("\(section.context): \(problem)", key: problem.hasPrefix("plain HTTP") ? "address" : nil)
        }
        metrics = enabled ? configuration : nil
    }

    /// The control socket: an absolute path that fits a Unix socket address, or `enabled: false`.
    private mutating func addControl(_ section: ConfigSection) {
        if let enabled = section.bool("enabled") { control.enabled = enabled }
        if let socket = section.string("socket") {
            if !socket.hasPrefix("/") {
                section.error("'socket' in \(section.context) must be an absolute path", key: "socket")
            } else if socket.utf8.count > 95 {
                section.error("'socket' in \(section.context) must be at most 95 bytes long (a Unix socket address)", key: "socket")
            } else {
                control.socket = socket
            }
        }
    }

    /// A target asked for what its platform cannot do (a recording-only API asked to mute the
    /// agent) is refused here, with the provider's reason, rather than failing at the first card.
    private func refuseUnsupported(_ reference: Reference) {
        guard let kind = reference.kind, let target = targets.first(where: { $0.name == reference.name }),
            let why = target.settings.refusal(of: kind, by: reference.addressing)
        else { return }
        sink.error(
            "target '\(target.name)' (type \(target.type)) cannot perform '\(kind.rawValue)' by \(reference.addressing.rawValue) "
                + "in \(reference.context): \(why)", at: reference.location)
    }

    /// Checks references across all files, now that every name is known.
    func finish(files: [String]) -> DaemonConfiguration? {
        func unknown(_ kind: String, _ reference: Reference, among names: [String: SourceLocation]) {
            let defined = names.keys.sorted()
            let list = defined.isEmpty ? "no \(kind)s are defined" : "defined \(kind)s: \(defined.joined(separator: ", "))"
            sink.error("unknown \(kind) '\(reference.name)' in \(reference.context); \(list)", at: reference.location)
        }
        for policy in policies {
            for reference in policy.feedReferences where feedNames[reference.name] == nil {
                unknown("feed", reference, among: feedNames)
            }
            for reference in policy.targetReferences {
                guard targetNames[reference.name] != nil else {
                    unknown("target", reference, among: targetNames)
                    continue
                }
                refuseUnsupported(reference)
            }
        }
        guard sink.isEmpty else { return nil }
        let engine = EngineConfiguration(
            policies: policies.compactMap(\.definition),
            targets: targets.map { TargetDescriptor(name: $0.name, confirmsByEvent: $0.settings.confirmsByEvent) },
            limits: state.limits)
        var configuration = DaemonConfiguration(
            files: files, feeds: feeds, targets: targets, engine: engine, logging: logging, state: state, ingress: ingress,
            metrics: metrics)
        configuration.control = control
        return configuration
    }
}
