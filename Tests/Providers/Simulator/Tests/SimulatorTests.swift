import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import MutewardenTesting
import Testing

@testable import MutewardenSimulator

private func script(_ configure: (inout SimulatorSettings) -> Void) -> [(Duration, CallUpdate)] {
    var settings = SimulatorSettings()
    settings.seed = 1
    settings.maxCalls = 200
    configure(&settings)
    var script = SimulatorScript(feed: "sim", settings: settings)
    var events: [(Duration, CallUpdate)] = []
    while let next = script.next() { events.append(next) }
    return events
}

@Test func everyCallRingsIsAnsweredAndEndsInOrder() {
    let events = script { $0.captureRatio = 0.5 }
    #expect(zip(events, events.dropFirst()).allSatisfy { $0.0 <= $1.0 })
    let byCall = Dictionary(grouping: events.map(\.1), by: \.ids.primary)
    #expect(byCall.count == 200)
    for (_, updates) in byCall {
        #expect(updates.first?.state == .ringing)
        #expect(updates.last?.state == .released)
        #expect(updates.contains { $0.state == .established })
        let sequences = updates.compactMap(\.sequence)
        #expect(sequences == Array(1...UInt64(updates.count)))
        #expect(Set(updates.compactMap(\.agentExtension)).count == 1)
        #expect(updates.allSatisfy { $0.ids.secondary["connId"] != nil })
    }
}

@Test func theSameSeedGivesTheSameCalls() {
    let first = script { $0.captureRatio = 0.5 }.map { "\($0.0) \($0.1.ids.primary) \($0.1.state)" }
    let second = script { $0.captureRatio = 0.5 }.map { "\($0.0) \($0.1.ids.primary) \($0.1.state)" }
    #expect(first == second)
}

@Test func captureRatioAndAbandonRatioShapeTheCaptures() {
    func stages(_ events: [(Duration, CallUpdate)]) -> [String: [String]] {
        Dictionary(grouping: events.map(\.1), by: \.ids.primary).mapValues { updates in
            updates.compactMap { $0.attributes?["PCI_STAGE"] }
        }
    }
    let none = stages(script { $0.captureRatio = 0 })
    #expect(none.values.allSatisfy { $0.isEmpty })
    let all = stages(
        script {
            $0.captureRatio = 1
            $0.callDuration = .seconds(3600)
        })
    #expect(all.values.allSatisfy { $0 == ["CARD", "DONE"] })
    let abandoned = stages(
        script {
            $0.captureRatio = 1
            $0.abandonRatio = 1
            $0.callDuration = .seconds(3600)
        })
    #expect(abandoned.values.allSatisfy { $0 == ["CARD"] })
}

@Test func agentsAreWithinTheConfiguredExtensions() {
    let events = script {
        $0.agents = 5
        $0.firstExtension = 7000
    }
    let extensions = Set(events.compactMap(\.1.agentExtension))
    #expect(extensions.isSubset(of: Set((7000..<7005).map(String.init))))
    #expect(extensions.count == 5)
}

@Test func callRateIsRoughlyHonoured() {
    let events = script {
        $0.callRate = 10
        $0.maxCalls = 1000
    }
    let lastArrival = events.filter { $0.1.state == .ringing }.map(\.0).max()!
    // 1000 Poisson arrivals at 10/s take about 100 s.
    #expect(lastArrival > .seconds(80) && lastArrival < .seconds(120))
}

private let registry = ProviderRegistry(feeds: [SimulatorSettings.provider], targets: [LogTargetSettings.provider])

private func load(_ feed: String, _ target: String = "{ type: log }") throws(ConfigurationError) -> DaemonConfiguration {
    try ConfigurationLoader(registry: registry, environment: [:]).load(
        yaml: """
            feeds:
              sim: \(feed)
            targets:
              recorder: \(target)
            policies:
              card:
                feeds: [sim]
                start: { attribute: PCI_STAGE, equals: CARD }
                actions: [{ kind: mute, target: recorder }]
            """, file: "sim.yaml")
}

@Test func settingsDecodeWithDefaults() throws {
    let configuration = try load("{ type: simulator, agents: 3, call_rate: 0.5, abandon_ratio: 0.2, seed: 9 }")
    let settings = try #require(configuration.feeds.first?.settings as? SimulatorSettings)
    #expect(settings.agents == 3)
    #expect(settings.callRate == 0.5)
    #expect(settings.abandonRatio == 0.2)
    #expect(settings.seed == 9)
    #expect(settings.captureAttribute == "PCI_STAGE")
    #expect(settings.callDuration == .seconds(60))
}

@Test(arguments: [
    ("{ type: simulator, agents: 0 }", "sim.yaml:2:35: error:", "agents"),
    ("{ type: simulator, capture_ratio: 1.5 }", "sim.yaml:2:42: error:", "capture_ratio"),
    ("{ type: simulator, call_duration: 0s }", "sim.yaml:2:42: error:", "call_duration"),
    ("{ type: simulator, capture_after: soon }", "sim.yaml:2:42: error:", "expected a duration"),
    ("{ type: simulator, callrate: 2 }", "sim.yaml:2:27: error:", "unknown key 'callrate'"),
])
func badSimulatorSettingsAreRefusedWithTheirLocation(_ feed: String, _ location: String, _ message: String) {
    #expect {
        _ = try load(feed)
    } throws: { error in
        let text = "\(error)"
        return text.contains(location) && text.contains(message)
    }
}

@Test(arguments: [
    ("{ type: log, fail_ratio: -0.1 }", "sim.yaml:4:38: error:", "fail_ratio"),
    ("{ type: log, failure: sometimes }", "sim.yaml:4:35: error:", "retryable, permanent, call-gone"),
])
func badLogTargetSettingsAreRefusedWithTheirLocation(_ target: String, _ location: String, _ message: String) {
    #expect {
        _ = try load("{ type: simulator }", target)
    } throws: { error in
        let text = "\(error)"
        return text.contains(location) && text.contains(message)
    }
}

@Test func theLogTargetFailsTheConfiguredShare() async {
    let context = TestProviderContext()
    func target(_ configure: (inout LogTargetSettings) -> Void) -> LogActionTarget {
        var settings = LogTargetSettings()
        settings.seed = 3
        configure(&settings)
        return LogActionTarget(name: "recorder", settings: settings, context: context.context)
    }
    let request = ActionRequest(
        kind: .mute, verb: .apply, target: "recorder", address: .call(id: "c1"), feed: "sim",
        call: CallIdentifiers(primary: "c1"), agentExtension: "3001", idempotencyKey: "k", attempt: 1, policy: "p")
    #expect(await target { _ in }.perform(request) == .accepted)
    // What it did is on the record (at debug), with the call.
    #expect(context.reports.map(\.severity) == [.debug])
    #expect(context.reports.first?.message.hasPrefix("log target recorder: ") == true)
    #expect(context.reports.first?.fields.call == "c1")
    let failing = target {
        $0.failRatio = 1
        $0.failure = .permanent
    }
    guard case .failed(let failure) = await failing.perform(request) else {
        Issue.record("expected a failure")
        return
    }
    #expect(failure.disposition == .permanent)
    var failures = 0
    let half = target { $0.failRatio = 0.5 }
    for _ in 0..<400 where await half.perform(request) != .accepted { failures += 1 }
    #expect(failures > 140 && failures < 260)
}
