import FuzzDriver
import MutewardenLogging

/// Any text: masking never traps, and what it returns holds nothing it would mask again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let masked = PANMasker.mask(text)
    if PANMasker.containsPAN(masked) { fatalError("a PAN survived masking") }
    return 0
}

runFuzzer(fuzz)
