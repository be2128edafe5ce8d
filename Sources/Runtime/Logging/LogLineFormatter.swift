#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// A wall-clock instant for log timestamps. Log lines need civil time, which the engine's
/// monotonic clock cannot give; handlers take a source of these so tests can fix the time.
public struct WallClockTime: Sendable, Hashable {
    public var secondsSinceEpoch: Int64
    /// 0..<1_000_000_000.
    public var nanoseconds: Int32

    public init(secondsSinceEpoch: Int64, nanoseconds: Int32 = 0) {
        self.secondsSinceEpoch = secondsSinceEpoch
        self.nanoseconds = nanoseconds
    }

    /// CLOCK_REALTIME.
    public static func now() -> WallClockTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return WallClockTime(secondsSinceEpoch: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    /// ISO 8601 in UTC with milliseconds, e.g. `2026-11-21T22:49:00.123Z`.
    ///
    /// Computed by hand rather than with gmtime/strftime: pure arithmetic has no locale or
    /// time-zone state to go wrong, and this module then needs no Foundation.
    public var iso8601: String {
        let days =
            secondsSinceEpoch >= 0
            ? secondsSinceEpoch / 86_400 : (secondsSinceEpoch - 86_399) / 86_400
        let secondOfDay = secondsSinceEpoch - days * 86_400
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        let milliseconds = Int64(max(0, min(nanoseconds, 999_999_999)) / 1_000_000)
        var text = ""
        text.reserveCapacity(24)
        Self.append(year, width: 4, to: &text)
        text.append("-")
        Self.append(month, width: 2, to: &text)
        text.append("-")
        Self.append(day, width: 2, to: &text)
        text.append("T")
        Self.append(secondOfDay / 3600, width: 2, to: &text)
        text.append(":")
        Self.append(secondOfDay / 60 % 60, width: 2, to: &text)
        text.append(":")
        Self.append(secondOfDay % 60, width: 2, to: &text)
        text.append(".")
        Self.append(milliseconds, width: 3, to: &text)
        text.append("Z")
        return text
    }

    /// Howard Hinnant's days-to-civil algorithm for the proleptic Gregorian calendar.
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func append(_ value: Int64, width: Int, to text: inout String) {
        let digits = String(value)
        if digits.count < width { text.append(String(repeating: "0", count: width - digits.count)) }
        text.append(digits)
    }
}

/// Renders a sanitized record as one human-readable line:
/// `2026-11-21T22:49:00.123Z CRIT mutewarden: message key=value key2="value with spaces"`.
///
/// A record is always exactly one line, whatever its content: line breaks and other control
/// characters are escaped wherever they appear, so nobody can forge a log line through a message
/// or a metadata value.
public enum LogLineFormatter {
    /// The level as the line shows it, with syslog's short names.
    public static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .critical: "CRIT"
        case .error: "ERR"
        case .warning: "WARN"
        case .notice: "NOTICE"
        case .info: "INFO"
        case .debug: "DEBUG"
        case .trace: "TRACE"
        }
    }

    /// The line for `record`, without a trailing newline.
    public static func format(_ record: SanitizedLogRecord, at time: WallClockTime) -> String {
        var line = time.iso8601
        line.append(" ")
        line.append(levelName(record.level))
        line.append(" ")
        if !record.label.isEmpty {
            appendEscaped(record.label, to: &line)
            line.append(": ")
        }
        appendEscaped(record.message, to: &line)
        for (key, value) in record.metadata.sorted(by: { $0.key < $1.key }) {
            line.append(" ")
            // A bare `=` in a key would make the pair ambiguous to a logfmt reader.
            appendQuotedIfNeeded(key, to: &line, alsoQuoting: .equals)
            line.append("=")
            if case .string(let text) = value {
                appendQuotedIfNeeded(text, to: &line)
            } else {
                appendQuotedIfNeeded(render(value), to: &line)
            }
        }
        return line
    }

    /// A metadata value as text: nested dictionaries as `{key=value,...}` sorted by key, arrays as
    /// `[value,...]`. Backends that cannot nest (journald) use this too.
    public static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text):
            return text
        case .stringConvertible(let convertible):
            return convertible.description
        case .dictionary(let nested):
            var text = "{"
            for (index, (key, element)) in nested.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { text.append(",") }
                appendQuotedIfNeeded(key, to: &text, alsoQuoting: .nestedDelimiters)
                text.append("=")
                appendQuotedIfNeeded(render(element), to: &text, alsoQuoting: .nestedDelimiters)
            }
            text.append("}")
            return text
        case .array(let elements):
            var text = "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text.append(",") }
                appendQuotedIfNeeded(render(element), to: &text, alsoQuoting: .nestedDelimiters)
            }
            text.append("]")
            return text
        }
    }

    /// ASCII characters that force quotes on top of the usual ones, as a bitmask: a `Set` cost a
    /// hash per character, most of a line's formatting.
    struct QuotedASCII: Sendable {
        var mask: UInt128

        static let none = QuotedASCII(mask: 0)
        static let equals = QuotedASCII("=")
        static let nestedDelimiters = QuotedASCII(",={}[]")

        init(mask: UInt128) { self.mask = mask }

        init(_ characters: StaticString) {
            var mask: UInt128 = 0
            characters.withUTF8Buffer { for byte in $0 { mask |= 1 << UInt128(byte) } }
            self.mask = mask
        }

        func contains(_ byte: UInt8) -> Bool { byte < 128 && mask & (1 << UInt128(byte)) != 0 }
    }

    /// Always quoted, at any level: space, `"` and `\`.
    private static let alwaysQuoted = QuotedASCII(" \"\\")

    /// Scalars that could break a line, or hide text, on a terminal or in a log viewer.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x85
            || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    static func appendEscaped(_ text: String, to line: inout String) {
        guard needsMarking(text, quoting: .none) else {
            line.append(text)
            return
        }
        for scalar in text.unicodeScalars {
            appendScalar(scalar, to: &line, escapingQuotes: false)
        }
    }

    /// Appends `text` bare when it is unambiguous, otherwise in double quotes with `\`, `"` and
    /// control characters escaped. Empty text is quoted so that `key=` never appears.
    static func appendQuotedIfNeeded(_ text: String, to line: inout String, alsoQuoting extra: QuotedASCII = .none) {
        let quoted = QuotedASCII(mask: alwaysQuoted.mask | extra.mask)
        guard text.isEmpty || needsMarking(text, quoting: quoted) else {
            line.append(text)
            return
        }
        line.append("\"")
        for scalar in text.unicodeScalars {
            appendScalar(scalar, to: &line, escapingQuotes: true)
        }
        line.append("\"")
    }

    /// Whether `text` has a scalar that needs escaping, or one of the `quoting` characters. One
    /// pass over the bytes settles ASCII text; scalars are decoded only when there are others, and
    /// of those only U+0085, U+2028 and U+2029 need escaping.
    static func needsMarking(_ text: String, quoting quoted: QuotedASCII) -> Bool {
        func scan(_ bytes: some Sequence<UInt8>) -> (marked: Bool, nonASCII: Bool) {
            var nonASCII = false
            for byte in bytes {
                if byte >= 0x80 {
                    nonASCII = true
                } else if byte < 0x20 || byte == 0x7F || quoted.contains(byte) {
                    return (true, nonASCII)
                }
            }
            return (false, nonASCII)
        }
        let (marked, nonASCII) = text.utf8.withContiguousStorageIfAvailable { scan($0) } ?? scan(text.utf8)
        return marked || (nonASCII && text.unicodeScalars.contains(where: needsEscape))
    }

    private static func appendScalar(_ scalar: Unicode.Scalar, to line: inout String, escapingQuotes: Bool) {
        switch scalar {
        case "\n": line.append("\\n")
        case "\r": line.append("\\r")
        case "\t": line.append("\\t")
        case "\"" where escapingQuotes: line.append("\\\"")
        case "\\" where escapingQuotes: line.append("\\\\")
        case _ where needsEscape(scalar):
            let hex = String(scalar.value, radix: 16, uppercase: false)
            line.append("\\u{\(hex)}")
        default:
            line.unicodeScalars.append(scalar)
        }
    }
}
