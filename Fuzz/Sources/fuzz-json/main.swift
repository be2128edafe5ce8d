import FuzzDriver
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

runFuzzer(fuzz)
