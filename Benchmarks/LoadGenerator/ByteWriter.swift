/// Appends JSON text to a byte buffer without going through String: the generator writes tens of
/// thousands of GWS messages a second and must stay far from being the bottleneck.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    @inline(__always)
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A JSON string of characters that need no escaping (ids, states, the generator's own values).
    @inline(__always)
    mutating func quoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        raw(text)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func int(_ value: Int) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            int(-value)
            return
        }
        if value >= 10 { int(value / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    @inline(__always)
    mutating func byte(_ character: Unicode.Scalar) { bytes.append(UInt8(ascii: character)) }
}
