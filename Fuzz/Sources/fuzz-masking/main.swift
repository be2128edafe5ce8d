#if canImport(Glibc)
import Glibc
#endif
import MutewardenLogging

/// Any text: masking never traps, and what it returns holds nothing it would mask again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let masked = PANMasker.mask(text)
    if PANMasker.containsPAN(masked) { fatalError("a PAN survived masking") }
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
