/// Derives an action's idempotency key from what identifies it on the platform, never from
/// anything local to this process, so that retries and a second replica of the daemon that sees
/// the same events produce the same key.
///
/// The key is FNV-1a over the parts, 128 bits, printed as a UUID (version 8, "custom"): some
/// platforms (Azure's Repeatability-Request-ID) want a UUID-shaped value.
enum IdempotencyKey {
    static func make(policy: String, call: String, windowSequence: UInt64, action: Int, target: String, verb: String)
        -> String
    {
        var hash = FNV1a128()
        hash.add(policy)
        hash.add(call)
        hash.add(String(windowSequence))
        hash.add(String(action))
        hash.add(target)
        hash.add(verb)
        return hash.uuidString
    }
}

struct FNV1a128 {
    // FNV-128 offset basis and prime, split into 64-bit halves.
    private var high: UInt64 = 0x6C62_272E_07BB_0142
    private var low: UInt64 = 0x62B8_2175_6295_C58D

    /// Adds one part followed by a separator byte, so that ("ab","c") and ("a","bc") differ.
    mutating func add(_ part: String) {
        for byte in part.utf8 { mix(byte) }
        mix(0x1F)
    }

    private mutating func mix(_ byte: UInt8) {
        low ^= UInt64(byte)
        // Multiply the 128-bit state by the FNV prime 2^88 + 0x13B (mod 2^128).
        let primeLow: UInt64 = 0x13B
        let product = low.multipliedFullWidth(by: primeLow)
        let newHigh = high &* primeLow &+ product.high &+ (low << 24)
        low = product.low
        high = newHigh
    }

    var uuidString: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
