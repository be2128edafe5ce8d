/// Why a document is not JSON, with the byte offset, for a log line that helps find the fault.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSONValue {
    /// Parses one JSON document (RFC 8259) from UTF-8 bytes. `maximumDepth` bounds nesting, so a
    /// hostile document cannot exhaust the stack.
    public static func parse(_ bytes: some Collection<UInt8>, maximumDepth: Int = 64) throws(JSONError) -> JSONValue {
        // Arrays, slices of them and buffers are parsed where they lie; only other collections
        // are copied first.
        let direct = bytes.withContiguousStorageIfAvailable { pointer in
            Result { () throws(JSONError) in try parse(pointer, maximumDepth: maximumDepth) }
        }
        if let direct { return try direct.get() }
        return try parse(Array(bytes), maximumDepth: maximumDepth)
    }

    /// Parses from bytes that stay where they are while it runs, as a decoder's slice of a frame.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int = 64) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String, maximumDepth: Int = 64) throws(JSONError) -> JSONValue {
        var text = text
        // Native strings are contiguous; a bridged one is made so first.
        return try text.withUTF8 { pointer in Result { () throws(JSONError) in try parse(pointer, maximumDepth: maximumDepth) } }
            .get()
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    var position = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw fail("unexpected data after the document") }
        return value
    }

    func fail(_ message: String) -> JSONError { JSONError(message: message, offset: position) }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONError) -> JSONValue {
        guard position < bytes.count else { throw fail("unexpected end of document") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    mutating func parseLiteral(_ literal: StaticString, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("unexpected end of document") }
        for index in 0..<count where bytes[position + index] != literal.utf8Start[index] {
            throw fail("invalid literal")
        }
        position += count
        return value
    }

    mutating func enter() throws(JSONError) {
        depth += 1
        guard depth <= maximumDepth else { throw fail("nested deeper than \(maximumDepth) levels") }
    }

    private mutating func parseObject() throws(JSONError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        // Platform objects have from a few to a few dozen members: starting at eight saves the
        // first reallocations of every non-empty object.
        members.reserveCapacity(8)
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            position += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of document") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            position += 1
            return .object(members)
        }
    }

    private mutating func parseArray() throws(JSONError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var values: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(values)
        }
        while true {
            skipWhitespace()
            values.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of document") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            position += 1
            return .array(values)
        }
    }

    mutating func parseString() throws(JSONError) -> String {
        position += 1  // the opening quote
        let start = position
        // Fast path: no escapes, so the bytes between the quotes are the string.
        var ascii = true
        // A local index: the stored `position` would be written back at every byte.
        var index = position
        let count = bytes.count
        while true {
            index = Self.plainRun(in: bytes, from: index)
            guard index < count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                position = index + 1
                // ASCII is valid UTF-8 as it is: String(decoding:) takes it without the generic
                // validation, which was most of the parser's time on GWS messages
                // (docs/performance.md).
                if ascii { return String(decoding: slice, as: UTF8.self) }
                guard let text = String(validating: slice, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 {
                position = index
                throw fail("control character in a string")
            }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        position = index
        var utf8 = Array(UnsafeBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return text
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw fail("unexpected end of document") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw fail("unpaired surrogate") }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("unpaired surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid escape") }
                    utf8.append(contentsOf: String(Character(unicode)).utf8)
                default: throw fail("invalid escape")
                }
            default:
                if byte < 0x20 { throw fail("control character in a string") }
                utf8.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    /// Where the run of plain string bytes that starts at `index` ends: the first quote,
    /// backslash, control character or non-ASCII byte, or the end of the input if there is none
    /// in the words read (the last few bytes are left to the caller's byte loop). Eight bytes are
    /// checked at a time.
    @inline(__always)
    static func plainRun(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = ones &* 0x22
        let backslashes = ones &* 0x5C
        var index = start
        while index &+ 8 <= bytes.count {
            // Byte 0 of the input is the lowest byte of the word on every platform.
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            // Per byte, the high bit says: below 0x20 (`control`), a quote, a backslash, or 0x80
            // and above (`word` itself). A borrow can set it wrongly, but only in bytes above
            // one that really matches, so the lowest one set is the first byte to stop at.
            let control = (word &- ones &* 0x20) & ~word
            let quote = ((word ^ quotes) &- ones) & ~(word ^ quotes)
            let backslash = ((word ^ backslashes) &- ones) & ~(word ^ backslashes)
            let stops = (control | quote | backslash | word) & highs
            if stops != 0 { return index &+ stops.trailingZeroBitCount >> 3 }
            index &+= 8
        }
        return index
    }

    mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("unexpected end of document") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            position += 1
            value <<= 4
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value |= UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value |= UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value |= UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
        }
        return value
    }

    private mutating func parseNumber() throws(JSONError) -> JSONValue {
        let (start, integral) = try scanNumber()
        return .number(try Self.numberValue(UnsafeBufferPointer(rebasing: bytes[start..<position]), integral: integral, at: position))
    }

    /// Reads past one number's grammar: where it starts, and whether it is written without a
    /// fraction or an exponent.
    mutating func scanNumber() throws(JSONError) -> (start: Int, integral: Bool) {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count else { throw fail("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            guard (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[position]) else { throw fail("invalid number") }
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        }
        var integral = true
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            integral = false
            position += 1
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            guard position > digits else { throw fail("invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            integral = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let digits = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            guard position > digits else { throw fail("invalid number") }
        }
        return (start, integral)
    }

    /// Whether ``numberValue(_:integral:at:)`` needs no more than digits: such a number is
    /// always finite, so only the others must be converted to be validated.
    @inline(__always)
    static func isShortIntegral(_ count: Int, integral: Bool) -> Bool { integral && count <= 15 }

    /// The value of a number ``scanNumber()`` accepted; `end` is the offset its errors name.
    static func numberValue(_ slice: UnsafeBufferPointer<UInt8>, integral: Bool, at end: Int) throws(JSONError) -> Double {
        if isShortIntegral(slice.count, integral: integral) {
            // Common case (ids, codes, timestamps in ms): no string round trip.
            var value: Int64 = 0
            var negative = false
            for byte in slice {
                if byte == UInt8(ascii: "-") { negative = true } else { value = value * 10 + Int64(byte - UInt8(ascii: "0")) }
            }
            return Double(negative ? -value : value)
        }
        guard let value = Double(String(decoding: slice, as: UTF8.self)) else {
            throw JSONError(message: "invalid number", offset: end)
        }
        // 1e999 is JSON, but no Double: refused rather than carried on as an infinity that no
        // conversion downstream expects and no JSON writer can write back.
        guard value.isFinite else { throw JSONError(message: "number out of range", offset: end) }
        return value
    }
}
