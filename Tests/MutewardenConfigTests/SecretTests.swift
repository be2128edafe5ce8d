import Foundation
import MutewardenConfig
import MutewardenProviderKit
import Testing

/// Distinctive enough that finding it anywhere in a description means it leaked.
private let planted = "PLANTED-s3cr3t-7f3a9c"

private func targetYAML(password: String) -> String {
    "targets:\n  t:\n    type: test-target\n    password: \(password)\n"
}

private func password(_ yaml: String, environment: [String: String]) throws -> Secret {
    let configuration = try loader(environment).load(yaml: yaml, file: "s.yaml")
    return try #require(configuration.targets.first?.settings as? TestTargetSettings).password
}

@Test func secretsResolveFromTheEnvironment() throws {
    let secret = try password(targetYAML(password: "${env:DB_PASSWORD}"), environment: ["DB_PASSWORD": planted])
    #expect(secret.reveal() == planted)
    #expect(secret.reference == "env:DB_PASSWORD")
    #expect(secret.description == "<secret env:DB_PASSWORD>")
}

@Test(arguments: ["\(planted)", "\(planted)\n", "\(planted)\r\n", "\(planted)\n\n"])
func secretsResolveFromFilesWithoutTrailingNewlines(contents: String) throws {
    try withTemporaryDirectory { directory in
        let path = directory + "/password"
        try write(contents, to: path)
        let secret = try password(targetYAML(password: "${file:\(path)}"), environment: [:])
        #expect(secret.reveal() == planted)
        #expect(secret.reference == "file:\(path)")
    }
}

@Test func secretsResolveFromSystemdCredentials() throws {
    try withTemporaryDirectory { directory in
        try write(planted + "\n", to: directory + "/db")
        let secret = try password(targetYAML(password: "${credential:db}"), environment: ["CREDENTIALS_DIRECTORY": directory])
        #expect(secret.reveal() == planted)
        #expect(secret.reference == "credential:db")
        #expect(String(describing: secret) == "<secret credential:db>")
    }
}

@Test func aLiteralInASecretFieldIsAnInlineSecret() throws {
    let secret = try password(targetYAML(password: "'\(planted)'"), environment: [:])
    #expect(secret.reveal() == planted)
    #expect(secret.reference == "inline")
    #expect(String(reflecting: secret) == "<secret inline>")
}

@Test(arguments: [
    ("${env:EMPTY}", "environment variable 'EMPTY' for secret reference '${env:EMPTY}' is empty"),
    ("${file:relative/path}", "malformed secret reference '${file:relative/path}'; expected ${file:/absolute/path}"),
    ("${credential:../db}", "malformed secret reference '${credential:../db}'"),
    ("${env:1ABC}", "malformed secret reference '${env:1ABC}'"),
    ("${vault:db}", "malformed secret reference '${vault:db}'"),
    ("\"\"", "secret is empty"),
    ("[a, b]", "'password' in target 't' must be a secret (a value or a reference such as ${env:NAME}); found a list"),
])
func invalidSecretFields(value: String, message: String) {
    let found = diagnostics(of: targetYAML(password: value), environment: ["EMPTY": ""])
    #expect(found.map(\.location?.description) == ["test.yaml:4:15"])
    #expect(found.first?.message.contains(message) == true, "\(found)")
}

@Test func anEmptySecretFileIsAnError() throws {
    try withTemporaryDirectory { directory in
        try write("\n", to: directory + "/empty")
        let found = diagnostics(of: targetYAML(password: "${file:\(directory)/empty}"), environment: [:])
        #expect(
            found.map(\.message) == ["'\(directory)/empty' for secret reference '${file:\(directory)/empty}' is empty ('password' in target 't')"])
    }
}

@Test func theSecretValueAppearsInNoDescriptionOfALoadedConfiguration() throws {
    try withTemporaryDirectory { directory in
        try write(planted, to: directory + "/file-secret")
        try write(planted, to: directory + "/db")
        let environment = ["ENV_SECRET": planted, "CREDENTIALS_DIRECTORY": directory]
        let yaml = """
            feeds:
              f:
                type: test-feed
                url: https://cc.example
                token: ${env:ENV_SECRET}
            targets:
              a:
                type: test-target
                password: ${file:\(directory)/file-secret}
              b:
                type: test-target
                password: ${credential:db}
              c:
                type: test-target
                password: \(planted)
            """
        let loader = ConfigurationLoader(registry: testRegistry, environment: environment)
        let configuration = try loader.load(yaml: yaml, file: "s.yaml")
        let secrets = configuration.targets.compactMap { ($0.settings as? TestTargetSettings)?.password }
        #expect(secrets.map { $0.reveal() } == [planted, planted, planted])

        var dumped = ""
        dump(configuration, to: &dumped)
        var dumpedLoader = ""
        dump(loader, to: &dumpedLoader)
        let texts =
            [
                String(describing: configuration), String(reflecting: configuration), "\(configuration)", dumped,
                String(describing: loader), String(reflecting: loader), dumpedLoader,
            ] + configuration.feeds.map(\.settings.summary) + configuration.targets.map(\.settings.summary)
            + configuration.targets.map { String(reflecting: $0) }
        for text in texts {
            #expect(!text.contains(planted), "leaked in: \(text)")
        }
        // The references, on the other hand, are there for the operator.
        #expect(String(describing: configuration).contains("<secret file:\(directory)/file-secret>"))
        #expect(String(describing: configuration).contains("<secret credential:db>"))
        #expect(String(describing: configuration).contains("<secret inline>"))
    }
}

@Test(arguments: [
    // Resolved secrets beside an unrelated error.
    "targets:\n  t:\n    type: test-target\n    password: ${env:ENV_SECRET}\n    fail_ratio: 7\n",
    // The value in a misspelled key, in a key of the wrong type and in a non-secret field.
    "targets:\n  t:\n    type: test-target\n    pasword: \(planted)\n",
    "targets:\n  t:\n    type: test-target\n    password: x\n    confirms_by_event: \(planted)\n",
    "targets:\n  t:\n    type: test-target\n    password: x\n    timeout: \(planted)\n",
    "targets:\n  t:\n    type: test-target\n    password: x\n    transport: [\(planted)]\n",
    "targets:\n  t:\n    type: test-target\n    password: x\n    fail_ratio: \(planted)\n",
    // An inline secret that also looks like a broken reference.
    "targets:\n  t:\n    type: test-target\n    password: \(planted)${env:X}\n",
    "targets:\n  t:\n    type: test-target\n    password: \"${env:X}\(planted)\"\n",
    // Twice in one mapping, and under an unknown provider type.
    "targets:\n  t:\n    type: test-target\n    password: \(planted)\n    password: \(planted)\n",
    "targets:\n  t:\n    type: other\n    password: \(planted)\n",
    // YAML syntax errors on the secret's own line, which Yams would quote.
    "targets:\n  t:\n    type: test-target\n    password: \(planted): [\n",
    "targets:\n  t:\n    type: test-target\n    password: \"\(planted)\n",
    "targets:\n  t:\n    type: test-target\n    password: \(planted)\n   x: 1\n",
    "targets:\n  t:\n    type: test-target\n    password: \(planted)\n  t:\n    type: test-target\n    password: \(planted)\n  t: {}\n",
])
func theSecretValueAppearsInNoDiagnostic(yaml: String) {
    let found = diagnostics(of: yaml, environment: ["ENV_SECRET": planted])
    #expect(!found.isEmpty)
    let error = ConfigurationError(diagnostics: found)
    var dumped = ""
    dump(error, to: &dumped)
    for text in [String(describing: error), String(reflecting: error), "\(error)", dumped] + found.map(\.message) {
        #expect(!text.contains(planted), "leaked in: \(text)")
    }
}
