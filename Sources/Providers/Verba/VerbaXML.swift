/// One element of a Verba answer: its name, attributes, text (the concatenated character data
/// directly inside it) and child elements.
public struct VerbaXMLElement: Sendable, Hashable {
    public var name: String
    public var attributes: [String: String]
    public var text: String
    public var children: [VerbaXMLElement]

    public init(name: String, attributes: [String: String] = [:], text: String = "", children: [VerbaXMLElement] = []) {
        self.name = name
        self.attributes = attributes
        self.text = text
        self.children = children
    }

    /// The first child named `name`, whatever its case: Verba's pages spell `VerbaApi` and
    /// `VerbaAPI`.
    public func child(_ name: String) -> VerbaXMLElement? {
        let lowered = name.lowercased()
        return children.first { $0.name.lowercased() == lowered }
    }

    /// An attribute by name, whatever its case.
    public func attribute(_ name: String) -> String? {
        if let exact = attributes[name] { return exact }
        let lowered = name.lowercased()
        return attributes.first { $0.key.lowercased() == lowered }?.value
    }
}

/// Why an answer is not the XML it should be. Says where, never what the answer held.
public struct VerbaXMLError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var offset: Int
    public var description: String { "not well-formed XML at byte \(offset): \(reason)" }
}

/// A small XML reader for the Verba HTTP API's answers (`<VerbaApi><Response code="0" …>…`).
///
/// Written here rather than taken from Foundation's `XMLParser`: the answers are a handful of
/// elements, the providers do not otherwise link Foundation, and a parser of our own can be
/// bounded in every dimension and fuzzed without libxml2 underneath. What it reads: elements,
/// attributes in single or double quotes, character data, the five predefined entities and
/// character references, CDATA sections; comments and processing instructions are skipped. A
/// document type declaration is refused, so that no entity is ever expanded.
public enum VerbaXML {
    /// Answers are a few hundred bytes; the HTTP client refuses larger bodies before they get here.
    public static let maximumBytes = 64 << 10
    public static let maximumDepth = 16
    public static let maximumElements = 1024
    static let maximumNameBytes = 256

    public static func parse(_ bytes: [UInt8]) throws(VerbaXMLError) -> VerbaXMLElement {
        guard bytes.count <= maximumBytes else {
            throw VerbaXMLError(reason: "the answer is longer than \(maximumBytes) bytes", offset: maximumBytes)
        }
        var reader = Reader(bytes: bytes)
        return try reader.document()
    }

    private struct Frame {
        var name: [UInt8]
        var attributes: [String: String]
        var text: [UInt8] = []
        var children: [VerbaXMLElement] = []
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var elements = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // A UTF-8 byte order mark.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        func fail(_ reason: String) -> VerbaXMLError { VerbaXMLError(reason: reason, offset: index) }

        func at(_ literal: String) -> Bool {
            var position = index
            for byte in literal.utf8 {
                guard position < bytes.count, bytes[position] == byte else { return false }
                position += 1
            }
            return true
        }

        static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

        mutating func skipSpace() {
            while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        }

        /// Moves past the next `terminator`, or fails.
        mutating func skip(past terminator: String, what: String) throws(VerbaXMLError) {
            let pattern = Array(terminator.utf8)
            while index + pattern.count <= bytes.count {
                if bytes[index] == pattern[0], Array(bytes[index..<index + pattern.count]) == pattern {
                    index += pattern.count
                    return
                }
                index += 1
            }
            index = bytes.count
            throw fail("unterminated \(what)")
        }

        /// Comments, processing instructions and white space between elements.
        mutating func skipMisc() throws(VerbaXMLError) {
            while true {
                skipSpace()
                if at("<?") {
                    try skip(past: "?>", what: "processing instruction")
                } else if at("<!--") {
                    try skip(past: "-->", what: "comment")
                } else if at("<!") {
                    throw fail("a document type declaration is not accepted")
                } else {
                    return
                }
            }
        }

        mutating func document() throws(VerbaXMLError) -> VerbaXMLElement {
            try skipMisc()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else { throw fail("no root element") }
            let root = try element()
            try skipMisc()
            guard index == bytes.count else { throw fail("content after the root element") }
            return root
        }

        mutating func name() throws(VerbaXMLError) -> [UInt8] {
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if Self.isSpace(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "=")
                    || byte == UInt8(ascii: "<") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
                {
                    break
                }
                index += 1
            }
            guard index > start else { throw fail("a name is missing") }
            guard index - start <= maximumNameBytes else { throw fail("a name is longer than \(maximumNameBytes) bytes") }
            return Array(bytes[start..<index])
        }

        /// Reads `&…;` at `index` (which is at the ampersand) into `output`.
        mutating func reference(into output: inout [UInt8]) throws(VerbaXMLError) {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ";"), index - start < 12 { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else { throw fail("an unterminated entity reference") }
            let entity = bytes[start..<index]
            index += 1
            switch String(decoding: entity, as: UTF8.self) {
            case "lt": output.append(UInt8(ascii: "<"))
            case "gt": output.append(UInt8(ascii: ">"))
            case "amp": output.append(UInt8(ascii: "&"))
            case "quot": output.append(UInt8(ascii: "\""))
            case "apos": output.append(UInt8(ascii: "'"))
            case let text where text.hasPrefix("#x") || text.hasPrefix("#X"):
                try append(scalar: UInt32(text.dropFirst(2), radix: 16), into: &output)
            case let text where text.hasPrefix("#"):
                try append(scalar: UInt32(text.dropFirst(), radix: 10), into: &output)
            default:
                throw fail("an unknown entity")
            }
        }

        func append(scalar value: UInt32?, into output: inout [UInt8]) throws(VerbaXMLError) {
            guard let value, value != 0, let scalar = Unicode.Scalar(value) else { throw fail("a character reference out of range") }
            output.append(contentsOf: Array(String(Character(scalar)).utf8))
        }

        mutating func attributes() throws(VerbaXMLError) -> [String: String] {
            var attributes: [String: String] = [:]
            while true {
                skipSpace()
                guard index < bytes.count else { throw fail("an unterminated start tag") }
                let byte = bytes[index]
                if byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/") { return attributes }
                let key = try name()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail("an attribute without a value") }
                index += 1
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                    throw fail("an attribute value without quotes")
                }
                let quote = bytes[index]
                index += 1
                var value: [UInt8] = []
                while true {
                    guard index < bytes.count else { throw fail("an unterminated attribute value") }
                    let next = bytes[index]
                    if next == quote {
                        index += 1
                        break
                    }
                    if next == UInt8(ascii: "<") { throw fail("'<' in an attribute value") }
                    if next == UInt8(ascii: "&") {
                        try reference(into: &value)
                    } else {
                        value.append(next)
                        index += 1
                    }
                }
                let keyText = String(decoding: key, as: UTF8.self)
                guard attributes[keyText] == nil else { throw fail("a repeated attribute") }
                attributes[keyText] = String(decoding: value, as: UTF8.self)
            }
        }

        /// One element at `index` (at its `<`), with its content. Iterative: an open element is
        /// a frame on a stack bounded by `maximumDepth`.
        mutating func element() throws(VerbaXMLError) -> VerbaXMLElement {
            var stack: [Frame] = []
            while true {
                // At a start tag.
                index += 1
                let tagName = try name()
                let tagAttributes = try attributes()
                elements += 1
                guard elements <= maximumElements else { throw fail("more than \(maximumElements) elements") }
                if at("/>") {
                    index += 2
                    let empty = VerbaXMLElement(name: String(decoding: tagName, as: UTF8.self), attributes: tagAttributes)
                    guard !stack.isEmpty else { return empty }
                    stack[stack.count - 1].children.append(empty)
                } else {
                    index += 1  // '>'
                    guard stack.count < maximumDepth else { throw fail("elements nested deeper than \(maximumDepth)") }
                    stack.append(Frame(name: tagName, attributes: tagAttributes))
                }
                // Content, until the next start tag or the end of the outermost element.
                while true {
                    guard index < bytes.count else { throw fail("an unterminated element") }
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "&") {
                        try reference(into: &stack[stack.count - 1].text)
                    } else if byte != UInt8(ascii: "<") {
                        stack[stack.count - 1].text.append(byte)
                        index += 1
                    } else if at("<![CDATA[") {
                        index += 9
                        let start = index
                        try skip(past: "]]>", what: "CDATA section")
                        stack[stack.count - 1].text.append(contentsOf: bytes[start..<index - 3])
                    } else if at("<!--") {
                        try skip(past: "-->", what: "comment")
                    } else if at("<?") {
                        try skip(past: "?>", what: "processing instruction")
                    } else if at("<!") {
                        throw fail("a declaration inside an element")
                    } else if at("</") {
                        index += 2
                        let closing = try name()
                        skipSpace()
                        guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("an unterminated end tag") }
                        index += 1
                        let frame = stack.removeLast()
                        guard closing == frame.name else { throw fail("an end tag that does not match its start tag") }
                        let done = VerbaXMLElement(
                            name: String(decoding: frame.name, as: UTF8.self), attributes: frame.attributes,
                            text: String(decoding: frame.text, as: UTF8.self), children: frame.children)
                        guard !stack.isEmpty else { return done }
                        stack[stack.count - 1].children.append(done)
                    } else {
                        break  // a start tag: back to the outer loop
                    }
                }
            }
        }
    }
}
