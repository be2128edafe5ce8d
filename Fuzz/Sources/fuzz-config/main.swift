import FuzzDriver
import MutewardenConfig
import MutewardenGenesys
import MutewardenProviderKit
import MutewardenVerba
import MutewardenSimulator
import MutewardenVoicenter

private let registry = ProviderRegistry(
    feeds: [SimulatorSettings.provider, GWSSettings.feedProvider, VoicenterFeedSettings.feedProvider],
    targets: [
        LogTargetSettings.provider, GWSSettings.targetProvider, VoicenterTargetSettings.targetProvider, VerbaTargetSettings.targetProvider,
    ])
// No environment: a `${env:…}` reference fails cleanly; `${file:…}` is bounded by the loader.
private let loader = ConfigurationLoader(registry: registry, environment: [:])

/// Any text as a configuration file: loaded, or refused with diagnostics, never a trap or a hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let configuration = try loader.load(yaml: text, file: "fuzz.yaml")
        _ = configuration.engine.policies.count
    } catch {
        _ = error.diagnostics.map(\.description)
    }
    return 0
}

runFuzzer(fuzz)
