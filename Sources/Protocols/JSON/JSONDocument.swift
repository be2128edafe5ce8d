/// A JSON document parsed but not built: one validating pass over the bytes records where every
/// value lies (a tape, as simdjson keeps one), and values are read from the bytes only when asked
/// for. A platform message of a few hundred values of which a reader uses a dozen then costs one
/// scan and two allocations (the bytes and the tape) instead of a tree of strings, arrays and
/// member lists that is built, read once and released (docs/performance.md).
///
/// It accepts exactly the documents ``JSONValue/parse(_:maximumDepth:)-(some Collection<UInt8>, Int)`` accepts, with the same
/// errors, and ``JSONNode/value`` is the value that parser builds: both run the same grammar
/// (`JSONParser`'s string, number and literal readers), which `fuzz-json-document` checks.
///
/// Immutable once parsed, so a document is shared between its nodes and across threads.
public final class JSONDocument: Sendable {
    /// One value on the tape, in document order: an object's members are its key (a string
    /// entry) followed by its value.
    struct Entry: Sendable {
        enum Kind: UInt8, Sendable {
            case null, `false`, `true`, number, string, array, object
        }
        var kind: Kind
        /// Strings: ``escaped`` or ``nonASCII``. Numbers: ``integral``.
        var flags: UInt8
        /// Strings: the offset of the first byte after the opening quote; numbers: of the first
        /// byte. Containers: how many values (members for an object) they hold.
        var start: UInt32
        /// Strings: the offset of the closing quote; numbers: past the last digit. Containers:
        /// the tape index after their last value.
        var end: UInt32

        static let escaped: UInt8 = 1
        static let nonASCII: UInt8 = 2
        static let integral: UInt8 = 1
    }

    let bytes: [UInt8]
    let tape: [Entry]

    /// Offsets and counts are kept in 32 bits; larger documents are refused before any is made.
    public static let maximumByteCount = Int(UInt32.max)

    private init(bytes: [UInt8], tape: [Entry]) {
        self.bytes = bytes
        self.tape = tape
    }

    /// Validates one JSON document (RFC 8259) and indexes its values. The bytes are copied, so
    /// the document outlives them. `maximumDepth` bounds nesting as the tree parser's does.
    public static func parse(_ bytes: some Collection<UInt8>, maximumDepth: Int = 64) throws(JSONError) -> JSONDocument {
        try parse(owning: Array(bytes), maximumDepth: maximumDepth)
    }

    private static func parse(owning owned: [UInt8], maximumDepth: Int) throws(JSONError) -> JSONDocument {
        guard owned.count <= maximumByteCount else {
            throw JSONError(message: "a document larger than \(maximumByteCount) bytes", offset: 0)
        }
        let tape = try owned.withUnsafeBufferPointer { pointer in
            Result { () throws(JSONError) in
                var parser = JSONParser(bytes: pointer, maximumDepth: maximumDepth)
                var tape = TapeWriter(byteCount: pointer.count)
                defer { tape.deallocate() }
                try parser.parseTapeDocument(into: &tape)
                return tape.entries
            }
        }.get()
        return JSONDocument(bytes: owned, tape: tape)
    }

    /// From bytes that stay where they are while it runs, as a decoder's slice of a frame.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maximumDepth: Int = 64) throws(JSONError) -> JSONDocument {
        try parse(owning: Array(bytes), maximumDepth: maximumDepth)
    }

    public static func parse(_ text: String, maximumDepth: Int = 64) throws(JSONError) -> JSONDocument {
        try parse(text.utf8, maximumDepth: maximumDepth)
    }

    /// A document of an already built value, for callers that hold a tree (tests, fixtures):
    /// its compact text, parsed.
    public convenience init(_ value: JSONValue) {
        let text = value.serialized
        // The writer writes JSON this parser reads back (fuzz-json checks the round trip); the
        // fallback only keeps a broken writer from trapping.
        let document = (try? JSONDocument.parse(text, maximumDepth: 512)) ?? JSONDocument.null
        self.init(bytes: document.bytes, tape: document.tape)
    }

    /// `null`, for an absent value.
    public static let null = JSONDocument(bytes: Array("null".utf8), tape: [Entry(kind: .null, flags: 0, start: 0, end: 4)])

    /// The document's value.
    public var root: JSONNode { JSONNode(document: self, index: 0) }

    /// The tape index after the value at `index` and everything inside it.
    @inline(__always)
    func next(after index: Int) -> Int {
        let entry = tape[index]
        return entry.kind == .array || entry.kind == .object ? Int(entry.end) : index &+ 1
    }

    /// The string at `index` (which must be a string entry), decoded.
    func string(at index: Int) -> String {
        let entry = tape[index]
        let start = Int(entry.start)
        let end = Int(entry.end)
        return bytes.withUnsafeBufferPointer { pointer in
            if entry.flags & Entry.escaped == 0 {
                // Validated UTF-8 (or ASCII) with nothing to unescape: the bytes are the string.
                return String(decoding: UnsafeBufferPointer(rebasing: pointer[start..<end]), as: UTF8.self)
            }
            var parser = JSONParser(bytes: pointer, maximumDepth: 0)
            parser.position = start - 1
            // Parsed once already when the document was: it cannot fail now.
            return (try? parser.parseString()) ?? ""
        }
    }

    /// Whether the string at `index` equals `text`, as `String`'s `==` says, without making a
    /// `String` when both are plain ASCII: then canonical equivalence is byte equality. Any
    /// other pair is compared as strings (U+212A KELVIN SIGN equals "K").
    func string(at index: Int, equals text: String) -> Bool {
        var copy = text
        return copy.withUTF8 { utf8 in
            if utf8.allSatisfy({ $0 < 0x80 }), tape[index].flags == 0 {
                return bytes.withUnsafeBufferPointer { bytes in Self.plain(tape[index], in: bytes, equals: utf8) }
            }
            return string(at: index) == text
        }
    }

    /// Whether a plain (unescaped) string entry's bytes are `other`'s. Entries' offsets lie
    /// within the bytes they were parsed from, which `bytes` must be.
    @inline(__always)
    private static func plain(_ entry: Entry, in bytes: UnsafeBufferPointer<UInt8>, equals other: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(entry.start)
        let count = other.count
        guard Int(entry.end) &- start == count else { return false }
        var offset = 0
        while offset < count {
            guard bytes[start &+ offset] == other[offset] else { return false }
            offset &+= 1
        }
        return true
    }

    /// The tape index of the value of the first member named `key` of the object at `object`;
    /// nil if there is none. One pass over the members, each name compared in place when both
    /// it and `key` are plain ASCII.
    func member(of object: Int, named key: String) -> Int? {
        var copy = key
        return copy.withUTF8 { utf8 in
            let isASCII = utf8.allSatisfy { $0 < 0x80 }
            return tape.withUnsafeBufferPointer { tape in
                bytes.withUnsafeBufferPointer { bytes in
                    let end = Int(tape[object].end)
                    var member = object &+ 1
                    // Members are name/value pairs up to the object's end, as the parser wrote them.
                    while member &+ 1 < end {
                        let name = tape[member]
                        if isASCII && name.flags == 0 {
                            if Self.plain(name, in: bytes, equals: utf8) { return member &+ 1 }
                        } else if string(at: member) == key {
                            return member &+ 1
                        }
                        let value = tape[member &+ 1]
                        member = value.kind == .array || value.kind == .object ? Int(value.end) : member &+ 2
                    }
                    return nil
                }
            }
        }
    }

    /// The number at `index` (a number entry).
    func number(at index: Int) -> Double {
        let entry = tape[index]
        return bytes.withUnsafeBufferPointer { pointer in
            let slice = UnsafeBufferPointer(rebasing: pointer[Int(entry.start)..<Int(entry.end)])
            // Converted once already when the document was parsed: it cannot fail now.
            return (try? JSONParser.numberValue(slice, integral: entry.flags & Entry.integral != 0, at: 0)) ?? 0
        }
    }
}

// MARK: - The validating pass

/// The tape while it is written: appends without the uniqueness and capacity checks of an
/// `Array`'s, into storage that grows by doubling. Every value starts at a byte of its own (a
/// bracket, a quote, a digit or a letter), so a document, or the prefix of one that is refused,
/// never has more entries than bytes: that is the bound growth stops at. (A valid document has
/// at most half as many: every value but the root is separated from the one before by a comma or
/// a colon, and a container takes two bytes.) Every write is checked against the capacity all
/// the same; one past the bound fails the parse instead of writing.
struct TapeWriter {
    private var base: UnsafeMutablePointer<JSONDocument.Entry>
    private var capacity: Int
    private let limit: Int
    private(set) var count = 0

    init(byteCount: Int) {
        limit = max(byteCount, 1)
        // Room for the values of a typical platform message, whose values are short: mostly one
        // allocation, and growth past it is by doubling.
        capacity = min(limit, byteCount / 8 + 16)
        base = .allocate(capacity: capacity)
    }

    @inline(__always)
    mutating func append(_ entry: JSONDocument.Entry) -> Bool {
        if count == capacity {
            guard capacity < limit else { return false }
            let grown = min(limit, capacity * 2)
            let storage = UnsafeMutablePointer<JSONDocument.Entry>.allocate(capacity: grown)
            storage.moveInitialize(from: base, count: count)
            base.deallocate()
            base = storage
            capacity = grown
        }
        (base + count).initialize(to: entry)
        count += 1
        return true
    }

    /// Sets the value count and the end of the container entry at `index` once its values are written.
    @inline(__always)
    mutating func close(_ index: Int, count values: UInt32, end: UInt32) {
        guard index >= 0, index < count else { return }
        base[index].start = values
        base[index].end = end
    }

    var entries: [JSONDocument.Entry] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func deallocate() { base.deallocate() }
}

extension JSONParser {
    mutating func parseTapeDocument(into tape: inout TapeWriter) throws(JSONError) {
        skipWhitespace()
        try parseTapeValue(into: &tape)
        skipWhitespace()
        guard position == bytes.count else { throw fail("unexpected data after the document") }
    }

    /// An offset or count as stored; `JSONDocument.parse` refuses documents whose offsets would
    /// not fit, and there are never more values than bytes.
    @inline(__always)
    private static func stored(_ value: Int) -> UInt32 { UInt32(truncatingIfNeeded: value) }

    @inline(__always)
    private func push(_ entry: JSONDocument.Entry, to tape: inout TapeWriter) throws(JSONError) {
        guard tape.append(entry) else { throw fail("more values than the document has bytes for") }
    }

    private mutating func parseTapeValue(into tape: inout TapeWriter) throws(JSONError) {
        guard position < bytes.count else { throw fail("unexpected end of document") }
        switch bytes[position] {
        case UInt8(ascii: "{"): try parseTapeObject(into: &tape)
        case UInt8(ascii: "["): try parseTapeArray(into: &tape)
        case UInt8(ascii: "\""): try parseTapeString(into: &tape)
        case UInt8(ascii: "t"):
            _ = try parseLiteral("true", .null)
            try push(.init(kind: .true, flags: 0, start: 0, end: 0), to: &tape)
        case UInt8(ascii: "f"):
            _ = try parseLiteral("false", .null)
            try push(.init(kind: .false, flags: 0, start: 0, end: 0), to: &tape)
        case UInt8(ascii: "n"):
            _ = try parseLiteral("null", .null)
            try push(.init(kind: .null, flags: 0, start: 0, end: 0), to: &tape)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let (start, integral) = try scanNumber()
            if !Self.isShortIntegral(position - start, integral: integral) {
                // Only a long or non-integral number can be out of range: converted now so that
                // the same documents are refused as by the tree parser.
                _ = try Self.numberValue(UnsafeBufferPointer(rebasing: bytes[start..<position]), integral: integral, at: position)
            }
            try push(.init(kind: .number, flags: integral ? 1 : 0, start: Self.stored(start), end: Self.stored(position)), to: &tape)
        default: throw fail("unexpected character")
        }
    }

    private mutating func parseTapeObject(into tape: inout TapeWriter) throws(JSONError) {
        try enter()
        defer { depth -= 1 }
        position += 1
        let at = tape.count
        try push(.init(kind: .object, flags: 0, start: 0, end: 0), to: &tape)
        var count = 0
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            tape.close(at, count: 0, end: Self.stored(tape.count))
            return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            try parseTapeString(into: &tape)
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            position += 1
            skipWhitespace()
            try parseTapeValue(into: &tape)
            count += 1
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of document") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            position += 1
            tape.close(at, count: Self.stored(count), end: Self.stored(tape.count))
            return
        }
    }

    private mutating func parseTapeArray(into tape: inout TapeWriter) throws(JSONError) {
        try enter()
        defer { depth -= 1 }
        position += 1
        let at = tape.count
        try push(.init(kind: .array, flags: 0, start: 0, end: 0), to: &tape)
        var count = 0
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            tape.close(at, count: 0, end: Self.stored(tape.count))
            return
        }
        while true {
            skipWhitespace()
            try parseTapeValue(into: &tape)
            count += 1
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end of document") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            guard bytes[position] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            position += 1
            tape.close(at, count: Self.stored(count), end: Self.stored(tape.count))
            return
        }
    }

    /// A string, validated as `parseString()` validates it; made into a `String` only when it
    /// holds escapes (to check them, which is rare in platform messages).
    private mutating func parseTapeString(into tape: inout TapeWriter) throws(JSONError) {
        let quote = position
        let start = position + 1
        var index = start
        var ascii = true
        let count = bytes.count
        while true {
            index = Self.plainRun(in: bytes, from: index)
            guard index < count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                position = index + 1
                if !ascii {
                    guard String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) != nil else {
                        throw fail("invalid UTF-8 in a string")
                    }
                }
                try push(
                    .init(
                        kind: .string, flags: ascii ? 0 : JSONDocument.Entry.nonASCII, start: Self.stored(start),
                        end: Self.stored(index)), to: &tape)
                return
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 {
                position = index
                throw fail("control character in a string")
            }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        // An escape, or no closing quote: the tree parser's reader decides, with its errors.
        position = quote
        _ = try parseString()
        try push(
            .init(kind: .string, flags: JSONDocument.Entry.escaped, start: Self.stored(start), end: Self.stored(position - 1)),
            to: &tape)
    }
}

// MARK: - Reading

/// One value of a ``JSONDocument``: read as a ``JSONValue`` is (`node["key"]`, `.string`,
/// `.int`…), each read decoding only what it returns.
public struct JSONNode: Sendable {
    public let document: JSONDocument
    let index: Int

    init(document: JSONDocument, index: Int) {
        self.document = document
        self.index = index
    }

    private var entry: JSONDocument.Entry { document.tape[index] }

    public var isNull: Bool { entry.kind == .null }
    public var isObject: Bool { entry.kind == .object }
    public var isArray: Bool { entry.kind == .array }
    public var isString: Bool { entry.kind == .string }

    /// The member named `key` of an object (the first, if the name repeats); nil for anything
    /// else or a missing key.
    public subscript(_ key: String) -> JSONNode? {
        guard entry.kind == .object, let member = document.member(of: index, named: key) else { return nil }
        return JSONNode(document: document, index: member)
    }

    public var string: String? { entry.kind == .string ? document.string(at: index) : nil }

    /// Whether this is a string equal to `text`, without making a `String` of it when it can.
    public func isString(_ text: String) -> Bool { entry.kind == .string && document.string(at: index, equals: text) }

    public var bool: Bool? {
        switch entry.kind {
        case .true: true
        case .false: false
        default: nil
        }
    }

    public var number: Double? { entry.kind == .number ? document.number(at: index) : nil }

    /// As ``JSONValue/int``: a whole number that a double holds exactly.
    public var int: Int? {
        guard let value = number, value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    /// As ``JSONValue/scalarText``.
    public var scalarText: String? {
        switch entry.kind {
        case .string: document.string(at: index)
        case .number: JSONValue.number(document.number(at: index)).scalarText
        case .true: "true"
        case .false: "false"
        default: nil
        }
    }

    /// How many values an array holds, or members an object; nil for a scalar.
    public var count: Int? {
        let entry = entry
        return entry.kind == .array || entry.kind == .object ? Int(entry.start) : nil
    }

    /// The array's value at `position` (counted from 0); nil past its end or for anything else.
    public func element(at position: Int) -> JSONNode? {
        let entry = entry
        guard entry.kind == .array, position >= 0, position < Int(entry.start) else { return nil }
        var element = index + 1
        for _ in 0..<position { element = document.next(after: element) }
        return JSONNode(document: document, index: element)
    }

    /// An array's values, in order; nil for anything else.
    public var elements: Elements? { entry.kind == .array ? Elements(node: self) : nil }

    /// An object's members, in order; nil for anything else.
    public var members: Members? { entry.kind == .object ? Members(node: self) : nil }

    public struct Elements: Sequence, Sendable {
        let node: JSONNode

        public struct Iterator: IteratorProtocol {
            let document: JSONDocument
            var index: Int
            let end: Int

            public mutating func next() -> JSONNode? {
                guard index < end else { return nil }
                defer { index = document.next(after: index) }
                return JSONNode(document: document, index: index)
            }
        }

        public func makeIterator() -> Iterator {
            Iterator(document: node.document, index: node.index + 1, end: Int(node.document.tape[node.index].end))
        }

        public var underestimatedCount: Int { node.count ?? 0 }
    }

    public struct Members: Sequence, Sendable {
        let node: JSONNode

        public struct Iterator: IteratorProtocol {
            let document: JSONDocument
            var index: Int
            let end: Int

            public mutating func next() -> (String, JSONNode)? {
                guard index < end else { return nil }
                defer { index = document.next(after: index + 1) }
                return (document.string(at: index), JSONNode(document: document, index: index + 1))
            }
        }

        public func makeIterator() -> Iterator {
            Iterator(document: node.document, index: node.index + 1, end: Int(node.document.tape[node.index].end))
        }

        public var underestimatedCount: Int { node.count ?? 0 }
    }

    /// The value, built: what ``JSONValue/parse(_:maximumDepth:)-(some Collection<UInt8>, Int)`` makes of the same bytes.
    public var value: JSONValue {
        switch entry.kind {
        case .null: .null
        case .false: .bool(false)
        case .true: .bool(true)
        case .number: .number(document.number(at: index))
        case .string: .string(document.string(at: index))
        case .array: .array(elements.map { $0.map(\.value) } ?? [])
        case .object: .object(members.map { $0.map { ($0.0, $0.1.value) } } ?? [])
        }
    }
}

// MARK: - Either form

/// What a reader of platform messages needs of a JSON value, so that one mapping reads a built
/// ``JSONValue`` (tests, fixtures) and a lazily read ``JSONNode`` (the feed) alike.
public protocol JSONReadable: Sendable {
    associatedtype Elements: Sequence where Elements.Element == Self
    associatedtype Members: Sequence where Members.Element == (String, Self)

    subscript(_ key: String) -> Self? { get }
    var isNull: Bool { get }
    var isObject: Bool { get }
    var isArray: Bool { get }
    var string: String? { get }
    func isString(_ text: String) -> Bool
    var bool: Bool? { get }
    var number: Double? { get }
    var int: Int? { get }
    var scalarText: String? { get }
    var elements: Elements? { get }
    var members: Members? { get }
    /// The value, built.
    var value: JSONValue { get }
}

extension JSONNode: JSONReadable {}

extension JSONValue: JSONReadable {
    public var isNull: Bool { self == .null }
    public var isObject: Bool { if case .object = self { true } else { false } }
    public var isArray: Bool { if case .array = self { true } else { false } }
    public func isString(_ text: String) -> Bool { if case .string(let value) = self { value == text } else { false } }
    public var elements: [JSONValue]? { array }
    public var members: [(String, JSONValue)]? { object }
    public var value: JSONValue { self }
}
