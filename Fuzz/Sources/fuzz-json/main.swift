#if canImport(Glibc)
import Glibc
#endif
import MutewardenJSON

/// Any bytes: the parser answers a value or an error, never traps; a value it parsed survives
/// its own writer and a second parse unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let value = try? JSONValue.parse(bytes) else { return 0 }
    let text = value.serialized
    guard let again = try? JSONValue.parse(text) else { fatalError("the writer's output does not parse: \(text.prefix(200))") }
    if again != value { fatalError("a round trip changed the value: \(text.prefix(200))") }
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
