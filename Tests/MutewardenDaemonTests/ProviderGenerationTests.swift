import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit
import Synchronization
import Testing

@testable import MutewardenDaemon

/// A session that knows whether it was closed.
private final class Session: ClosableResource {
    let closed = Atomic<Bool>(false)
    func close() { closed.store(true, ordering: .relaxed) }
}

/// A target type whose objects share one session per `server` and `password`.
private struct SessionTarget: TargetSettings {
    var server: String
    var password: Secret
    var summary: String { "session target \(server)" }
    var confirmsByEvent: Bool { false }

    struct Identity: Hashable, Sendable {
        var server: String
        var password: Secret
    }

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        let session = try context.resource(
            ResourceKey<Session>(kind: "session", label: server, identity: Identity(server: server, password: password))
        ) { Session() }
        return Target(name: name, session: session)
    }

    final class Target: ActionTarget {
        let descriptor: TargetDescriptor
        let session: Session
        init(name: String, session: Session) {
            descriptor = TargetDescriptor(name: name, confirmsByEvent: false)
            self.session = session
        }
        func perform(_ request: ActionRequest) async -> ActionAttemptResult { .accepted }
    }

    static let provider = TargetProvider(type: "session") { reader in
        guard let server = reader.requiredString("server"), let password = reader.requiredSecret("password") else {
            return nil
        }
        return SessionTarget(server: server, password: password)
    }
}

private func configuration(_ targets: [(name: String, password: String)]) throws -> DaemonConfiguration {
    let registry = ProviderRegistry(feeds: [SimulatorLikeFeed.provider], targets: [SessionTarget.provider])
    let targetLines = targets.map { "  \($0.name):\n    type: session\n    server: s-\($0.name)\n    password: \($0.password)" }
    let yaml = """
        feeds:
          sim:
            type: quiet
        targets:
        \(targetLines.joined(separator: "\n"))
        policies: {}
        """
    return try ConfigurationLoader(registry: registry, environment: [:]).load(yaml: yaml, file: "g.yaml")
}

/// A feed type with no settings, for configurations that need one.
private struct SimulatorLikeFeed: FeedSettings {
    var summary: String { "quiet" }
    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { Quiet(name: name) }
    struct Quiet: CallFeed {
        let name: String
        func run(delivering sink: any CallUpdateSink) async throws { try await Task.sleep(for: .seconds(3600)) }
    }
    static let provider = FeedProvider(type: "quiet") { _ in SimulatorLikeFeed() }
}

@Suite struct ProviderGenerationTests {
    /// Unchanged targets are carried over with their session; a changed secret rebuilds the target
    /// with a new session and closes the old one; a removed target keeps its session for the undos
    /// of windows opened under the old policies.
    @Test func generationsKeepRebuildAndRetireTargets() throws {
        let context = ProviderContext(report: { _, _, _ in })
        let first = try ProviderGeneration.build(
            try configuration([("kept", "a"), ("rotated", "old"), ("removed", "c")]), reusing: nil, number: 1, context: context)
        let sessions = first.targets.mapValues { ($0.object as! SessionTarget.Target).session }

        let second = try ProviderGeneration.build(
            try configuration([("kept", "a"), ("rotated", "new")]), reusing: first, number: 2, context: context)
        context.shared.retainClaims(of: second.owners)
        let closed = context.shared.closeUnclaimed()

        #expect(second.targets["kept"]?.owner == first.targets["kept"]?.owner)
        #expect(second.targets["rotated"]?.owner != first.targets["rotated"]?.owner)
        #expect((second.targets["rotated"]?.object as? SessionTarget.Target)?.session !== sessions["rotated"])
        #expect(second.retired.keys.sorted() == ["removed"])
        #expect(closed == ["session s-rotated"])
        let rotatedClosed = sessions["rotated"]!.closed.load(ordering: .relaxed)
        let removedClosed = sessions["removed"]!.closed.load(ordering: .relaxed)
        let keptClosed = sessions["kept"]!.closed.load(ordering: .relaxed)
        #expect(rotatedClosed && !removedClosed && !keptClosed)

        // A later reload still keeps the retired one.
        let third = try ProviderGeneration.build(
            try configuration([("kept", "a"), ("rotated", "new")]), reusing: second, number: 3, context: context)
        #expect(third.retired.keys.sorted() == ["removed"])
    }
}
