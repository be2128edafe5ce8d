import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import Testing

/// A target that can only pause recordings, and only by call: what a recording-only API offers.
private struct RecorderSettings: TargetSettings {
    var summary: String { "recorder" }
    var confirmsByEvent: Bool { false }

    func refusal(of kind: ActionKind, by addressing: Addressing) -> String? {
        if kind == .mute { return "it pauses recordings and cannot mute" }
        if addressing == .agentExtension { return "it acts on calls by id" }
        return nil
    }

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        TestTarget(descriptor: TargetDescriptor(name: name, confirmsByEvent: false))
    }
}

private let registry = testRegistry.merging(
    ProviderRegistry(feeds: [], targets: [TargetProvider(type: "recorder") { _ in RecorderSettings() }]))

private func load(_ actions: String) throws(ConfigurationError) -> DaemonConfiguration {
    try ConfigurationLoader(registry: registry, environment: testEnvironment).load(
        yaml: """
            feeds:
              f: { type: test-feed, url: "https://f" }
            targets:
              rec: { type: recorder }
              other: { type: test-target, password: p }
            policies:
              card:
                feeds: [f]
                start: { attribute: S, equals: CARD }
                actions:
            \(actions)
            """, file: "cap.yaml")
}

@Test func whatATargetCanDoIsAccepted() throws {
    let configuration = try load("      - { kind: pause-recording, target: rec }")
    #expect(configuration.engine.policies.first?.actions.first?.target == "rec")
}

@Test(arguments: [
    (
        "      - { kind: mute, target: rec }",
        "cap.yaml:11:31: error: target 'rec' (type recorder) cannot perform 'mute' by call in action 1 of policy 'card': it pauses recordings and cannot mute"
    ),
    (
        "      - { kind: pause-recording, target: rec, by: extension }",
        "cap.yaml:11:42: error: target 'rec' (type recorder) cannot perform 'pause-recording' by extension in action 1 of policy 'card': it acts on calls by id"
    ),
    (
        "      - { kind: mute, target: other, fallback: [rec] }",
        "cap.yaml:11:49: error: target 'rec' (type recorder) cannot perform 'mute' by call in action 1 of policy 'card': it pauses recordings and cannot mute"
    ),
])
func anActionATargetCannotTakeIsRefusedWhereItIsAsked(_ actions: String, _ diagnostic: String) {
    #expect {
        _ = try load(actions)
    } throws: { error in
        let found = "\(error)".contains(diagnostic)
        if !found { print("expected \(diagnostic) in:\n\(error)") }
        return found
    }
}
