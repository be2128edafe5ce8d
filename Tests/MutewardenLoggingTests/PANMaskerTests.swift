import Testing

@testable import MutewardenLogging

@Suite struct PANMaskerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var input: String
        var expected: String
        var testDescription: String { input }
    }

    static let masked: [Case] = [
        // Visa 16, bare and with each separator style.
        .init(input: "4111111111111111", expected: "411111******1111"),
        .init(input: "4111 1111 1111 1111", expected: "4111 11** **** 1111"),
        .init(input: "4111-1111-1111-1111", expected: "4111-11**-****-1111"),
        .init(input: "4111  1111--1111 -1111", expected: "4111  11**--**** -1111"),
        // Amex 15, Diners 14, Visa 13, 19 digits.
        .init(input: "378282246310005", expected: "378282*****0005"),
        .init(input: "3782 822463 10005", expected: "3782 82**** *0005"),
        .init(input: "30569309025904", expected: "305693****5904"),
        .init(input: "4222222222222", expected: "422222***2222"),
        .init(input: "6011000990139424124", expected: "601100*********4124"),
        .init(input: "6011-0009-9013-9424-124", expected: "6011-00**-****-***4-124"),
        .init(input: "6221260000000000001", expected: "622126*********0001"),
        // In text, next to letters, before an expiry, after other numbers.
        .init(
            input: "card number is 4111 1111 1111 1111, thanks",
            expected: "card number is 4111 11** **** 1111, thanks"),
        .init(input: "card4111111111111111x", expected: "card411111******1111x"),
        .init(input: "4111 1111 1111 1111 12/25", expected: "4111 11** **** 1111 12/25"),
        .init(input: "order 12 4111 1111 1111 1111", expected: "order 12 4111 11** **** 1111"),
        .init(
            input: "a 4111111111111111 b 5555555555554444",
            expected: "a 411111******1111 b 555555******4444"),
        .init(input: "pan=378282246310005;exp=1225", expected: "pan=378282*****0005;exp=1225"),
        // The kept digits of the first PAN form a second Luhn-valid candidate with the group
        // before it; that one is masked too.
        .init(input: "1234567892 4111111111111111", expected: "123456**** **1111******1111"),
        // Non-ASCII text around a PAN is left intact.
        .init(
            input: "Kártya: 4111 1111 1111 1111 — köszönöm 🙏",
            expected: "Kártya: 4111 11** **** 1111 — köszönöm 🙏"),
        .init(input: "番号４１１１:4111111111111111です", expected: "番号４１１１:411111******1111です"),
    ]

    @Test(arguments: masked)
    func masksLuhnValidNumbers(_ testCase: Case) {
        #expect(PANMasker.containsPAN(testCase.input))
        let result = PANMasker.mask(testCase.input)
        #expect(result == testCase.expected)
        #expect(!PANMasker.containsPAN(result))
        #expect(PANMasker.mask(result) == result)
    }

    static let unchanged: [String] = [
        "4111111111111112",  // fails Luhn
        "4111 1111 1111 1112",
        "411111111111",  // 12 digits
        "4111 1111 1111",
        "12345678901234567890",  // 20 digits, no separator
        "99994111111111111111",  // 20 digits holding a valid 16-digit PAN: one id, not a PAN
        "4111 1111 1111    1111",  // four separators end the run
        "4111 1111 1111 \u{00A0}\u{2009}\u{3000}1111",
        "call from +1 555 123 4567 to +1 555 987 6543",
        "+44 20 7946 0958",
        "2026-11-21T22:49:00.123Z 2026-11-21T22:49:01.456Z",
        "epoch 1763765340 ms 1763765340123",  // the 13-digit one fails Luhn
        "00HLPA5Q24AT9D8VH0A0K2LAES00000G",
        "call 00HLPA5Q24AT9D8VH0A0K2LAES00000G policy pci-card window 3 attempt 2",
        "",
        "no digits at all, but ünïcödé",
    ]

    @Test(arguments: unchanged)
    func leavesOtherTextAlone(_ text: String) {
        #expect(!PANMasker.containsPAN(text))
        #expect(PANMasker.mask(text) == text)
    }

    /// Many random Luhn-valid PANs with random separators in random text: none survives masking,
    /// and nothing but PAN digits changes.
    @Test func randomPANsNeverSurvive() {
        var rng = SplitMix64(seed: 0x6d75_7465_7761_7264)
        for _ in 0..<3_000 {
            let pan = Self.randomPAN(length: Int.random(in: 13...19, using: &rng), using: &rng)
            let formatted = Self.withRandomSeparators(pan, using: &rng)
            let text =
                Self.randomText(using: &rng) + Self.randomBoundary(using: &rng) + formatted
                + Self.randomBoundary(using: &rng) + Self.randomText(using: &rng)

            let result = PANMasker.mask(text)
            #expect(!PANMasker.containsPAN(result), "\(text) -> \(result)")
            let digitsLeft = result.filter { $0 != " " && $0 != "-" }
            #expect(!digitsLeft.contains(pan), "\(text) -> \(result)")
            #expect(
                Self.onlyDigitsBecameAsterisks(from: text, to: result), "\(text) -> \(result)")
        }
    }

    /// A chain of groups in which masking each PAN completes the next one, one group further
    /// left, so that masking cascades through the whole text. Masking it once took time quadratic
    /// in its length; it must still be masked whole. (No timing here: docs/performance.md.)
    @Test func craftedCascadeIsMaskedWhole() {
        let (chain, expected) = Self.cascade(bytes: 256 * 1024 - 64)
        let message = "call 0001 has unknown state '\(chain)'"
        #expect(message.utf8.count <= 256 * 1024)
        #expect(PANMasker.containsPAN(message))
        let result = PANMasker.mask(message)
        #expect(result == "call 0001 has unknown state '\(expected)'")
        #expect(!PANMasker.containsPAN(result))
    }

    /// The linear masker gives what the plain definition gives: mask every candidate, then again
    /// until none is left. Digit-heavy random text, so that candidates overlap and cascade.
    @Test func agreesWithTheRepeatedPassDefinition() {
        var rng = SplitMix64(seed: 0x5041_4e5f_7265_66)
        let pieces = [
            "4111111111111111", "5555 5555 5555 4444", "378282246310005", "1234567892", "0", "7", "42",
            "1234", "98765", " ", " ", "-", "  ", "   ", "    ", "x", "é", "/", "12/25", "٤١١١١١١١١١١١١١١١",
            "\u{00A0}", "\\u0034", "\\u0020", "%31", "４", "\u{0301}",
            // Two that cascade: masking the PAN makes a new candidate with the group before it.
            "1234567892 4111111111111111", "7000000000 4111 1111 1111 1111",
        ]
        var cascades = 0
        for _ in 0..<2_000 {
            var text = ""
            for _ in 0..<Int.random(in: 1...24, using: &rng) { text += pieces.randomElement(using: &rng)! }
            let expected = Self.referenceMask(text)
            let result = PANMasker.mask(text)
            #expect(result == expected, "\(text)")
            #expect(PANMasker.containsPAN(text) == (expected != text), "\(text)")
            #expect(!PANMasker.containsPAN(result), "\(text) -> \(result)")
            if Self.referencePasses(text) > 2 { cascades += 1 }
        }
        // The generator must exercise cascades, or this test shows little.
        #expect(cascades > 50)
    }

    @Test func fewDigitsReturnTheSameString() {
        let text = "call 12345 ended after 678 ms"
        #expect(PANMasker.mask(text) == text)
        #expect(!PANMasker.hasEnoughDigits(text))
    }

    // MARK: - Reference

    /// The digits of `text` as the masker tokenizes them, split into runs of groups.
    static func runs(of bytes: [UInt8]) -> [[(value: UInt8, range: Range<Int>, startsGroup: Bool)]] {
        bytes.withUnsafeBufferPointer { buffer in
            var runs: [[(value: UInt8, range: Range<Int>, startsGroup: Bool)]] = []
            var current: [(value: UInt8, range: Range<Int>, startsGroup: Bool)] = []
            var separators = 0
            var index = 0
            while index < buffer.count {
                let token = PANMasker.token(at: index, in: buffer)
                switch token.kind {
                case .digit:
                    if separators > PANMasker.maximumSeparatorRun, !current.isEmpty {
                        runs.append(current)
                        current = []
                    }
                    current.append((token.value, index..<token.end, current.isEmpty || separators > 0))
                    separators = 0
                case .separator:
                    separators += 1
                case .other:
                    if !current.isEmpty { runs.append(current) }
                    current = []
                    separators = 0
                case .ignorable:
                    break
                }
                index = token.end
            }
            if !current.isEmpty { runs.append(current) }
            return runs
        }
    }

    static func luhn(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            var value = Int(digit)
            if offset % 2 == 1 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return sum % 10 == 0
    }

    /// One pass of the definition: the byte ranges of every digit that a Luhn-valid window of
    /// whole groups (13–19 digits) masks, all found before any is masked.
    static func referencePass(_ bytes: [UInt8]) -> [Range<Int>] {
        var masked: [Range<Int>] = []
        for run in runs(of: bytes) {
            let groupStarts = run.indices.filter { run[$0].startsGroup }
            var hit = Set<Int>()
            for (index, first) in groupStarts.enumerated() {
                for endIndex in index..<groupStarts.count {
                    let end = endIndex + 1 < groupStarts.count ? groupStarts[endIndex + 1] : run.count
                    let length = end - first
                    if length > PANMasker.maximumDigits { break }
                    if length >= PANMasker.minimumDigits, luhn(run[first..<end].map(\.value)) {
                        for digit in (first + 6)..<(end - 4) { hit.insert(digit) }
                    }
                }
            }
            masked += hit.sorted().map { run[$0].range }
        }
        return masked.sorted { $0.lowerBound < $1.lowerBound }
    }

    static func apply(_ ranges: [Range<Int>], to bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var copied = 0
        for range in ranges {
            output += bytes[copied..<range.lowerBound]
            output.append(UInt8(ascii: "*"))
            copied = range.upperBound
        }
        return output + bytes[copied...]
    }

    static func referenceMask(_ text: String) -> String {
        var bytes = Array(text.utf8)
        while case let ranges = referencePass(bytes), !ranges.isEmpty { bytes = apply(ranges, to: bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func referencePasses(_ text: String) -> Int {
        var bytes = Array(text.utf8)
        var passes = 1
        while case let ranges = referencePass(bytes), !ranges.isEmpty {
            bytes = apply(ranges, to: bytes)
            passes += 1
        }
        return passes
    }

    // MARK: - Generators

    /// Groups G_m … G_1 P: P is a PAN; masking it keeps its first six digits, which with the
    /// ten of G_1 make a Luhn-valid 16-digit candidate, whose masking keeps G_1's first six,
    /// and so on. No two whole groups together have 19 digits or fewer, so only the cascade
    /// finds them. Returns the chain and what masking must make of it.
    static func cascade(bytes: Int) -> (chain: String, masked: String) {
        var rng = SplitMix64(seed: 0x6361_7363_6164_65)
        let pan: [UInt8] = [4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
        var groups: [[UInt8]] = [pan]
        var total = pan.count
        while total + 11 <= bytes {
            let kept = groups.last!.prefix(6)
            var group = (0..<10).map { _ in UInt8.random(in: 0...9, using: &rng) }
            group[0] = (0...9).first { luhn([$0] + group.dropFirst() + kept) }!
            groups.append(group)
            total += 11
        }
        groups.reverse()
        func text(_ digits: [UInt8]) -> String { String(decoding: digits.map { $0 + 48 }, as: UTF8.self) }
        let chain = groups.map(text).joined(separator: " ")
        let masked = groups.enumerated().map { index, group in
            if index == groups.count - 1 {
                return "**" + text(Array(group[2..<6])) + "******" + text(Array(group[12...]))
            }
            return (index == 0 ? text(Array(group[0..<2])) : "**") + text(Array(group[2..<6])) + "****"
        }.joined(separator: " ")
        return (chain, masked)
    }

    static func randomPAN(length: Int, using rng: inout SplitMix64) -> String {
        var digits = (0..<(length - 1)).map { _ in Int.random(in: 0...9, using: &rng) }
        digits.append(luhnCheckDigit(for: digits))
        return digits.map(String.init).joined()
    }

    static func luhnCheckDigit(for digits: [Int]) -> Int {
        var sum = 0
        // The check digit is appended at the end, so the last payload digit is doubled.
        for (offset, digit) in digits.reversed().enumerated() {
            var value = digit
            if offset % 2 == 0 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return (10 - sum % 10) % 10
    }

    static func withRandomSeparators(_ pan: String, using rng: inout SplitMix64) -> String {
        let separators = ["", "", "", "", " ", "-", "  ", "--", " -"]
        var text = ""
        for (index, digit) in pan.enumerated() {
            if index > 0 { text += separators.randomElement(using: &rng)! }
            text.append(digit)
        }
        return text
    }

    /// What may stand right next to a PAN: anything but a digit, which would make one longer
    /// unseparated group of it.
    static func randomBoundary(using rng: inout SplitMix64) -> String {
        ["", " ", "-", "x", ":", "é", "—", "\n", "  ", "/"].randomElement(using: &rng)!
    }

    static func randomText(using rng: inout SplitMix64) -> String {
        let pieces = [
            "a", "Z", " ", "-", "7", "42", "12/25", "é", "日本", "🙏", ",", "=", "\t", "call", "0",
            "  ", "555 123",
        ]
        var text = ""
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            text += pieces.randomElement(using: &rng)!
        }
        // Never end or start on a digit: the boundary decides what touches the PAN.
        return text.isEmpty || text.last!.isNumber || text.first!.isNumber ? "x\(text)x" : text
    }

    static func onlyDigitsBecameAsterisks(from original: String, to masked: String) -> Bool {
        let before = Array(original.utf8)
        let after = Array(masked.utf8)
        guard before.count == after.count else { return false }
        return zip(before, after).allSatisfy { old, new in
            old == new || (new == UInt8(ascii: "*") && PANMasker.isDigit(old))
        }
    }
}

/// A small deterministic generator, so a failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
