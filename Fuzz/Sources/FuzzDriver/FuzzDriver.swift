#if canImport(Glibc)
import Glibc
#endif

/// The entry point every fuzz target's main calls with its test function. SwiftPM links an
/// executable's own entry point as `main`, which leaves libFuzzer's unused: this hands over to
/// libFuzzer's driver instead, with the target's function as the one to fuzz.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    var arguments = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(runDriver(&arguments, &argv, test))
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt
