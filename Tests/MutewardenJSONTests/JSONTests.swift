import Foundation
import Testing

@testable import MutewardenJSON

@Test(arguments: [
    ("null", JSONValue.null),
    ("true", .bool(true)),
    (" false ", .bool(false)),
    ("0", .number(0)),
    ("-12", .number(-12)),
    ("3.25", .number(3.25)),
    ("1e3", .number(1000)),
    ("-2.5E-1", .number(-0.25)),
    ("\"plain\"", .string("plain")),
    ("\"a\\\"b\\\\c\\/d\\n\"", .string("a\"b\\c/d\n")),
    ("\"\\u00e9t\\u00E9\"", .string("été")),
    ("\"\\ud83d\\ude00\"", .string("😀")),
    ("\"déjà vu\"", .string("déjà vu")),
    ("[]", .array([])),
    ("[1, [2], {}]", .array([.number(1), .array([.number(2)]), .object([])])),
    ("{\"b\":1,\"a\":{\"c\":null}}", .object([("b", .number(1)), ("a", .object([("c", .null)]))])),
])
func parsesValidDocuments(_ text: String, _ expected: JSONValue) throws {
    #expect(try JSONValue.parse(text) == expected)
}

@Test(arguments: [
    ("", "unexpected end of document"),
    ("{", "expected a member name"),
    ("{\"a\" 1}", "expected ':'"),
    ("{\"a\":1,}", "expected a member name"),
    ("[1 2]", "expected ',' or ']'"),
    ("[1,]", "unexpected character"),
    ("01", "unexpected data after the document"),
    ("1.", "invalid number"),
    ("-", "invalid number"),
    ("tru", "unexpected end of document"),
    ("nul1", "invalid literal"),
    ("\"abc", "unterminated string"),
    ("\"a\u{01}b\"", "control character in a string"),
    ("\"\\x\"", "invalid escape"),
    ("\"\\u12zz\"", "invalid \\u escape"),
    ("\"\\ud800\"", "unpaired surrogate"),
    ("{} {}", "unexpected data after the document"),
])
func refusesInvalidDocumentsWithTheReason(_ text: String, _ reason: String) {
    #expect {
        _ = try JSONValue.parse(text)
    } throws: { error in
        "\(error)".contains(reason)
    }
}

@Test func refusesInvalidUTF8() {
    #expect(throws: JSONError.self) { _ = try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
}

@Test func boundsTheNesting() {
    let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
    #expect {
        _ = try JSONValue.parse(deep)
    } throws: { error in
        "\(error)".contains("nested deeper than 64 levels")
    }
    #expect((try? JSONValue.parse(deep, maximumDepth: 200)) != nil)
}

@Test(arguments: [
    "{\"channel\":\"/meta/connect\",\"id\":\"7\",\"advice\":{\"timeout\":30000,\"reconnect\":\"retry\"},\"successful\":true}",
    "[{\"a\":[1,2.5,-3,true,false,null,\"x\\ny\\\"z\\u0001\"]}]",
])
func writesBackWhatItRead(_ text: String) throws {
    let value = try JSONValue.parse(text)
    #expect(try JSONValue.parse(value.serialized) == value)
}

@Test func accessorsAndScalarText() throws {
    let value = try JSONValue.parse("{\"s\":\"x\",\"n\":42,\"f\":1.5,\"b\":true,\"o\":{\"k\":1}}")
    #expect(value["s"]?.string == "x")
    #expect(value["n"]?.int == 42)
    #expect(value["f"]?.int == nil)
    #expect(value["n"]?.scalarText == "42")
    #expect(value["f"]?.scalarText == "1.5")
    #expect(value["b"]?.scalarText == "true")
    #expect(value["o"]?["k"]?.int == 1)
    #expect(value["missing"] == nil)
    #expect(value["o"]?.scalarText == nil)
}

@Test func sizeChecksFollowTheWrittenLengthAndStopEarly() throws {
    let small = try JSONValue.parse(Array(#"{"call":{"id":"C1","userData":{"PCI_STAGE":"CARD"}}}"#.utf8))
    #expect(!small.isLarger(than: 100))
    #expect(small.isLarger(than: 20))
    let padded = JSONValue.object([("call", small), ("padding", .string(String(repeating: "x", count: 300_000)))])
    #expect(padded.isLarger(than: 256 << 10))
    #expect(!padded.isLarger(than: 400_000))
    let many = JSONValue.array(Array(repeating: .string("abcdef"), count: 100_000))
    #expect(many.isLarger(than: 1000))
}

/// Found by the fuzz target (Fuzz/Regressions/json): a number beyond Double's range parsed to an
/// infinity, which the writer then wrote as `inf`, not JSON.
@Test(arguments: ["1e999", "-1e999", "[1E400]", #"{"timeout": 1e309}"#])
func aNumberBeyondDoubleIsRefused(_ text: String) {
    #expect(throws: JSONError.self) { try JSONValue.parse(text) }
}

/// Every input the fuzz targets ever crashed on, replayed through the parser and the writer.
@Test func theFuzzRegressionsParseOrFailCleanly() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Regressions/json")
    let files = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
    #expect(!files.isEmpty)
    for file in files {
        let bytes = try Array(Data(contentsOf: file))
        guard let value = try? JSONValue.parse(bytes) else { continue }
        #expect(try JSONValue.parse(value.serialized) == value, "\(file.lastPathComponent)")
    }
}

/// The string scan reads eight bytes at a time: every byte that ends the plain run (a quote, a
/// backslash, a control character, a non-ASCII byte) must be found at every offset in a word and
/// at the end of the input, and a document that is not a whole number of words long still ends.
@Test func theWordAtATimeStringScanStopsAtEveryOffset() throws {
    for length in 0..<24 {
        for offset in 0...length {
            let head = String(repeating: "a", count: offset)
            let tail = String(repeating: "b", count: length - offset)
            #expect(try JSONValue.parse("\"\(head)\\\"\(tail)\"") == .string(head + "\"" + tail))
            #expect(try JSONValue.parse("\"\(head)\\\\\(tail)\"") == .string(head + "\\" + tail))
            #expect(try JSONValue.parse("\"\(head)é\(tail)\"") == .string(head + "é" + tail))
            #expect(try JSONValue.parse("[\"\(head)\",\"\(tail)\"]") == .array([.string(head), .string(tail)]))
            #expect(throws: JSONError.self) { try JSONValue.parse("\"\(head)\u{1F}\(tail)\"") }
            #expect(throws: JSONError.self) { try JSONValue.parse("\"\(head)\u{7F}\(tail)") }
            var invalid = Array("\"\(head)\(tail)\"".utf8)
            invalid.insert(0xFF, at: 1 + offset)
            #expect(throws: JSONError.self) { try JSONValue.parse(invalid) }
        }
    }
    // 0x7F and the bytes around the ones looked for are plain.
    let neighbours = "\u{7F}!#[]^` ~"
    #expect(try JSONValue.parse("\"\(neighbours)\(neighbours)\"") == .string(neighbours + neighbours))
    // A control character is reported where it is.
    #expect(throws: JSONError(message: "control character in a string", offset: 11)) {
        try JSONValue.parse("\"0123456789\n\"")
    }
}

@Test func parsesFromAnyCollectionOfBytes() throws {
    let text = #"{"ivrid":"1700000000000000000-0","calls":[1,2]}"#
    let expected = try JSONValue.parse(text)
    #expect(try JSONValue.parse(Array(text.utf8)) == expected)
    #expect(try JSONValue.parse(Array(("xx" + text).utf8).dropFirst(2)) == expected)
    #expect(try JSONValue.parse(text.utf8) == expected)
    #expect(try JSONValue.parse(Data(text.utf8)) == expected)
}
