import MutewardenConfig
import MutewardenModel
import MutewardenProviderKit

/// The feeds and targets built for one configuration.
///
/// Each provider claims the shared resources it uses under an owner name that includes the
/// generation that built it ("feed gws #3"). A provider whose type and settings are unchanged at a
/// reload is carried into the next generation with its owner name, so it keeps its object, its
/// sessions, its connection and, through the engine, its open windows. Resources that no owner of
/// the generation in force claims are closed (`SharedResources.closeUnclaimed()`).
struct ProviderGeneration: Sendable {
    struct Built<Object: Sendable>: Sendable {
        var object: Object
        var owner: String
        var type: String
        var settings: any ProviderSettings
    }

    var number: Int
    var feeds: [String: Built<any CallFeed>] = [:]
    var targets: [String: Built<any ActionTarget>] = [:]
    /// Targets a reload removed. Windows opened under the old policies keep their actions, and so
    /// send their undos to these (docs/architecture.md, reload): their sessions stay open, until
    /// the daemon stops, rather than fail those undos.
    var retired: [String: Built<any ActionTarget>] = [:]

    var owners: Set<String> {
        Set(feeds.values.map(\.owner)).union(targets.values.map(\.owner)).union(retired.values.map(\.owner))
    }

    /// Builds `configuration`'s providers, reusing `previous`'s where type and settings are equal.
    static func build(
        _ configuration: DaemonConfiguration, reusing previous: ProviderGeneration?, number: Int,
        context: ProviderContext
    ) throws -> ProviderGeneration {
        var generation = ProviderGeneration(number: number)
        for target in configuration.targets {
            if let old = previous?.targets[target.name], old.type == target.type, old.settings.isSame(as: target.settings) {
                generation.targets[target.name] = old
                continue
            }
            let owner = "target \(target.name) #\(number)"
            let object = try target.settings.makeTarget(name: target.name, context: context.owned(by: owner, generation: number))
            generation.targets[target.name] = Built(object: object, owner: owner, type: target.type, settings: target.settings)
        }
        if let previous {
            for (name, old) in previous.targets.merging(previous.retired, uniquingKeysWith: { current, _ in current })
            where generation.targets[name] == nil {
                generation.retired[name] = old
            }
        }
        for feed in configuration.feeds {
            if let old = previous?.feeds[feed.name], old.type == feed.type, old.settings.isSame(as: feed.settings) {
                generation.feeds[feed.name] = old
                continue
            }
            let owner = "feed \(feed.name) #\(number)"
            let object = try feed.settings.makeFeed(name: feed.name, context: context.owned(by: owner, generation: number))
            generation.feeds[feed.name] = Built(object: object, owner: owner, type: feed.type, settings: feed.settings)
        }
        return generation
    }
}
