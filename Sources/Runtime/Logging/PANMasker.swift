/// Finds and masks primary account numbers (card numbers) in free text before it reaches a log.
///
/// PCI DSS allows at most the first six and last four digits of a PAN to be displayed, so that is
/// what survives. Detection is deliberately generous: a false positive costs a few asterisks in a
/// log line, a false negative is a reportable data leak.
///
/// A candidate is a sequence of whole digit groups from one *run*: digit groups joined by one or
/// two separator characters (space or dash). Every contiguous sequence of groups whose digits add
/// up to 13–19 is a candidate, so trailing digits such as an expiry (`4111 1111 1111 1111 12/25`)
/// or neighbouring numbers cannot hide a PAN. A candidate that passes the Luhn check is masked.
/// Groups are never split, so one unseparated run of 20 or more digits (an id, a hash) is never
/// taken for a PAN.
///
/// The scan works on UTF-8 bytes and only ever rewrites ASCII digits to `*`, so text around a PAN
/// stays valid UTF-8 whatever script it is in.
public enum PANMasker {
    static let minimumDigits = 13
    static let maximumDigits = 19
    static let keptLeadingDigits = 6
    static let keptTrailingDigits = 4
    static let maximumSeparatorRun = 2
    static let maskByte = UInt8(ascii: "*")

    /// `text` with every PAN in it masked; `text` itself when there is none.
    public static func mask(_ text: String) -> String {
        // Most log text has no PAN: answer from the string's own storage, so that the common
        // case costs a scan and no copy.
        guard hasEnoughDigits(text) else { return text }
        let clean = text.utf8.withContiguousStorageIfAvailable { bytes in
            !containsCandidate(bytes)
        }
        if clean == true { return text }

        var bytes = Array(text.utf8)
        var masked = false
        // Masking a PAN inside a longer run leaves its kept digits next to other groups, and those
        // can form a new Luhn-valid candidate. Repeat until a pass finds nothing, so that
        // `containsPAN(mask(x))` is always false; every pass that masks removes at least three
        // digits, so this ends.
        while bytes.withUnsafeMutableBufferPointer({ maskPass($0) }) {
            masked = true
        }
        return masked ? String(decoding: bytes, as: UTF8.self) : text
    }

    /// Whether `text` holds anything ``mask(_:)`` would mask.
    public static func containsPAN(_ text: String) -> Bool {
        guard hasEnoughDigits(text) else { return false }
        if let found = text.utf8.withContiguousStorageIfAvailable({ containsCandidate($0) }) {
            return found
        }
        return Array(text.utf8).withUnsafeBufferPointer { containsCandidate($0) }
    }

    // MARK: - Scanning

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    @inline(__always)
    static func isSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-")
    }

    /// Whether `text` has at least 13 ASCII digits: fewer can hold no PAN.
    static func hasEnoughDigits(_ text: String) -> Bool {
        // Over the string's own bytes when it has them (native and small strings do): the
        // iterator of the UTF-8 view was a visible share of writing an audit record
        // (docs/performance.md).
        text.utf8.withContiguousStorageIfAvailable { hasEnoughDigits($0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { hasEnoughDigits($0) }
    }

    static func hasEnoughDigits(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = 0
        for byte in bytes where isDigit(byte) {
            digits += 1
            if digits >= minimumDigits { return true }
        }
        return false
    }

    static func containsCandidate(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var found = false
        forEachRun(in: bytes) { groups in
            forEachLuhnCandidate(groups, in: bytes) { _, _, _ in
                found = true
                return false
            }
            return !found
        }
        return found
    }

    /// One masking pass; whether it masked anything.
    static func maskPass(_ bytes: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let readable = UnsafeBufferPointer(bytes)
        var masked = false
        var candidates: [(first: Int, last: Int, digits: Int)] = []
        forEachRun(in: readable) { groups in
            // Candidates of one run overlap: find them all against the original digits before
            // writing any asterisk, or a later Luhn check would read a half-masked number.
            candidates.removeAll(keepingCapacity: true)
            forEachLuhnCandidate(groups, in: readable) { first, last, digits in
                candidates.append((first, last, digits))
                return true
            }
            for candidate in candidates {
                var ordinal = 0
                let maskedOrdinals = keptLeadingDigits..<(candidate.digits - keptTrailingDigits)
                for group in groups[candidate.first...candidate.last] {
                    for index in group {
                        if maskedOrdinals.contains(ordinal) { bytes[index] = maskByte }
                        ordinal += 1
                    }
                }
                masked = true
            }
            return true
        }
        return masked
    }

    /// Calls `body` with the digit groups of every run that has enough digits for a PAN, in
    /// order; `body` returns false to stop. Each group is the byte range of its digits.
    static func forEachRun(
        in bytes: UnsafeBufferPointer<UInt8>,
        _ body: (_ groups: [Range<Int>]) -> Bool
    ) {
        var groups: [Range<Int>] = []
        let count = bytes.count
        var index = 0
        while index < count {
            guard isDigit(bytes[index]) else {
                index += 1
                continue
            }
            groups.removeAll(keepingCapacity: true)
            var runDigits = 0
            var end = index
            while true {
                let start = end
                while end < count && isDigit(bytes[end]) { end += 1 }
                groups.append(start..<end)
                runDigits += end - start
                // Look one separator past the limit so that three in a row end the run.
                var next = end
                while next < count && next - end <= maximumSeparatorRun && isSeparator(bytes[next]) {
                    next += 1
                }
                let separators = next - end
                guard separators >= 1, separators <= maximumSeparatorRun, next < count,
                    isDigit(bytes[next])
                else { break }
                end = next
            }
            if runDigits >= minimumDigits && !body(groups) { return }
            index = end
        }
    }

    /// Calls `body` with every contiguous sequence of whole groups (`first...last`) that has
    /// 13–19 digits and passes the Luhn check; `body` returns false to stop.
    static func forEachLuhnCandidate(
        _ groups: [Range<Int>],
        in bytes: UnsafeBufferPointer<UInt8>,
        _ body: (_ first: Int, _ last: Int, _ digits: Int) -> Bool
    ) {
        for first in groups.indices {
            var digits = 0
            for last in first..<groups.count {
                digits += groups[last].count
                if digits > maximumDigits { break }
                if digits >= minimumDigits && passesLuhn(groups[first...last], in: bytes) {
                    if !body(first, last, digits) { return }
                }
            }
        }
    }

    static func passesLuhn(_ groups: ArraySlice<Range<Int>>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var sum = 0
        var double = false
        for group in groups.reversed() {
            for index in group.reversed() {
                var digit = Int(bytes[index] &- UInt8(ascii: "0"))
                if double {
                    digit *= 2
                    if digit > 9 { digit -= 9 }
                }
                sum += digit
                double.toggle()
            }
        }
        return sum % 10 == 0
    }
}
