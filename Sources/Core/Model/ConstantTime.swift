/// Comparison whose time does not depend on where two byte strings first differ.
///
/// swift-crypto has no public constant-time comparison (its `safeCompare` is internal, and
/// comparing two MACs of the inputs would hide the lengths but costs two hashes per callback),
/// so this is the classic loop: it always walks the whole expected value and folds every
/// difference into one accumulator with OR, with no early exit and no branch on the data. The
/// length of `provided` is folded in as one more difference; the time depends only on the
/// expected value's length, which is not the secret.
public enum ConstantTime {
    public static func equals(_ provided: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = provided.count == expected.count ? 0 : 1
        provided.withUnsafeBufferPointer { providedBytes in
            expected.withUnsafeBufferPointer { expectedBytes in
                for index in 0..<expectedBytes.count {
                    // Out of range reads as a byte that differs from any: 0 XOR'd with the
                    // expected byte's complement.
                    let other = index < providedBytes.count ? providedBytes[index] : ~expectedBytes[index]
                    difference |= other ^ expectedBytes[index]
                }
            }
        }
        return difference == 0
    }
}
