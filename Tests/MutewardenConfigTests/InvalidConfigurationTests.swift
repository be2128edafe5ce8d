import MutewardenConfig
import Testing

/// One configuration with one mistake, and where and how it must be reported.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var line: Int
    var column: Int
    var message: String
    var environment: [String: String] = testEnvironment

    var testDescription: String { name }
}

/// An action with `lines` after `kind: mute` and `target: t`, each on its own line at column 9.
func action(_ lines: String...) -> String {
    (["kind: mute", "target: t"] + lines).joined(separator: "\n        ")
}

let invalidCases: [InvalidCase] = [
    // Unknown keys, at every level.
    InvalidCase(
        name: "unknown top-level key", yaml: header + "feed:\n  x: {}\n", line: 12, column: 1,
        message:
            "unknown key 'feed' in the top level; expected one of: feeds, targets, policies, logging, state, ingress, metrics, control (did you mean 'feeds'?)"
    ),
    InvalidCase(
        name: "unknown key in a policy",
        yaml: policy(
            """
                feeds: [f]
                start: {attribute: PCI_STAGE, equals: card}
                max_duraton: 5m
                actions: [{kind: mute, target: t}]
            """), line: 16, column: 5,
        message:
            "unknown key 'max_duraton' in policy 'p'; expected one of: feeds, scope, mode, start, stop, max_duration, on_timeout, actions (did you mean 'max_duration'?)"
    ),
    InvalidCase(
        name: "unknown key in an action", yaml: policy(action: action("dedline: 2s")), line: 19, column: 9,
        message: "unknown key 'dedline' in action 1 of policy 'p'; expected one of: kind, target, by, deadline, retry, fallback"),
    InvalidCase(
        name: "unknown key in provider settings",
        yaml: "feeds:\n  f:\n    type: test-feed\n    url: https://cc.example\n    rte: 5\n", line: 5, column: 5,
        message: "unknown key 'rte' in feed 'f'; expected one of: type, url, rate, token, tls (did you mean 'rate'?)"),
    InvalidCase(
        name: "unknown key in nested provider settings",
        yaml: "feeds:\n  f:\n    type: test-feed\n    url: https://cc.example\n    tls: {verify: true, ca: x}\n",
        line: 5, column: 25, message: "unknown key 'ca' in 'tls' in feed 'f'; expected one of: verify"),
    InvalidCase(
        name: "unknown key in a condition", yaml: policy(start: "{attribute: PCI_STAGE, equals: card, case: exact}"),
        line: 15, column: 49, message: "unknown key 'case' in 'start' of policy 'p'"),

    // Wrong types.
    InvalidCase(
        name: "scalar where a list is expected",
        yaml: policy("    feeds: f\n    start: {state: established}\n    actions: [{kind: mute, target: t}]"),
        line: 14, column: 12, message: "'feeds' in policy 'p' must be a list; found a string"),
    InvalidCase(
        name: "string where an integer is expected",
        yaml: "feeds:\n  f:\n    type: test-feed\n    url: https://cc.example\n    rate: fast\n", line: 5, column: 11,
        message: "'rate' in feed 'f' must be an integer; found a string"),
    InvalidCase(
        name: "integer out of range", yaml: "state:\n  max_calls: 0\n", line: 2, column: 14,
        message: "'max_calls' in 'state' in the top level must be between 1 and 10000000; found 0"),
    InvalidCase(
        name: "string where a boolean is expected",
        yaml: "targets:\n  t:\n    type: test-target\n    password: x\n    confirms_by_event: maybe\n", line: 5, column: 24,
        message: "'confirms_by_event' in target 't' must be true or false; found a string"),
    InvalidCase(
        name: "number out of range",
        yaml: "targets:\n  t:\n    type: test-target\n    password: x\n    fail_ratio: 1.5\n", line: 5, column: 17,
        message: "'fail_ratio' in target 't' must be between 0.0 and 1.0; found 1.5"),
    InvalidCase(
        name: "list where a mapping is expected", yaml: "logging: [debug]\n", line: 1, column: 10,
        message: "'logging' in the top level must be a mapping; found a list"),
    InvalidCase(
        name: "feed written as a scalar", yaml: "feeds:\n  f: test-feed\n", line: 2, column: 6,
        message: "feed 'f' must be a mapping with a 'type'; found a string"),
    InvalidCase(
        name: "empty value", yaml: policy(action: action("deadline:")), line: 19, column: 18,
        message: "'deadline' in action 1 of policy 'p' must be a duration such as 30s, 5m or 1h; found an empty value"),
    InvalidCase(
        name: "invalid name", yaml: "feeds:\n  my feed:\n    type: test-feed\n    url: https://x\n", line: 2, column: 3,
        message: "invalid name 'my feed' in 'feeds'"),

    // References.
    InvalidCase(
        name: "unknown feed",
        yaml: policy("    feeds: [f, crm]\n    start: {state: established}\n    actions: [{kind: mute, target: t}]"),
        line: 14, column: 16, message: "unknown feed 'crm' in policy 'p'; defined feeds: f"),
    InvalidCase(
        name: "unknown target", yaml: policy(action: "kind: mute\n        target: recorder"), line: 18, column: 17,
        message: "unknown target 'recorder' in action 1 of policy 'p'; defined targets: backup, t"),
    InvalidCase(
        name: "unknown fallback target", yaml: policy(action: action("fallback: [backup, spare]")), line: 19, column: 28,
        message: "unknown target 'spare' in action 1 of policy 'p'; defined targets: backup, t"),
    InvalidCase(
        name: "fallback to the action's own target", yaml: policy(action: action("fallback: [t]")), line: 19, column: 20,
        message: "fallback target 't' in action 1 of policy 'p' is the action's own target"),
    InvalidCase(
        name: "repeated fallback", yaml: policy(action: action("fallback: [backup, backup]")), line: 19, column: 28,
        message: "fallback target 'backup' is listed twice in 'fallback' of action 1 of policy 'p'"),
    InvalidCase(
        name: "no feeds",
        yaml: policy("    feeds: []\n    start: {state: established}\n    actions: [{kind: mute, target: t}]"),
        line: 14, column: 12, message: "'feeds' in policy 'p' must name at least one feed"),

    // Durations.
    InvalidCase(
        name: "duration without a unit", yaml: policy(action: action("deadline: 10")), line: 19, column: 19,
        message: "invalid duration for 'deadline' in action 1 of policy 'p': expected a duration such as 30s, 5m or 1h"),
    InvalidCase(
        name: "duration with a spelled-out unit", yaml: policy(action: action("deadline: 5 min")), line: 19, column: 19,
        message: "expected a duration such as 30s, 5m or 1h"),
    InvalidCase(
        name: "negative duration", yaml: policy(action: action("deadline: -1s")), line: 19, column: 19,
        message: "expected a duration such as 30s, 5m or 1h"),
    InvalidCase(
        name: "fractional duration", yaml: "state:\n  idle_limit: 1.5h\n", line: 2, column: 15,
        message: "invalid duration for 'idle_limit' in 'state' in the top level: expected a duration such as 30s, 5m or 1h"),
    InvalidCase(
        name: "zero deadline", yaml: policy(action: action("deadline: 0s")), line: 19, column: 19,
        message: "'deadline' in action 1 of policy 'p' must be greater than zero"),
    InvalidCase(
        name: "retry backoff starting above its maximum", yaml: policy(action: action("retry: {initial: 2s, max: 1s}")),
        line: 19, column: 26, message: "'initial' in 'retry' in action 1 of policy 'p' must not exceed 'max'"),

    // Duplicates.
    InvalidCase(
        name: "duplicate feed in one file",
        yaml: "feeds:\n  f:\n    type: test-feed\n    url: https://a\n  f:\n    type: test-feed\n    url: https://b\n",
        line: 5, column: 3, message: "duplicate feed 'f'; first defined at test.yaml:2:3"),
    InvalidCase(
        name: "duplicate key in a policy",
        yaml: policy(
            """
                feeds: [f]
                mode: enforce
                start: {state: established}
                mode: dry-run
                actions: [{kind: mute, target: t}]
            """), line: 17, column: 5, message: "duplicate key 'mode' in policy 'p'; first defined at test.yaml:15:5"),
    InvalidCase(
        name: "duplicate top-level section", yaml: "logging:\n  level: info\nlogging:\n  level: debug\n", line: 3, column: 1,
        message: "duplicate key 'logging' in the top level; first defined at test.yaml:1:1"),

    // Actions.
    InvalidCase(
        name: "empty action list",
        yaml: policy("    feeds: [f]\n    start: {state: established}\n    actions: []"), line: 16, column: 14,
        message: "policy 'p' has no actions; 'actions' must list at least one"),
    InvalidCase(
        name: "missing actions", yaml: policy("    feeds: [f]\n    start: {state: established}"), line: 14, column: 5,
        message: "missing required key 'actions' in policy 'p'"),
    InvalidCase(
        name: "missing start", yaml: policy("    feeds: [f]\n    actions: [{kind: mute, target: t}]"), line: 14, column: 5,
        message: "missing required key 'start' in policy 'p'"),

    // Conditions.
    InvalidCase(
        name: "invalid regular expression", yaml: policy(start: #"{attribute: PAN, matches: "([0-9]"}"#), line: 15, column: 38,
        message: "invalid regular expression in 'matches' of 'start' of policy 'p'"),
    InvalidCase(
        name: "condition with no form", yaml: policy(start: "{when: PCI_STAGE}"), line: 15, column: 13,
        message: "unknown key 'when' in 'start' of policy 'p'; expected one of: all, any, attribute, state,"),
    InvalidCase(
        name: "empty condition", yaml: policy(start: "{}"), line: 15, column: 12,
        message: "'start' of policy 'p' needs exactly one of: all, any, attribute, state"),
    InvalidCase(
        name: "operator without an attribute", yaml: policy(start: "{equals: card}"), line: 15, column: 13,
        message: "'equals' in 'start' of policy 'p' needs an 'attribute' key naming the attribute it tests"),
    InvalidCase(
        name: "condition that is not a mapping", yaml: policy(start: "PCI_STAGE"), line: 15, column: 12,
        message: "'start' of policy 'p' must be a mapping with one of: all, any, attribute, state; found a string"),
    InvalidCase(
        name: "attribute without an operator", yaml: policy(start: "{attribute: PCI_STAGE}"), line: 15, column: 12,
        message: "an attribute condition needs exactly one of: equals, not_equals, in, matches, present, absent"),
    InvalidCase(
        name: "two condition forms in one mapping",
        yaml: policy(start: "{all: [{state: established}], attribute: PCI_STAGE, equals: card}"), line: 15, column: 42,
        message: "'start' of policy 'p' has both 'all' and 'attribute'; a condition takes exactly one of: all, any, attribute, state"),
    InvalidCase(
        name: "two attribute operators", yaml: policy(start: "{attribute: PCI_STAGE, equals: card, in: [card, cvv]}"),
        line: 15, column: 49,
        message: "an attribute condition takes exactly one of: equals, not_equals, in, matches, present, absent; found both 'equals' and 'in'"),
    InvalidCase(
        name: "operator beside a list form", yaml: policy(start: "{any: [{state: held}], present: true}"), line: 15, column: 35,
        message: "'present' in 'start' of policy 'p' belongs to an 'attribute' condition, not to 'any'"),
    InvalidCase(
        name: "nested condition error", yaml: policy(start: "{all: [{state: established}, {attribute: X, present: false}]}"),
        line: 15, column: 65,
        message: "'present' in condition 2 of 'all' in 'start' of policy 'p' only takes 'true'; write 'absent: true' for the opposite"),
    InvalidCase(
        name: "empty condition list", yaml: policy(start: "{any: []}"), line: 15, column: 18,
        message: "'any' in 'start' of policy 'p' must list at least one condition"),
    InvalidCase(
        name: "unknown call state", yaml: policy(start: "{state: [established, talking]}"), line: 15, column: 34,
        message: "unknown call state 'talking' in 'start' of policy 'p'; expected one of: ringing, dialing, established, held, released"),

    // Enumerations.
    InvalidCase(
        name: "invalid policy mode",
        yaml: policy("    feeds: [f]\n    mode: enforcing\n    start: {state: established}\n    actions: [{kind: mute, target: t}]"),
        line: 15, column: 11, message: "invalid value 'enforcing' for 'mode' in policy 'p'; expected one of: enforce, dry-run"),
    InvalidCase(
        name: "invalid action kind", yaml: policy(action: "kind: silence\n        target: t"), line: 17, column: 15,
        message: "invalid value 'silence' for 'kind' in action 1 of policy 'p'; expected one of: mute, pause-recording"),
    InvalidCase(
        name: "invalid addressing", yaml: policy(action: action("by: agent")), line: 19, column: 13,
        message: "invalid value 'agent' for 'by' in action 1 of policy 'p'; expected one of: call, extension"),
    InvalidCase(
        name: "invalid log level", yaml: "logging:\n  level: verbose\n", line: 2, column: 10,
        message: "invalid value 'verbose' for 'level' in 'logging' in the top level; expected one of: debug, info, notice, warning, error, critical"),
    InvalidCase(
        name: "invalid provider enumeration",
        yaml: "targets:\n  t:\n    type: test-target\n    password: x\n    transport: ftp\n", line: 5, column: 16,
        message: "invalid value 'ftp' for 'transport' in target 't'; expected one of: http, https"),

    // Providers.
    InvalidCase(
        name: "unknown provider type", yaml: "feeds:\n  f:\n    type: genesys\n    url: https://x\n", line: 3, column: 11,
        message: "unknown feed type 'genesys' for feed 'f'; known types: test-feed"),
    InvalidCase(
        name: "missing provider type", yaml: "targets:\n  t:\n    password: x\n", line: 3, column: 5,
        message: "missing required key 'type' in target 't'"),
    InvalidCase(
        name: "missing provider key", yaml: "feeds:\n  f:\n    type: test-feed\n", line: 3, column: 5,
        message: "missing required key 'url' in feed 'f'"),
    InvalidCase(
        name: "provider's own validation", yaml: "feeds:\n  f:\n    type: test-feed\n    url: http://cc.example\n", line: 4, column: 10,
        message: "'url' must use https or wss"),

    // Secrets.
    InvalidCase(
        name: "missing secret environment variable",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${env:DB_PASSWORD}\n", line: 4, column: 15,
        message: "environment variable 'DB_PASSWORD' for secret reference '${env:DB_PASSWORD}' is not set"),
    InvalidCase(
        name: "missing secret file",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${file:/nonexistent/mutewarden/password}\n", line: 4,
        column: 15,
        message:
            "cannot read '/nonexistent/mutewarden/password' for secret reference '${file:/nonexistent/mutewarden/password}': No such file or directory"
    ),
    InvalidCase(
        name: "credential without a credentials directory",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${credential:db}\n", line: 4, column: 15,
        message: "secret reference '${credential:db}' needs $CREDENTIALS_DIRECTORY"),
    InvalidCase(
        name: "missing credential",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${credential:db}\n", line: 4, column: 15,
        message: "cannot read '/nonexistent/credentials/db' for secret reference '${credential:db}'",
        environment: ["CREDENTIALS_DIRECTORY": "/nonexistent/credentials"]),
    InvalidCase(
        name: "malformed secret reference",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${DB_PASSWORD}\n", line: 4, column: 15,
        message: "malformed secret reference '${DB_PASSWORD}'; expected ${env:NAME}, ${file:/absolute/path} or ${credential:NAME}"),
    InvalidCase(
        name: "secret reference with an empty name",
        yaml: "targets:\n  t:\n    type: test-target\n    password: ${env:}\n", line: 4, column: 15,
        message: "malformed secret reference '${env:}'"),
    InvalidCase(
        name: "secret reference in a non-secret field",
        yaml: "feeds:\n  f:\n    type: test-feed\n    url: ${env:FEED_URL}\n", line: 4, column: 10,
        message: "secret references are only accepted in secret fields; 'url' in feed 'f' is not one"),
    InvalidCase(
        name: "secret reference in a list", yaml: "logging:\n  attributes: [PCI_STAGE, \"${env:X}\"]\n", line: 2, column: 27,
        message: "secret references are only accepted in secret fields"),

    // Files.
    InvalidCase(
        name: "YAML syntax error", yaml: "feeds:\n  f:\n    type: test-feed\n   url: [https://x\n", line: 4, column: 4,
        message: "invalid YAML: did not find expected key"),
    InvalidCase(
        name: "empty file", yaml: "", line: 1, column: 1, message: "configuration file is empty"),
    InvalidCase(
        name: "file with only comments", yaml: "# nothing yet\n", line: 1, column: 1, message: "configuration file is empty"),
    InvalidCase(
        name: "top level that is not a mapping", yaml: "- feeds\n- policies\n", line: 1, column: 1,
        message:
            "the top level of a configuration file must be a mapping with any of: feeds, targets, policies, logging, state, ingress, metrics, control; found a list"
    ),
    InvalidCase(
        name: "relative state directory", yaml: "state:\n  directory: var/lib/mutewarden\n", line: 2, column: 14,
        message: "'directory' in 'state' in the top level must be an absolute path"),
    InvalidCase(
        name: "relative control socket", yaml: "control:\n  socket: run/control.sock\n", line: 2, column: 11,
        message: "'socket' in 'control' in the top level must be an absolute path"),
    InvalidCase(
        name: "control socket too long for a socket address", yaml: "control:\n  socket: /\(String(repeating: "d", count: 95))\n",
        line: 2, column: 11, message: "'socket' in 'control' in the top level must be at most 95 bytes long"),
    InvalidCase(
        name: "unknown key in control", yaml: "control:\n  path: /run/x.sock\n", line: 2, column: 3,
        message: "unknown key 'path' in 'control' in the top level; expected one of: enabled, socket"),
]

@Test("an invalid configuration is reported once, at its location", arguments: invalidCases)
func invalidConfiguration(_ testCase: InvalidCase) {
    let found = diagnostics(of: testCase.yaml, environment: testCase.environment)
    let expected = MutewardenConfig.SourceLocation(file: "test.yaml", line: testCase.line, column: testCase.column)
    #expect(found.count == 1, "\(found)")
    #expect(
        found.contains { $0.location == expected && $0.message.contains(testCase.message) },
        "expected \(expected): error: ...\(testCase.message)...; found:\n\(ConfigurationError(diagnostics: found))")
}

@Test func invalidCasesCoverEnoughConfigurations() {
    #expect(invalidCases.count >= 25)
}

@Test func everyErrorInAFileIsReported() {
    let yaml = """
        feeds:
          f:
            type: test-feed
            url: https://cc.example
            rate: 0
          f:
            type: nope
        targets:
          t:
            type: test-target
            password: ${env:MISSING}
        policies:
          p:
            feeds: [f, g]
            start: {attribute: PCI_STAGE, equals: card, in: [a]}
            actions:
              - kind: mute
                target: t
                deadline: 10
              - kind: pause-recording
                target: r
        logging:
          level: loud
        stats: {}
        """
    let found = diagnostics(of: yaml)
    let positions = found.map { "\($0.location?.line ?? 0):\($0.location?.column ?? 0)" }
    #expect(
        positions == ["5:11", "6:3", "7:11", "11:15", "14:16", "15:49", "19:19", "21:17", "23:10", "24:1"],
        "\(ConfigurationError(diagnostics: found))")
    #expect(found.allSatisfy { $0.location?.file == "test.yaml" })
    // Every diagnostic renders in the compiler-style form editors link from.
    #expect(ConfigurationError(diagnostics: found).description.split(separator: "\n").allSatisfy { $0.hasPrefix("test.yaml:") })
}

@Test func repeatedKeysAreAllReportedAlongsideOtherErrors() {
    let yaml = """
        logging:
          level: info
          level: debug
          level: notice
        state:
          max_calls: 10
          max_calls: 20
          idle_limit: forever
        """
    let found = diagnostics(of: yaml)
    #expect(
        found.map(\.description) == [
            "test.yaml:3:3: error: duplicate key 'level' in 'logging' in the top level; first defined at test.yaml:2:3",
            "test.yaml:4:3: error: duplicate key 'level' in 'logging' in the top level; first defined at test.yaml:2:3",
            "test.yaml:7:3: error: duplicate key 'max_calls' in 'state' in the top level; first defined at test.yaml:6:3",
            "test.yaml:8:15: error: invalid duration for 'idle_limit' in 'state' in the top level: expected a duration such as 30s, 5m or 1h",
        ])
}

@Test func aMisspelledRequiredKeyIsReportedWithTheRightSpelling() {
    let found = diagnostics(of: "targets:\n  t:\n    type: test-target\n    pasword: x\n")
    #expect(
        found.map(\.description) == [
            "test.yaml:3:5: error: missing required key 'password' in target 't'",
            "test.yaml:4:5: error: unknown key 'pasword' in target 't'; expected one of: type, password, confirms_by_event, timeout, transport, fail_ratio, hosts (did you mean 'password'?)",
        ])
}

@Test func quotedDuplicateKeysAreFound() {
    let found = diagnostics(of: "state:\n  \"max_calls\": 10\n  'max_calls': 20\n")
    #expect(
        found.map(\.description) == [
            "test.yaml:3:3: error: duplicate key 'max_calls' in 'state' in the top level; first defined at test.yaml:2:3"
        ])
}
