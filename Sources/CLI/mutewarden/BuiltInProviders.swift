import MutewardenACS
import MutewardenGenesys
import MutewardenGraph
import MutewardenProviderKit
import MutewardenSimulator
import MutewardenVerba
import MutewardenVoicenter

/// The composition root: every feed and target type this build knows, by its `type:` name. Adding
/// a provider is one line here and one entry in Package.swift (CONTRIBUTING.md); the daemon library
/// knows only the provider kit.
enum BuiltInProviders {
    static let registry = ProviderRegistry(
        feeds: [
            SimulatorSettings.provider, GWSSettings.feedProvider, VoicenterFeedSettings.feedProvider, ACSFeedSettings.feedProvider,
            GraphFeedSettings.feedProvider,
        ],
        targets: [
            LogTargetSettings.provider, GWSSettings.targetProvider, VoicenterTargetSettings.targetProvider, ACSTargetSettings.targetProvider,
            VerbaTargetSettings.targetProvider,
            GraphTargetSettings.targetProvider,
        ])
}
