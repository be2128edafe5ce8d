import MutewardenConfig
import MutewardenGenesys
import MutewardenSimulator

/// Every feed and target type this build knows, by its `type:` name.
public enum BuiltInProviders {
    public static let registry = ProviderRegistry(
        feeds: [SimulatorSettings.provider, GWSSettings.feedProvider],
        targets: [LogTargetSettings.provider, GWSSettings.targetProvider])
}
