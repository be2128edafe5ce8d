#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MutewardenJSON

/// Reads a `journalctl -o json` export (one JSON object per line), as an assessor's offline copy
/// of the journal, streamed: the file is read in blocks and each line parsed on its own, so a
/// month of records needs the memory of one block.
///
/// A line that is not a JSON object, or is longer than ``maximumLineBytes``, or has no usable
/// timestamp, is counted as malformed and skipped; the report says how many there were.
public struct ExportReader: Sendable {
    public var identifier: String
    /// The longest line taken. journald's own default cap on a field is 64 KiB (`journalctl`
    /// writes larger values as null), so a longer line is not one of the daemon's records.
    public static let maximumLineBytes = 1 << 20

    public init(identifier: String = "mutewarden") {
        self.identifier = identifier
    }

    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(String, String)
        case cannotRead(String, String)

        public var description: String {
            switch self {
            case .cannotOpen(let path, let error): "cannot open \(path): \(error)"
            case .cannotRead(let path, let error): "cannot read \(path): \(error)"
            }
        }
    }

    /// Reads `path` (`-` for standard input) into `aggregator`, the records of its period only.
    public func read(path: String, into aggregator: inout ReportAggregator, period: ReportPeriod) throws(Failure) {
        let descriptor: Int32 = path == "-" ? 0 : Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(path, String(cString: strerror(errno))) }
        defer { if descriptor != 0 { Glibc.close(descriptor) } }
        var lines = LineSplitter(maximumLineBytes: Self.maximumLineBytes)
        var parser = ExportLineParser(identifier: identifier)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path, String(cString: strerror(errno)))
            }
            if count == 0 { break }
            buffer.withUnsafeBufferPointer { bytes in
                lines.feed(UnsafeBufferPointer(rebasing: bytes[0..<count])) { line in
                    parser.take(line, into: &aggregator, period: period)
                }
            }
        }
        lines.finish { line in parser.take(line, into: &aggregator, period: period) }
    }

    /// Reads `text` (an export held in memory: tests, the fuzz target) into `aggregator`.
    public func read(text: [UInt8], into aggregator: inout ReportAggregator, period: ReportPeriod) {
        var lines = LineSplitter(maximumLineBytes: Self.maximumLineBytes)
        var parser = ExportLineParser(identifier: identifier)
        text.withUnsafeBufferPointer { bytes in
            lines.feed(bytes) { line in parser.take(line, into: &aggregator, period: period) }
        }
        lines.finish { line in parser.take(line, into: &aggregator, period: period) }
    }
}

/// What one export line holds.
public enum ExportLine: Sendable, Equatable {
    case record(ReportRecord)
    /// Valid, but not one of the daemon's audit records.
    case other
    case malformed
}

/// Parses one export line; the record parser the fuzz target drives.
public struct ExportLineParser: Sendable {
    private var builder: RecordBuilder

    public init(identifier: String = "mutewarden") {
        builder = RecordBuilder(identifier: identifier)
    }

    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>) -> ExportLine {
        // An empty line (the file's last newline, a blank line between exports) is no record.
        if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) {
            return .other
        }
        guard line.count <= ExportReader.maximumLineBytes else { return .malformed }
        builder.reset()
        if !scanPlain(line) {
            // Anything the plain scan does not take (an escape, a byte above ASCII, a value that
            // is not a string) goes through the full JSON parser, which also judges what is
            // malformed.
            guard let value = try? JSONValue.parse(line, maximumDepth: 4), case .object(let members) = value else {
                return .malformed
            }
            builder.reset()
            for (name, value) in members {
                builder.add(name: name[...].utf8) { Self.text(of: value) }
            }
        }
        switch builder.finish() {
        case .success(let record): return .record(record)
        case .failure(.noTime): return .malformed
        case .failure: return .other
        }
    }

    /// The common line, read without building a JSON value: an object whose keys and values are
    /// all strings of printable ASCII, as journalctl writes the daemon's records. Values of the
    /// fields the report does not use are only stepped over (their escapes included); a line
    /// with anything else returns false, untouched by the builder but for what it took so far,
    /// which the caller resets.
    private mutating func scanPlain(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        let quote = UInt8(ascii: "\"")
        let backslash = UInt8(ascii: "\\")
        var index = 0
        let end = line.count
        func skipSpace() {
            while index < end, line[index] == 0x20 || line[index] == 0x09 || line[index] == 0x0D { index += 1 }
        }
        /// The bounds of a string's content starting at its opening quote, and whether it held an
        /// escape; nil for anything not a plain string.
        func string() -> (start: Int, end: Int, escaped: Bool)? {
            guard index < end, line[index] == quote else { return nil }
            index += 1
            let start = index
            var escaped = false
            while index < end {
                let byte = line[index]
                if byte == quote {
                    index += 1
                    return (start, index - 1, escaped)
                }
                if byte < 0x20 || byte >= 0x80 { return nil }
                if byte == backslash {
                    guard index + 1 < end else { return nil }
                    switch line[index + 1] {
                    case quote, backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                        UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 2
                    default: return nil
                    }
                    escaped = true
                    continue
                }
                index += 1
            }
            return nil
        }
        skipSpace()
        guard index < end, line[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipSpace()
        if index < end, line[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipSpace()
                guard let key = string(), !key.escaped else { return false }
                skipSpace()
                guard index < end, line[index] == UInt8(ascii: ":") else { return false }
                index += 1
                skipSpace()
                guard let value = string() else { return false }
                let name = UnsafeBufferPointer(rebasing: line[key.start..<key.end])
                if RecordBuilder.isUsed(name) {
                    guard !value.escaped else { return false }
                    builder.add(name: name) {
                        String(decoding: UnsafeBufferPointer(rebasing: line[value.start..<value.end]), as: UTF8.self)
                    }
                }
                skipSpace()
                guard index < end else { return false }
                if line[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard line[index] == UInt8(ascii: "}") else { return false }
                index += 1
                break
            }
        }
        skipSpace()
        return index == end
    }

    mutating func take(_ line: UnsafeBufferPointer<UInt8>?, into aggregator: inout ReportAggregator, period: ReportPeriod) {
        guard let line else {
            aggregator.source.malformed += 1
            return
        }
        switch parse(line) {
        case .record(let record):
            if period.contains(record.time) {
                aggregator.add(record)
            } else {
                aggregator.source.outsidePeriod += 1
            }
        case .other: aggregator.source.skipped += 1
        case .malformed: aggregator.source.malformed += 1
        }
    }

    /// A field's value as journalctl writes it: a string; an array of byte values for a value it
    /// cannot show as text; an array of those when the field repeats (the first is taken); null
    /// for a value over its size limit.
    static func text(of value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .number(let number): return number.isFinite && abs(number) < 1e18 ? String(Int64(number)) : ""
        case .array(let items):
            guard let first = items.first else { return "" }
            if case .number = first {
                var bytes: [UInt8] = []
                bytes.reserveCapacity(items.count)
                for item in items {
                    guard case .number(let number) = item, number >= 0, number <= 255 else { return "" }
                    bytes.append(UInt8(number))
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            return text(of: first)
        default: return ""
        }
    }
}

/// Cuts a byte stream into lines; a line longer than the maximum is reported as nil (once) and
/// its bytes are dropped up to its end.
struct LineSplitter {
    let maximumLineBytes: Int
    private var pending: [UInt8] = []
    private var overlong = false

    init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>?) -> Void) {
        var start = 0
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                append(UnsafeBufferPointer(rebasing: bytes[start...]))
                return
            }
            if pending.isEmpty, !overlong {
                body(UnsafeBufferPointer(rebasing: bytes[start..<newline]))
            } else {
                append(UnsafeBufferPointer(rebasing: bytes[start..<newline]))
                if overlong {
                    body(nil)
                } else {
                    pending.withUnsafeBufferPointer { body($0) }
                }
                pending.removeAll(keepingCapacity: true)
                overlong = false
            }
            start = newline + 1
        }
    }

    mutating func finish(_ body: (UnsafeBufferPointer<UInt8>?) -> Void) {
        if overlong {
            body(nil)
        } else if !pending.isEmpty {
            pending.withUnsafeBufferPointer { body($0) }
        }
        pending.removeAll()
        overlong = false
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard !overlong else { return }
        if pending.count + bytes.count > maximumLineBytes {
            overlong = true
            pending.removeAll(keepingCapacity: true)
            return
        }
        pending.append(contentsOf: bytes)
    }
}
