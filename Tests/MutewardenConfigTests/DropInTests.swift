import Foundation
import MutewardenConfig
import MutewardenModel
import Testing

private let mainFile = """
    feeds:
      sim:
        type: test-feed
        url: https://cc.example
    targets:
      recorder:
        type: test-target
        password: ${env:PASS}
    logging:
      level: info
      attributes: [PCI_STAGE]
    state:
      max_calls: 500
    """

@Test func dropInsMergeInNameOrderAfterTheMainFile() throws {
    try withTemporaryDirectory { directory in
        let main = directory + "/mutewarden.yaml"
        try write(mainFile, to: main)
        // A policy that names a target defined in a later drop-in and a feed from the main file.
        try write(
            """
            policies:
              capture:
                feeds: [sim]
                start: {attribute: PCI_STAGE, equals: card}
                actions: [{kind: pause-recording, target: phone}]
            logging:
              level: debug
            """, to: directory + "/conf.d/10-policies.yaml")
        try write(
            """
            targets:
              phone:
                type: test-target
                password: inline-password
                confirms_by_event: true
            logging:
              target: stderr
            state:
              idle_limit: 30m
            """, to: directory + "/conf.d/20-targets.yaml")
        // Not drop-ins: another extension, a hidden editor file.
        try write("this: is not yaml: at all: [", to: directory + "/conf.d/README.txt")
        try write("feeds: oops", to: directory + "/conf.d/.#10-policies.yaml")

        let configuration = try loader().load(path: main)
        #expect(configuration.files == [main, directory + "/conf.d/10-policies.yaml", directory + "/conf.d/20-targets.yaml"])
        #expect(configuration.feeds.map(\.name) == ["sim"])
        #expect(configuration.targets.map(\.name) == ["recorder", "phone"])
        #expect(configuration.targets.last?.location.description == directory + "/conf.d/20-targets.yaml:2:3")
        #expect(
            configuration.engine.targets == [
                TargetDescriptor(name: "recorder", confirmsByEvent: false),
                TargetDescriptor(name: "phone", confirmsByEvent: true),
            ])
        #expect(configuration.engine.policies.map(\.name) == ["capture"])
        // Key by key: each drop-in changed one setting and kept the others.
        #expect(configuration.logging.level == .debug)
        #expect(configuration.logging.target == .stderr)
        #expect(configuration.logging.attributeAllowlist == ["PCI_STAGE"])
        #expect(configuration.state.limits == TrackerLimits(maxCalls: 500, idleLimit: .seconds(1800)))
        #expect(configuration.engine.limits == configuration.state.limits)
        #expect(configuration.state.directory == "/var/lib/mutewarden")
    }
}

@Test func aMissingDropInDirectoryIsFine() throws {
    try withTemporaryDirectory { directory in
        try write(mainFile, to: directory + "/mutewarden.yaml")
        let configuration = try loader().load(path: directory + "/mutewarden.yaml")
        #expect(configuration.files == [directory + "/mutewarden.yaml"])
    }
}

@Test func aNameDefinedAgainInADropInIsReportedWithTheFirstLocation() throws {
    try withTemporaryDirectory { directory in
        let main = directory + "/mutewarden.yaml"
        let dropIn = directory + "/conf.d/50-site.yaml"
        try write(mainFile, to: main)
        try write("feeds:\n  other:\n    type: test-feed\n    url: https://x\n  sim:\n    type: test-feed\n    url: https://y\n", to: dropIn)
        #expect(diagnostics(ofFile: main) == ["\(dropIn):5:3: error: duplicate feed 'sim'; first defined at \(main):2:3"])
    }
}

@Test func errorsInEveryFileAreReportedInFileOrder() throws {
    try withTemporaryDirectory { directory in
        let main = directory + "/mutewarden.yaml"
        try write(mainFile + "\n  bogus: 1\n", to: main)
        try write(
            "policies:\n  p:\n    feeds: [nope]\n    start: {state: held}\n    actions: [{kind: mute, target: recorder}]\n",
            to: directory + "/conf.d/a.yaml")
        try write("targets:\n  t:\n    type: test-target\n   password: x\n", to: directory + "/conf.d/b.yaml")
        try write("", to: directory + "/conf.d/c.yaml")
        #expect(
            diagnostics(ofFile: main) == [
                "\(main):14:3: error: unknown key 'bogus' in 'state' in the top level; expected one of: directory, max_calls, idle_limit, journal_sync_interval",
                "\(directory)/conf.d/a.yaml:3:13: error: unknown feed 'nope' in policy 'p'; defined feeds: sim",
                "\(directory)/conf.d/b.yaml:4:4: error: invalid YAML: did not find expected key (while parsing a block mapping at line 2, column 3)",
                "\(directory)/conf.d/c.yaml:1:1: error: configuration file is empty; expected a mapping with any of: feeds, targets, policies, logging, state, ingress, metrics, control",
            ])
    }
}

@Test func aMissingMainFileIsReportedWithItsPath() {
    let path = "/nonexistent/mutewarden-\(UUID().uuidString)/mutewarden.yaml"
    #expect(diagnostics(ofFile: path) == ["\(path): error: cannot read configuration file: No such file or directory"])
}

@Test func anUnreadableMainFileIsReported() throws {
    try withTemporaryDirectory { directory in
        // A directory cannot be read as a file, whoever runs the test (root ignores permissions).
        let path = directory + "/mutewarden.yaml"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(diagnostics(ofFile: path) == ["\(path): error: cannot read configuration file: Is a directory"])
    }
}

@Test func aRelativeMainFileFindsItsDropInsBesideIt() throws {
    try withTemporaryDirectory { directory in
        try write(mainFile, to: directory + "/sub/mutewarden.yaml")
        try write("logging: {level: error}\n", to: directory + "/sub/conf.d/1.yaml")
        // Relative to the working directory without changing it: tests run in parallel.
        let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relative = String(repeating: "../", count: depth) + directory.dropFirst() + "/sub/mutewarden.yaml"
        let configuration = try loader().load(path: relative)
        #expect(configuration.files == [relative, relative.replacingOccurrences(of: "mutewarden.yaml", with: "conf.d/1.yaml")])
        #expect(configuration.logging.level == .error)
    }
}

@Test func aDropInWithTheYmlExtensionIsReportedNotSkipped() throws {
    try withTemporaryDirectory { directory in
        let main = directory + "/mutewarden.yaml"
        try write(mainFile, to: main)
        try write("logging: {level: debug}\n", to: directory + "/conf.d/10-site.yml")
        #expect(diagnostics(ofFile: main) == ["\(directory)/conf.d/10-site.yml: error: drop-in files must end in .yaml; this one is not read"])
    }
}
