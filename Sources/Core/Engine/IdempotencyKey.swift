import MutewardenModel

/// Derives an action's idempotency key from what identifies it on the platform, never from
/// anything local to this process, so that retries and a second replica of the daemon that sees
/// the same events produce the same key.
///
/// The key is FNV-1a over the parts, 128 bits, printed as a UUID (version 8, "custom"): some
/// platforms (Azure's Repeatability-Request-ID) want a UUID-shaped value.
enum IdempotencyKey {
    static func make(
        policy: String, subject: String, address: ActionAddress, generation: UInt64, windowSequence: UInt64,
        action: Int, target: String, verb: ActionVerb
    ) -> String {
        var hash = FNV1a128()
        hash.add(policy)
        hash.add(subject)
        switch address {
        case .call(let id):
            hash.addTag(0x01)
            hash.add(id)
        case .agentExtension(let ext):
            hash.addTag(0x02)
            hash.add(ext)
        }
        hash.add(generation)
        hash.add(windowSequence)
        hash.add(UInt64(action))
        hash.add(target)
        hash.addTag(verb == .apply ? 0x0A : 0x0B)
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

    mutating func add(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { mix(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func addTag(_ tag: UInt8) { mix(tag) }

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
        let hex: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 36) { out in
            var position = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[position] = UInt8(ascii: "-")
                    position += 1
                }
                var byte = UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> UInt64(56 - 8 * (index % 8)))
                if index == 6 { byte = (byte & 0x0F) | 0x80 }  // version 8
                if index == 8 { byte = (byte & 0x3F) | 0x80 }  // RFC 4122 variant
                out[position] = hex.utf8Start[Int(byte >> 4)]
                out[position + 1] = hex.utf8Start[Int(byte & 0x0F)]
                position += 2
            }
            return position
        }
    }
}
