import FuzzDriver
import MutewardenControl

/// Any bytes as what a control client sent, whole or cut at each length, open or closed: the
/// request is one line of printable text within the limit, or a problem, never a trap; and the
/// error answer stays one line of JSON whatever text it carries.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = 64
    for end in [0, size / 2, size] {
        for ended in [false, true] {
            guard case .success(let line)? = ControlRequestLine.parse(Array(bytes[..<end]), ended: ended, limit: limit) else { continue }
            if line.utf8.count > limit { fatalError("a request over the limit was taken: \(line.utf8.count) bytes") }
            if line.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
                fatalError("a request with a control character was taken")
            }
        }
    }
    let answer = controlErrorAnswer(code: "malformed", String(decoding: bytes, as: UTF8.self))
    if answer.utf8.contains(UInt8(ascii: "\n")) || answer.utf8.contains(UInt8(ascii: "\r")) {
        fatalError("an error answer spans lines")
    }
    return 0
}

runFuzzer(fuzz)
