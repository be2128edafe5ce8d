import MutewardenJSON

/// The times Voicenter states, read without trusting their shape.
public enum VoicenterTime {
    /// Wall-clock nanoseconds since the epoch of a login answer's `TokenExpiry` or
    /// `RefreshTokenExpiry`: epoch seconds or milliseconds (a number or a numeric string), or an
    /// ISO 8601 date and time. nil when it cannot be read, or lies outside 2000–2200: a value the
    /// feed cannot place must not schedule a refresh in the past or never.
    ///
    /// The vendor's SDK hands the value to JavaScript's `new Date()`, which accepts all of these;
    /// which one the server sends is not documented. A date and time without a zone is taken as
    /// UTC (docs/providers/voicenter.md).
    public static func expiry(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let number)?:
            return epoch(number)
        case .string(let text)?:
            let trimmed = String(text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (48...57).contains($0) || $0 == UInt8(ascii: ".") }) {
                return Double(trimmed).flatMap(epoch)
            }
            return iso8601(trimmed)
        default:
            return nil
        }
    }

    private static let earliest: Int64 = 946_684_800  // 2000-01-01T00:00:00Z
    private static let latest: Int64 = 7_258_118_400  // 2200-01-01T00:00:00Z

    /// Seconds, or milliseconds when the number is too large to be seconds of this era.
    private static func epoch(_ number: Double) -> Int64? {
        guard number.isFinite, number > 0 else { return nil }
        let seconds = number >= 1e11 ? number / 1000 : number
        guard seconds >= Double(earliest), seconds < Double(latest) else { return nil }
        return Int64(seconds * 1e9)
    }

    /// `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH[:]MM]`; a missing zone is UTC.
    static func iso8601(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + digits] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += digits
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("T t"), let hour = number(2), expect(":"), let minute = number(2)
        else { return nil }
        var second = 0
        var nanoseconds = 0
        if expect(":") {
            guard let value = number(2) else { return nil }
            second = value
            if expect(".,") {
                var scale = 100_000_000
                var digits = 0
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    // Digits past the nanosecond are read and dropped.
                    if scale > 0 { nanoseconds += Int(bytes[index] - UInt8(ascii: "0")) * scale }
                    scale /= 10
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            if expect("Zz") {
                // UTC.
            } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                index += 1
                guard let hours = number(2) else { return nil }
                _ = expect(":")
                guard let minutes = number(2), hours <= 23, minutes <= 59 else { return nil }
                offsetSeconds = sign * (hours * 3600 + minutes * 60)
            } else {
                return nil
            }
        }
        guard index == bytes.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        let seconds =
            Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
            - Int64(offsetSeconds)
        guard seconds >= earliest, seconds < latest else { return nil }
        return seconds * 1_000_000_000 + Int64(nanoseconds)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
    /// `days_from_civil`), so that no calendar or time zone database is consulted.
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let shifted = month <= 2 ? year - 1 : year
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// A real-time event's timestamp (`servertime`, `callStarted`…) in UTC seconds: the server
    /// states its local time, `servertimeoffset` minutes ahead of UTC (120 in a recorded Israeli
    /// session), and 0 for "not set". nil for 0, for a value that is not a finite number, and for
    /// an offset beyond a day.
    public static func utcSeconds(_ value: JSONValue?, offsetMinutes: JSONValue?) -> Double? {
        utcSeconds(of: value, offsetMinutes: offsetMinutes)
    }

    static func utcSeconds<JSON: JSONReadable>(of value: JSON?, offsetMinutes: JSON?) -> Double? {
        guard let seconds = value?.number ?? value?.string.flatMap(Double.init), seconds.isFinite, seconds > 0 else { return nil }
        let offset = offsetMinutes?.number ?? offsetMinutes?.string.flatMap(Double.init) ?? 0
        guard offset.isFinite, abs(offset) <= 24 * 60 else { return nil }
        return seconds - offset * 60
    }
}
