import Foundation
import MutewardenConfig
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Inputs meant to make the loader spin or exhaust memory: each ends in a clear error, at a
// position, after work bounded by the limits (docs/configuration.md, "Limits").

/// `levels` anchors, each a list of ten aliases to the one before: ten to the `levels` nodes.
private func laughs(levels: Int) -> String {
    var yaml = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in 1..<levels {
        yaml += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
    }
    return yaml
}

@Test func aliasTreeAsAKeyIsRefusedBeforeItIsExpanded() {
    let found = diagnostics(of: laughs(levels: 3) + "? *l2\n: boom\n")
    #expect(found.map(\.description) == ["test.yaml:4:3: error: an alias cannot be used as a key"])

    let flow = diagnostics(of: laughs(levels: 3) + "m: {*l2 : boom}\n")
    #expect(flow.map(\.description) == ["test.yaml:4:5: error: an alias cannot be used as a key"])
}

@Test func billionLaughsStopAtTheAliasThatCrossesTheBound() {
    // Level 5 is 111,111 nodes; its aliases cross the bound of 100,000 added nodes.
    let found = diagnostics(of: laughs(levels: 30) + "? *l29\n: boom\n")
    #expect(found.count == 1)
    #expect(found.first?.location?.line == 5)
    #expect(found.first?.message.hasPrefix("aliases in this file expand to more than 100000 nodes; this one names 'l3'") == true)
}

@Test func aliasesAreCounted() {
    let aliases = Array(repeating: "*s", count: 1_001).joined(separator: ", ")
    let found = diagnostics(of: "s: &s x\nl: [\(aliases)]\n")
    // The 1,001st alias: "l: [" then 1,000 times "*s, ".
    #expect(found.map(\.description) == ["test.yaml:2:\(5 + 1_000 * 4): error: more than 1000 aliases in one file"])
}

@Test func anAliasOfAFewNodesIsFine() throws {
    let yaml =
        header + """
            policies:
              p:
                feeds: &feeds [f]
                start: &card {attribute: PCI_STAGE, equals: card}
                actions:
                  - {kind: mute, target: t}
              q:
                feeds: *feeds
                start: *card
                actions:
                  - {kind: mute, target: t}

            """
    let configuration = try loader().load(yaml: yaml, file: "test.yaml")
    #expect(configuration.engine.policies.count == 2)
}

@Test func deepNestingIsRefused() {
    let found = diagnostics(of: "a: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "\n")
    #expect(found.map(\.description) == ["test.yaml:1:67: error: mappings and lists nested more than 64 levels deep"])
    // libyaml's own bound stops the scanner, which reads ahead of the composer.
    let deeper = diagnostics(of: "a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n")
    #expect(deeper.count == 1)
    #expect(deeper.first?.message.hasPrefix("invalid YAML: Maximum nesting level reached") == true)
}

@Test func aThousandRepeatedKeysAreReportedOnceEachUpToTenThenCounted() {
    let yaml = "logging:\n" + String(repeating: "  level: info\n", count: 1_001) + "state:\n  max_calls: zero\n"
    let found = diagnostics(of: yaml).map(\.description)
    var expected = (3...12).map {
        "test.yaml:\($0):3: error: duplicate key 'level' in 'logging' in the top level; first defined at test.yaml:2:3"
    }
    expected.append("test.yaml:13:3: error: 990 more duplicate keys in 'logging' in the top level, from here on")
    expected.append("test.yaml:1004:14: error: 'max_calls' in 'state' in the top level must be an integer; found a string")
    #expect(found == expected)
}

@Test func aThousandRepeatedTopLevelKeys() {
    let found = diagnostics(of: String(repeating: "logging: {level: info}\n", count: 1_000)).map(\.description)
    #expect(found.count == 11)
    #expect(found.last == "test.yaml:12:1: error: 989 more duplicate keys in the top level, from here on")
}

// MARK: - Secret files

private func secretDiagnostics(_ reference: String, environment: [String: String] = [:]) -> [String] {
    diagnostics(of: "targets:\n  t:\n    type: test-target\n    password: \(reference)\n", environment: environment)
        .map(\.description)
}

@Test func aSecretFromDevZeroIsRefusedUnread() {
    #expect(
        secretDiagnostics("${file:/dev/zero}") == [
            "test.yaml:4:15: error: cannot read '/dev/zero' for secret reference '${file:/dev/zero}': not a regular file ('password' in target 't')"
        ])
}

@Test func aSecretFromAFIFOWithNoWriterIsRefusedWithoutWaiting() throws {
    try withTemporaryDirectory { directory in
        let path = directory + "/fifo"
        #expect(mkfifo(path, 0o600) == 0)
        #expect(
            secretDiagnostics("${file:\(path)}") == [
                "test.yaml:4:15: error: cannot read '\(path)' for secret reference '${file:\(path)}': not a regular file ('password' in target 't')"
            ])
    }
}

@Test func aCredentialLinkedToADeviceIsRefused() throws {
    try withTemporaryDirectory { directory in
        #expect(symlink("/dev/urandom", directory + "/db") == 0)
        let found = secretDiagnostics("${credential:db}", environment: ["CREDENTIALS_DIRECTORY": directory])
        #expect(found.count == 1)
        #expect(found.first?.hasSuffix(": not a regular file ('password' in target 't')") == true)
    }
}

@Test func aSecretFileOverTheBoundIsRefusedWithoutItsContent() throws {
    let planted = "PLANTED-big-s3cr3t"
    try withTemporaryDirectory { directory in
        let path = directory + "/big"
        try write(planted + String(repeating: "x", count: 64 * 1024 + 1 - planted.utf8.count), to: path)
        let found = secretDiagnostics("${file:\(path)}")
        #expect(
            found == [
                "test.yaml:4:15: error: cannot read '\(path)' for secret reference '${file:\(path)}': larger than 64 KiB ('password' in target 't')"
            ])
        #expect(!found.joined().contains(planted))

        try write(planted + String(repeating: "x", count: 64 * 1024 - planted.utf8.count), to: path)
        let configuration = try loader([:]).load(
            yaml: "targets:\n  t:\n    type: test-target\n    password: ${file:\(path)}\n", file: "test.yaml")
        #expect(configuration.targets.count == 1)
    }
}

@Test func aConfigurationFileOverTheBoundIsRefused() {
    #expect(diagnostics(ofFile: "/dev/zero") == ["/dev/zero: error: cannot read configuration file: larger than 1 MiB"])
}
