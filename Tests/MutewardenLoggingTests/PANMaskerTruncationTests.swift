import Testing

@testable import MutewardenLogging

/// ``PANMasker/maskForLog(_:)``: long texts are cut before masking, and the cut shows no PAN.
@Suite struct PANMaskerTruncationTests {
    static func marker(_ count: Int) -> String { "…[truncated from \(count) bytes]" }

    /// Where the text before the marker ends for an input of `count` bytes.
    static func limit(_ count: Int) -> Int { PANMasker.maximumLoggedBytes - marker(count).utf8.count }

    @Test func shortTextIsOnlyMasked() {
        let text = String(repeating: "x", count: PANMasker.maximumLoggedBytes - 16) + "4111111111111111"
        #expect(PANMasker.maskForLog(text) == PANMasker.mask(text))
        #expect(PANMasker.maskForLog(text).hasSuffix("411111******1111"))
    }

    @Test func longTextIsCutWithAMarker() {
        let count = 256 * 1024
        let text = String(repeating: "y", count: count)
        let result = PANMasker.maskForLog(text)
        #expect(result == String(repeating: "y", count: Self.limit(count)) + Self.marker(count))
        #expect(result.utf8.count <= PANMasker.maximumLoggedBytes)
        #expect(PANMasker.maskForLog(result) == result)
    }

    @Test func craftedCascadeIsCutAndMasked() {
        let (chain, _) = PANMaskerTests.cascade(bytes: 256 * 1024 - 64)
        let message = "call 0001 has unknown state '\(chain)'"
        let result = PANMasker.maskForLog(message)
        let count = message.utf8.count
        #expect(result.hasSuffix(Self.marker(count)))
        #expect(result.utf8.count <= PANMasker.maximumLoggedBytes)
        #expect(!PANMasker.containsPAN(result))
        let kept = String(result.dropLast(Self.marker(count).count))
        let original = String(decoding: message.utf8.prefix(kept.utf8.count), as: UTF8.self)
        #expect(PANDetectionTests.onlyDigitsBecameAsterisks(from: original, to: kept))
    }

    /// A PAN cut in two shows no candidate; its digits before the cut are masked anyway.
    @Test(arguments: ["4111111111111111", "4111 1111 1111 1111", "٤١١١ ١١١١ ١١١١ ١١١١", #"\u0034\u0031\u0031\u0031\u0031\u0031\u0031\u0031"#])
    func panAcrossTheCutIsMasked(_ pan: String) {
        let count = 100_000
        for headLength in [1, 5, 10, 15] {
            let head = String(decoding: pan.utf8.prefix(headLength), as: UTF8.self)
            guard head.utf8.count == headLength else { continue }
            let filler = String(repeating: "z", count: Self.limit(count) - headLength)
            let tail = String(repeating: " ", count: count - filler.utf8.count - pan.utf8.count)
            let text = filler + pan + tail
            #expect(text.utf8.count == count)
            let result = PANMasker.maskForLog(text)
            let kept = String(result.dropLast(Self.marker(count).count))
            #expect(kept.hasPrefix(filler))
            // Nothing of the PAN is left but separators and asterisks.
            let rest = PANDetectionTests.digitValues(of: String(kept.dropFirst(filler.count)))
            #expect(rest.allSatisfy { $0 == "|" }, "\(headLength): \(kept.suffix(40))")
        }
    }

    /// The cut never splits a UTF-8 sequence or an escape.
    @Test(arguments: ["é", "🙏", "٤", #"\u0034"#, #"\uD835\uDFD2"#, "%34"])
    func cutFallsBetweenCharacters(_ piece: String) {
        let count = 100_000
        for shift in 1..<piece.utf8.count {
            let filler = String(repeating: "w", count: Self.limit(count) - piece.utf8.count + shift)
            let text = filler + piece + String(repeating: "w", count: count - filler.utf8.count - piece.utf8.count)
            let result = PANMasker.maskForLog(text)
            #expect(result == filler + Self.marker(count), "\(piece) shifted \(shift)")
        }
    }
}
