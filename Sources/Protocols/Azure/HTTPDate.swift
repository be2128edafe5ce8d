#if canImport(Glibc)
import Glibc
#endif

/// IMF-fixdate (RFC 9110 §5.6.7, the RFC 1123 form): `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Written by hand from `gmtime_r` rather than with `strftime` or a date formatter: the names must
/// be English whatever the process's locale, since `x-ms-date` is part of the signed string and
/// the platform recomputes it byte for byte.
public enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The date of a wall-clock instant (nanoseconds since the Unix epoch), to the second below.
    public static func format(wallClockNanoseconds: Int64) -> String {
        var seconds = time_t(wallClockNanoseconds / 1_000_000_000)
        if wallClockNanoseconds < 0, wallClockNanoseconds % 1_000_000_000 != 0 { seconds -= 1 }
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil, (0..<7).contains(parts.tm_wday), (0..<12).contains(parts.tm_mon) else {
            // Only a year beyond gmtime's range gets here; the epoch is a date the server refuses
            // rather than one that crashes the daemon.
            return "Thu, 01 Jan 1970 00:00:00 GMT"
        }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(Int(parts.tm_year) + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    private static func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
