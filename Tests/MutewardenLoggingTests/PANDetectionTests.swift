import Testing

@testable import MutewardenLogging

/// Card numbers written with other separators, in other scripts, or escaped.
@Suite struct PANDetectionTests {
    typealias Case = PANMaskerTests.Case

    static let masked: [Case] = [
        // ASCII separators besides space and dash, and runs of up to three.
        .init(input: "4111.1111.1111.1111", expected: "4111.11**.****.1111"),
        .init(input: "4111/1111/1111/1111", expected: "4111/11**/****/1111"),
        .init(input: "4111_1111_1111_1111", expected: "4111_11**_****_1111"),
        .init(input: "4111,1111,1111,1111", expected: "4111,11**,****,1111"),
        .init(input: "4111+1111+1111+1111", expected: "4111+11**+****+1111"),
        .init(input: "4111\t1111\t1111\t1111", expected: "4111\t11**\t****\t1111"),
        .init(input: "4111   1111   1111   1111", expected: "4111   11**   ****   1111"),
        .init(input: "4111 - 1111 - 1111 - 1111", expected: "4111 - 11** - **** - 1111"),
        // Unicode spaces and dashes.
        .init(input: "4111\u{00A0}1111\u{00A0}1111\u{00A0}1111", expected: "4111\u{00A0}11**\u{00A0}****\u{00A0}1111"),
        .init(input: "4111\u{2009}1111\u{202F}1111\u{3000}1111", expected: "4111\u{2009}11**\u{202F}****\u{3000}1111"),
        .init(input: "4111\u{2010}1111\u{2013}1111\u{2015}1111", expected: "4111\u{2010}11**\u{2013}****\u{2015}1111"),
        .init(input: "4111\u{2212}1111\u{2212}1111\u{2212}1111", expected: "4111\u{2212}11**\u{2212}****\u{2212}1111"),
        .init(input: "4111\u{200B}1111\u{200B}1111\u{200B}1111", expected: "4111\u{200B}11**\u{200B}****\u{200B}1111"),
        // Other scripts' digits: a masked digit becomes one `*`, whatever its length.
        .init(input: "٤١١١١١١١١١١١١١١١", expected: "٤١١١١١******١١١١"),
        .init(input: "۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱", expected: "۴۱۱۱ ۱۱** **** ۱۱۱۱"),
        .init(input: "४१११-११११११११११११", expected: "४१११-११******११११"),
        .init(input: "カード ４１１１ １１１１ １１１１ １１１１ です", expected: "カード ４１１１ １１** **** １１１１ です"),
        .init(input: "4١1۱ १1１1 ११११ 1111", expected: "4١1۱ १1** **** 1111"),
        .init(input: "𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏", expected: "𝟒𝟏𝟏𝟏𝟏𝟏******𝟏𝟏𝟏𝟏"),
        // Keycaps: a digit with a variation selector and an enclosing mark.
        .init(input: keycaps("4222222222222"), expected: keycaps("422222***2222")),
        // JSON and URL escapes.
        .init(
            input: #"{"pan":"\u0034\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031"}"#,
            expected: #"{"pan":"\u0034\u0031\u0031\u0031\u0031\u0031******\u0031\u0031\u0031\u0031"}"#),
        .init(input: #"4111\u00201111\u002D1111\u00a01111"#, expected: #"4111\u002011**\u002D****\u00a01111"#),
        .init(input: #"4111\t1111\/1111\n1111"#, expected: #"4111\t11**\/****\n1111"#),
        .init(input: #"\u0664\u0661111111111111\uD835\uDFCF1"#, expected: #"\u0664\u06611111******11\uD835\uDFCF1"#),
        .init(input: "/pay?pan=4111%201111%201111%201111&x=1", expected: "/pay?pan=4111%2011**%20****%201111&x=1"),
        .init(input: "pan=%34%31%31%31111111111111", expected: "pan=%34%31%31%3111******1111"),
    ]

    static func keycaps(_ text: String) -> String {
        text.map { "\($0)\u{FE0F}\u{20E3}" }.joined()
    }

    @Test(arguments: masked)
    func masksCardNumbersWrittenOtherwise(_ testCase: Case) {
        #expect(PANMasker.containsPAN(testCase.input))
        let result = PANMasker.mask(testCase.input)
        #expect(result == testCase.expected)
        #expect(!PANMasker.containsPAN(result))
        #expect(PANMasker.mask(result) == result)
    }

    static let unchanged: [String] = [
        "１２３４５６７８９０１２３４５６７８９０",  // 20 fullwidth digits: one id
        "٤١١١١١١١١١١١١١١٢",  // fails Luhn
        #"caf\u00e9 \u00e8\u00e0 na\u00efve \u0430\u0431\u0432"#,  // escaped letters are not digits
        #"\\u0034\\u0031\\u0031\\u0031"#,  // escaped backslashes: no escape, four short groups
        "%zz%3 100%",
        "version 1.2.3 build 45 on 2026-11-21",
    ]

    @Test(arguments: unchanged)
    func leavesOtherTextAlone(_ text: String) {
        #expect(!PANMasker.containsPAN(text))
        #expect(PANMasker.mask(text) == text)
    }

    @Test func everyUnicodeDecimalDigitCountsAsItsValue() {
        // Every Nd scalar the standard library knows, standing in for 4 and 1 of a PAN in turn.
        var zeros: [UInt32] = []
        for value in UInt32(0x80)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value), scalar.properties.numericType == .decimal,
                scalar.properties.numericValue == 0
            else { continue }
            zeros.append(value)
        }
        #expect(zeros.count > 50)
        for zero in zeros {
            let four = String(Unicode.Scalar(zero + 4)!)
            let one = String(Unicode.Scalar(zero + 1)!)
            let pan = four + String(repeating: one, count: 15)
            #expect(PANMasker.containsPAN(pan), "U+\(String(zero, radix: 16))")
            let result = PANMasker.mask(pan)
            #expect(result == four + String(repeating: one, count: 5) + "******" + String(repeating: one, count: 4))
        }
    }

    // MARK: - Properties

    static let scripts: [@Sendable (String) -> String] = [
        { $0 },
        { digits($0, zero: 0x660) }, { digits($0, zero: 0x6F0) }, { digits($0, zero: 0x966) },
        { digits($0, zero: 0x9E6) }, { digits($0, zero: 0xE50) }, { digits($0, zero: 0xFF10) },
        { digits($0, zero: 0x1D7CE) },
        { String($0.unicodeScalars.map { #"\u003"# + String($0) }.joined()) },
        { String($0.unicodeScalars.map { "%3" + String($0) }.joined()) },
    ]

    static func digits(_ ascii: String, zero: UInt32) -> String {
        String(String.UnicodeScalarView(ascii.unicodeScalars.map { Unicode.Scalar(zero + $0.value - 48)! }))
    }

    static let separators = [
        "", "", "", "", " ", "-", ".", "/", "_", ",", "+", "\t", "  ", "   ", " - ", "\u{00A0}", "\u{2009}",
        "\u{202F}", "\u{3000}", "\u{2010}", "\u{2013}", "\u{2014}", "\u{2015}", "\u{2212}", "\u{200B}",
        #"\u0020"#, #"\u002d"#, "%20", #"\t"#, "\u{00A0}-\u{00A0}", "\u{FE0F}",
    ]

    /// Random PANs, each digit in a random script, random separators between digits, at a random
    /// place in random text: none survives, the result has no PAN and nothing but digits changed.
    @Test func randomlyWrittenPANsNeverSurvive() {
        var rng = SplitMix64(seed: 0x7363_7269_7074_73)
        for _ in 0..<3_000 {
            let pan = PANMaskerTests.randomPAN(length: Int.random(in: 13...19, using: &rng), using: &rng)
            var formatted = ""
            for (index, digit) in pan.enumerated() {
                if index > 0 { formatted += Self.separators.randomElement(using: &rng)! }
                formatted += Self.scripts.randomElement(using: &rng)!(String(digit))
            }
            let text =
                PANMaskerTests.randomText(using: &rng) + PANMaskerTests.randomBoundary(using: &rng)
                + formatted + PANMaskerTests.randomBoundary(using: &rng) + PANMaskerTests.randomText(using: &rng)

            let result = PANMasker.mask(text)
            #expect(!PANMasker.containsPAN(result), "\(text) -> \(result)")
            #expect(!Self.digitValues(of: result).contains(pan), "\(text) -> \(result)")
            #expect(!result.unicodeScalars.contains("\u{FFFD}"), "\(text) -> \(result)")
            #expect(Self.onlyDigitsBecameAsterisks(from: text, to: result), "\(text) -> \(result)")
        }
    }

    /// The text's digits as ASCII, separators and marks dropped and anything else as `|`, so that
    /// a surviving PAN shows as its digits in a row.
    static func digitValues(of text: String) -> String {
        Array(text.utf8).withUnsafeBufferPointer { bytes in
            var projection = ""
            var index = 0
            while index < bytes.count {
                let token = PANMasker.token(at: index, in: bytes)
                switch token.kind {
                case .digit: projection += String(token.value)
                case .other: projection += "|"
                case .separator, .ignorable: break
                }
                index = token.end
            }
            return projection
        }
    }

    /// Whether `masked` is `original` with some digits, each whole, replaced by one `*`.
    static func onlyDigitsBecameAsterisks(from original: String, to masked: String) -> Bool {
        let before = Array(original.utf8)
        let after = Array(masked.utf8)
        return before.withUnsafeBufferPointer { bytes in
            var index = 0
            var position = 0
            while index < bytes.count {
                let token = PANMasker.token(at: index, in: bytes)
                let length = token.end - index
                if position + length <= after.count, Array(after[position..<position + length]) == Array(bytes[index..<token.end]) {
                    position += length
                } else if token.kind == .digit, position < after.count, after[position] == UInt8(ascii: "*") {
                    position += 1
                } else {
                    return false
                }
                index = token.end
            }
            return position == after.count
        }
    }
}
