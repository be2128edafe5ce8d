#if canImport(Glibc)
import Glibc
#endif
import MutewardenConfig
import MutewardenGenesys
import MutewardenProviderKit
import MutewardenSimulator

private let registry = ProviderRegistry(
    feeds: [SimulatorSettings.provider, GWSSettings.feedProvider],
    targets: [LogTargetSettings.provider, GWSSettings.targetProvider])
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

// SwiftPM links an executable's entry point as `main`, which leaves libFuzzer's own unused: hand
// over to libFuzzer's driver, with this file's function as the target.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

var arguments = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(runDriver(&arguments, &argv, fuzz))
