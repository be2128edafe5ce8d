/// Finds and masks primary account numbers (card numbers) in free text before it reaches a log.
///
/// PCI DSS allows at most the first six and last four digits of a PAN to be displayed, so that is
/// what survives. Detection is deliberately generous: a false positive costs a few asterisks in a
/// log line, a false negative is a reportable data leak.
///
/// A candidate is a sequence of whole digit groups from one *run*: digit groups joined by one to
/// three separators. Every contiguous sequence of groups whose digits add up to 13–19 is a
/// candidate, so trailing digits such as an expiry (`4111 1111 1111 1111 12/25`) or neighbouring
/// numbers cannot hide a PAN. A candidate that passes the Luhn check is masked. Groups are never
/// split, so one unseparated run of 20 or more digits (an id, a hash) is never taken for a PAN.
///
/// What counts, because a PAN reaches a log in whatever form a person or a platform wrote it:
///
/// - **Digits:** every Unicode decimal digit (general category Nd: ASCII, Arabic-Indic,
///   Devanagari, fullwidth…), as its value.
/// - **Separators:** space, tab and the other ASCII white space, `-` `.` `/` `_` `,` `+`, every
///   Unicode space (NBSP, thin space, ideographic space…), dash (U+2010–U+2015…), format
///   character (zero-width space, soft hyphen, direction marks…), line or paragraph separator,
///   and look-alikes of the ASCII ones (minus sign, fraction and division slashes, middle dots,
///   fullwidth and small forms).
/// - **Escapes** of those in JSON (`\u0034`, a surrogate pair, `\t`, `\/`) and in URLs (`%34`,
///   `%20`), each as the one character it stands for.
/// - Combining marks and variation selectors are skipped, so `4️⃣` is a digit.
///
/// Masking a PAN leaves its first six digits at the end of what is left of its run, and its last
/// four at the start of the rest; either can complete a new candidate with the groups beside it.
/// Those are masked too, until none is left, so that `containsPAN(mask(x))` is always false.
///
/// Both `mask` and `containsPAN` take time linear in the text, whatever it holds: a candidate
/// spans at most 19 digits, and after the first look at a run only the few groups beside what
/// was just masked can form a new one.
///
/// A masked digit, whatever its encoding (one byte, a multi-byte scalar, a six-byte escape), is
/// replaced whole by one `*`, so the result is valid UTF-8 and text around a PAN is untouched.
public enum PANMasker {
    static let minimumDigits = 13
    static let maximumDigits = 19
    static let keptLeadingDigits = 6
    static let keptTrailingDigits = 4
    static let maximumSeparatorRun = 3
    static let maskByte = UInt8(ascii: "*")

    /// `text` with every PAN in it masked; `text` itself when there is none.
    public static func mask(_ text: String) -> String {
        // Most log text has no PAN: answer from the string's own storage, so that the common
        // case costs a scan and no copy.
        guard hasEnoughDigits(text) else { return text }
        let result: String?? = text.utf8.withContiguousStorageIfAvailable { masked($0) }
        return (result ?? Array(text.utf8).withUnsafeBufferPointer { masked($0) }) ?? text
    }

    /// The most UTF-8 bytes of one text that ``maskForLog(_:)`` keeps, marker included.
    public static let maximumLoggedBytes = 64 * 1024

    /// `text` masked as ``mask(_:)`` does, for a log record: when longer than
    /// ``maximumLoggedBytes``, only its beginning is kept, followed by `…[truncated from N bytes]`.
    ///
    /// Masking is linear, but a record's size still is the log's and the engine thread's cost,
    /// and a platform decides how long the texts it sends are. The digits just before the cut
    /// are masked whatever they are: a PAN cut in two shows no candidate, yet its first digits
    /// must not be shown beyond the first six.
    public static func maskForLog(_ text: String) -> String {
        let count = text.utf8.count
        guard count > maximumLoggedBytes else { return mask(text) }
        let marker = "…[truncated from \(count) bytes]"
        let limit = maximumLoggedBytes - marker.utf8.count
        let kept: String? = text.utf8.withContiguousStorageIfAvailable { truncatedAndMasked($0, limit: limit) }
        return (kept ?? Array(text.utf8).withUnsafeBufferPointer { truncatedAndMasked($0, limit: limit) }) + marker
    }

    static func truncatedAndMasked(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> String {
        var scanner = Scanner(detectOnly: false)
        _ = scanner.scan(bytes, limit: limit)
        return String(decoding: rewrite(bytes, upTo: scanner.cut ?? bytes.count, masking: scanner.maskedRanges), as: UTF8.self)
    }

    /// Whether `text` holds anything ``mask(_:)`` would mask.
    public static func containsPAN(_ text: String) -> Bool {
        guard hasEnoughDigits(text) else { return false }
        var scanner = Scanner(detectOnly: true)
        if let found = text.utf8.withContiguousStorageIfAvailable({ scanner.scan($0) }) {
            return found
        }
        return Array(text.utf8).withUnsafeBufferPointer { scanner.scan($0) }
    }

    /// The masked text, or nil when nothing needed masking.
    static func masked(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var scanner = Scanner(detectOnly: false)
        guard scanner.scan(bytes) else { return nil }
        return String(decoding: rewrite(bytes, upTo: bytes.count, masking: scanner.maskedRanges), as: UTF8.self)
    }

    /// `bytes[..<end]` with each of `ranges` (in order, within it) replaced by one `*`.
    static func rewrite(_ bytes: UnsafeBufferPointer<UInt8>, upTo end: Int, masking ranges: [Range<Int>]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(end)
        var copied = 0
        for range in ranges {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<range.lowerBound]))
            output.append(maskByte)
            copied = range.upperBound
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<end]))
        return output
    }

    // MARK: - Tokens

    enum Kind {
        case digit, separator, other
        /// A combining mark: part of the character before it.
        case ignorable
    }

    /// One character of the text as the scan sees it: `value` is a digit's value, `end` where the
    /// next token starts.
    struct Token {
        var kind: Kind
        var value: UInt8
        var end: Int
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    @inline(__always)
    static func isSeparator(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x09...0x0D, UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "/"),
            UInt8(ascii: "_"), UInt8(ascii: ","), UInt8(ascii: "+"):
            true
        default: false
        }
    }

    @inline(__always)
    static func token(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Token {
        let byte = bytes[index]
        if isDigit(byte) { return Token(kind: .digit, value: byte &- UInt8(ascii: "0"), end: index + 1) }
        if byte < 0x80 {
            if isSeparator(byte) { return Token(kind: .separator, value: 0, end: index + 1) }
            if byte == UInt8(ascii: "\\") { return escape(at: index, in: bytes) }
            if byte == UInt8(ascii: "%") { return percentEscape(at: index, in: bytes) }
            return Token(kind: .other, value: 0, end: index + 1)
        }
        return nonASCII(at: index, in: bytes)
    }

    /// A UTF-8 sequence: a digit, separator or mark by its Unicode properties.
    static func nonASCII(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Token {
        let lead = bytes[index]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        // Strings hold valid UTF-8; a stray byte is only ever something else, never a digit.
        guard length > 1, index + length <= bytes.count else { return Token(kind: .other, value: 0, end: index + 1) }
        var value = UInt32(lead) & (0x7F >> length)
        for offset in 1..<length {
            let byte = bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { return Token(kind: .other, value: 0, end: index + 1) }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value) else { return Token(kind: .other, value: 0, end: index + 1) }
        let (kind, digit) = classify(scalar)
        return Token(kind: kind, value: digit, end: index + length)
    }

    static func classify(_ scalar: Unicode.Scalar) -> (Kind, UInt8) {
        if scalar.isASCII {
            let byte = UInt8(scalar.value)
            if isDigit(byte) { return (.digit, byte &- UInt8(ascii: "0")) }
            return (isSeparator(byte) ? .separator : .other, 0)
        }
        // The digits most likely to be typed, without the property lookups, which cost more
        // than the rest of the scan.
        switch scalar.value {
        case 0x0660...0x0669: return (.digit, UInt8(scalar.value - 0x0660))
        case 0x06F0...0x06F9: return (.digit, UInt8(scalar.value - 0x06F0))
        case 0x0966...0x096F: return (.digit, UInt8(scalar.value - 0x0966))
        case 0xFF10...0xFF19: return (.digit, UInt8(scalar.value - 0xFF10))
        default: break
        }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .decimalNumber:
            guard let value = properties.numericValue, value >= 0, value <= 9 else { return (.other, 0) }
            return (.digit, UInt8(value))
        case .spaceSeparator, .dashPunctuation, .format, .lineSeparator, .paragraphSeparator:
            return (.separator, 0)
        case .nonspacingMark, .enclosingMark, .spacingMark:
            return (.ignorable, 0)
        default:
            return (separatorLookAlikes.contains(scalar.value) ? .separator : .other, 0)
        }
    }

    /// Characters outside the categories above that people and software put between digit
    /// groups: the minus sign, slashes, dots, and wide or small forms of `+ , . / _`.
    static let separatorLookAlikes: Set<UInt32> = [
        0x2212, 0x2044, 0x2215, 0x2024, 0x00B7, 0x2027, 0x2219, 0x2022, 0x30FB, 0xFF65, 0xFF0B, 0xFF0C,
        0xFF0E, 0xFF0F, 0xFF3F, 0xFE50, 0xFE52, 0xFE62, 0x3001, 0xFF64, 0x060C, 0x066B, 0x066C,
    ]

    /// A backslash: a JSON escape of a digit or separator is that character; `\\` is a pair, so
    /// that the backslash after it starts nothing. Anything else is the backslash alone, so the
    /// digits written after it still count.
    static func escape(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Token {
        let backslashAlone = Token(kind: .other, value: 0, end: index + 1)
        guard index + 1 < bytes.count else { return backslashAlone }
        switch bytes[index + 1] {
        case UInt8(ascii: "\\"):
            return Token(kind: .other, value: 0, end: index + 2)
        case UInt8(ascii: "t"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "f"), UInt8(ascii: "/"):
            return Token(kind: .separator, value: 0, end: index + 2)
        case UInt8(ascii: "u"):
            guard var unit = hexQuad(at: index + 2, in: bytes) else { return backslashAlone }
            var end = index + 6
            if unit & 0xFC00 == 0xD800, end + 6 <= bytes.count, bytes[end] == UInt8(ascii: "\\"),
                bytes[end + 1] == UInt8(ascii: "u"), let low = hexQuad(at: end + 2, in: bytes), low & 0xFC00 == 0xDC00
            {
                unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                end += 6
            }
            guard let scalar = Unicode.Scalar(unit) else { return backslashAlone }
            let (kind, digit) = classify(scalar)
            return kind == .other ? backslashAlone : Token(kind: kind, value: digit, end: end)
        default:
            return backslashAlone
        }
    }

    /// `%XX` standing for an ASCII digit or separator is that character; anything else is the
    /// `%` alone.
    static func percentEscape(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Token {
        guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
        else { return Token(kind: .other, value: 0, end: index + 1) }
        let byte = UInt8(high << 4 | low)
        if isDigit(byte) { return Token(kind: .digit, value: byte &- UInt8(ascii: "0"), end: index + 3) }
        if isSeparator(byte) { return Token(kind: .separator, value: 0, end: index + 3) }
        return Token(kind: .other, value: 0, end: index + 1)
    }

    static func hexQuad(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            guard let digit = hexValue(bytes[index + offset]) else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Whether `text` has at least 13 bytes that can begin a digit (an ASCII digit, a multi-byte
    /// sequence, `\\` or `%`): fewer can hold no PAN.
    static func hasEnoughDigits(_ text: String) -> Bool {
        // Over the string's own bytes when it has them (native and small strings do): the
        // iterator of the UTF-8 view was a visible share of writing an audit record
        // (docs/performance.md).
        text.utf8.withContiguousStorageIfAvailable { hasEnoughDigits($0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { hasEnoughDigits($0) }
    }

    static func hasEnoughDigits(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = 0
        for byte in bytes where isDigit(byte) || byte >= 0xC0 || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "%") {
            digits += 1
            if digits >= minimumDigits { return true }
        }
        return false
    }

    // MARK: - Scanning

    /// Luhn's contribution of a digit, plain or doubled.
    @inline(__always)
    static func luhnValue(_ digit: UInt8, doubled: Bool) -> Int {
        guard doubled else { return Int(digit) }
        return digit > 4 ? Int(digit) * 2 - 9 : Int(digit) * 2
    }

    /// Splits text into runs, finds the candidates of each, and records which digits to mask.
    struct Scanner {
        /// Stop at the first candidate; record nothing.
        let detectOnly: Bool
        /// Byte ranges of the digits to replace with `*`, in order.
        var maskedRanges: [Range<Int>] = []

        /// One digit of the run being examined.
        struct Digit {
            var start: Int
            var end: Int
            var value: UInt8
            /// Whether the digit begins one of the text's groups (separators before it).
            var startsGroup: Bool
            var isMasked = false
        }

        /// The run being examined. Filled only for runs that hold a candidate, so that
        /// ordinary text allocates nothing.
        var digits: [Digit] = []
        /// The pass in which a digit was last examined as the end of a segment, or its start, so
        /// that a pass looks at each place once. Allocated only when a run holds a candidate.
        var endStamp: [Int] = []
        var startStamp: [Int] = []

        // The run being scanned: its bytes from its first digit to the end of its last, its
        // digit count, and its last 32 digits (the top bit set on a group's first digit), enough
        // to see every candidate as its last group ends without storing the run.
        var runStart = -1
        var runEnd = 0
        var runDigits = 0
        var recent = SIMD32<UInt8>()
        var runHasCandidate = false
        /// Where a scan with a limit stopped, when that was before the end.
        var cut: Int?

        init(detectOnly: Bool) {
            self.detectOnly = detectOnly
        }

        /// Scans `bytes`, up to the last whole token that ends within `limit`; whether there was
        /// anything to mask. When that is not the end, ``cut`` says where the scan stopped.
        mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int = .max) -> Bool {
            var found = false
            var index = 0
            var separators = 0
            var afterDigit = false
            var continuesPastCut = false
            let count = bytes.count
            while index < count {
                let token = PANMasker.token(at: index, in: bytes)
                if token.end > limit {
                    cut = index
                    continuesPastCut = token.kind != .other
                    break
                }
                if token.kind == .digit {
                    if runStart >= 0, separators > maximumSeparatorRun {
                        if endRun(in: bytes) {
                            found = true
                            if detectOnly { return true }
                        }
                    }
                    if runStart < 0 {
                        runStart = index
                        runDigits = 0
                        runHasCandidate = false
                    }
                    recent[runDigits & 31] = token.value | (afterDigit ? 0 : 0x80)
                    runDigits += 1
                    runEnd = token.end
                    separators = 0
                    afterDigit = true
                } else if token.kind != .ignorable {
                    if afterDigit { endGroup() }
                    afterDigit = false
                    if runStart >= 0 {
                        if token.kind == .separator {
                            separators += 1
                        } else if endRun(in: bytes) {
                            found = true
                            if detectOnly { return true }
                        }
                    }
                }
                index = token.end
            }
            if afterDigit { endGroup() }
            // A run still open at the cut may be the head of a PAN whose tail was cut off, which
            // no candidate can show: its last digits are masked as if they were one.
            let truncatedRun = continuesPastCut && separators <= maximumSeparatorRun
            if runStart >= 0, endRun(in: bytes, truncated: truncatedRun) { found = true }
            return found
        }

        /// The run's latest group has ended: whether a candidate ends with it.
        mutating func endGroup() {
            guard !runHasCandidate, runDigits >= minimumDigits else { return }
            var sum = 0
            for back in 0..<min(maximumDigits, runDigits) {
                let entry = recent[(runDigits - 1 - back) & 31]
                sum += luhnValue(entry & 0x7F, doubled: back % 2 == 1)
                if back + 1 >= minimumDigits, entry & 0x80 != 0, sum % 10 == 0 {
                    runHasCandidate = true
                    return
                }
            }
        }

        /// The run has ended: whether it holds a candidate (or was cut), masked unless only
        /// detecting.
        mutating func endRun(in bytes: UnsafeBufferPointer<UInt8>, truncated: Bool = false) -> Bool {
            defer { runStart = -1 }
            guard runHasCandidate || truncated else { return false }
            if !detectOnly { examine(runStart..<runEnd, in: bytes, truncated: truncated) }
            return true
        }

        /// Masks the candidates of a run that has one (from its first digit to the end of its
        /// last), and whatever their masking makes into a new one.
        mutating func examine(_ run: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>, truncated: Bool) {
            load(run, in: bytes)
            var intervals: [ClosedRange<Int>] = []
            if truncated {
                // A PAN that goes on past the cut has at most 18 digits before it.
                intervals.append(max(0, digits.count - (maximumDigits - 1))...(digits.count - 1))
            }
            for first in digits.indices where digits[first].startsGroup {
                forEachWindow(from: first) { first, last in intervals.append(Self.maskedInterval(first, last)) }
            }

            // Every pass evaluates its candidates against the same digits before masking any,
            // so that overlapping candidates are all masked as found. After the first, a pass
            // looks only beside what the previous one masked: anywhere else the groups are the
            // ones already examined.
            endStamp = Array(repeating: 0, count: digits.count)
            startStamp = Array(repeating: 0, count: digits.count)
            var pass = 0
            var segmentEnds: [Int] = []
            var segmentStarts: [Int] = []
            while !intervals.isEmpty {
                pass += 1
                for interval in intervals {
                    for digit in interval { digits[digit].isMasked = true }
                }
                segmentEnds.removeAll(keepingCapacity: true)
                segmentStarts.removeAll(keepingCapacity: true)
                for interval in intervals {
                    let before = interval.lowerBound - 1
                    if before >= 0, !digits[before].isMasked, endStamp[before] != pass {
                        endStamp[before] = pass
                        segmentEnds.append(before)
                    }
                    let after = interval.upperBound + 1
                    if after < digits.count, !digits[after].isMasked, startStamp[after] != pass {
                        startStamp[after] = pass
                        segmentStarts.append(after)
                    }
                }
                intervals.removeAll(keepingCapacity: true)
                for last in segmentEnds {
                    forEachWindow(to: last) { first, last in intervals.append(Self.maskedInterval(first, last)) }
                }
                for first in segmentStarts {
                    forEachWindow(from: first) { first, last in intervals.append(Self.maskedInterval(first, last)) }
                }
            }
            for digit in digits where digit.isMasked {
                maskedRanges.append(digit.start..<digit.end)
            }
        }

        static func maskedInterval(_ first: Int, _ last: Int) -> ClosedRange<Int> {
            (first + keptLeadingDigits)...(last - keptTrailingDigits)
        }

        mutating func load(_ run: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) {
            digits.removeAll(keepingCapacity: true)
            var index = run.lowerBound
            var separated = true
            while index < run.upperBound {
                let token = PANMasker.token(at: index, in: bytes)
                if token.kind == .digit {
                    digits.append(Digit(start: index, end: token.end, value: token.value, startsGroup: separated))
                    separated = false
                } else if token.kind != .ignorable {
                    separated = true
                }
                index = token.end
            }
        }

        /// Whether a group of the current text ends at `digit`: the text's own group ends there,
        /// or the next digit is masked (an `*` ends a run).
        @inline(__always)
        func endsGroup(_ digit: Int) -> Bool {
            digit + 1 == digits.count || digits[digit + 1].startsGroup || digits[digit + 1].isMasked
        }

        /// Calls `body` with every Luhn-valid window of 13–19 digits, of whole groups of the
        /// current text, that starts at `first` (a group's first digit).
        func forEachWindow(from first: Int, _ body: (Int, Int) -> Void) {
            // Luhn doubles every second digit counting from the window's last one. Both sums are
            // kept, one for a last digit at an even index and one for an odd index, so that each
            // longer window costs one step.
            var evenEnd = 0
            var oddEnd = 0
            var last = first
            while last < digits.count, !digits[last].isMasked, last - first < maximumDigits {
                let value = digits[last].value
                let even = last % 2 == 0
                evenEnd += luhnValue(value, doubled: !even)
                oddEnd += luhnValue(value, doubled: even)
                if last - first + 1 >= minimumDigits, endsGroup(last), (even ? evenEnd : oddEnd) % 10 == 0 {
                    body(first, last)
                }
                last += 1
            }
        }

        /// Calls `body` with every Luhn-valid window of 13–19 digits, of whole groups of the
        /// current text, that ends at `last` (a group's last digit).
        func forEachWindow(to last: Int, _ body: (Int, Int) -> Void) {
            var sum = 0
            var first = last
            while first >= 0, !digits[first].isMasked, last - first < maximumDigits {
                sum += luhnValue(digits[first].value, doubled: (last - first) % 2 == 1)
                if last - first + 1 >= minimumDigits, sum % 10 == 0,
                    first == 0 || digits[first].startsGroup || digits[first - 1].isMasked
                {
                    body(first, last)
                }
                first -= 1
            }
        }
    }
}
