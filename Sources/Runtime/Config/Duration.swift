/// Parses a duration written as a whole number followed by `ms`, `s`, `m` or `h` (`250ms`, `30s`,
/// `5m`, `1h`).
///
/// Anything else is refused rather than guessed at: a bare `10` could mean seconds or
/// milliseconds, and a wrong guess on a PCI deadline is a silent compliance gap.
public func parseDuration(_ text: String) -> Duration? {
    let units: [(suffix: String, seconds: Int64?, milliseconds: Int64?)] = [
        ("ms", nil, 1), ("s", 1, nil), ("m", 60, nil), ("h", 3600, nil),
    ]
    // `ms` is tried before `s`, which it ends with.
    for unit in units where text.hasSuffix(unit.suffix) {
        let digits = text.dropLast(unit.suffix.count)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int64(digits)
        else { return nil }
        if let scale = unit.seconds {
            let (seconds, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : .seconds(seconds)
        }
        return .milliseconds(value * (unit.milliseconds ?? 1))
    }
    return nil
}
