import Foundation
import Testing

@testable import MutewardenJSON

/// Documents of every shape the tree parser's tests use, and a Voicenter-like one.
private let documents = [
    "null", "true", " false ", "0", "-12", "3.25", "1e3", "-2.5E-1", "-0", "123456789012345", "1234567890123456789",
    "\"plain\"", "\"a\\\"b\\\\c\\/d\\n\"", "\"\\u00e9t\\u00E9\"", "\"\\ud83d\\ude00\"", "\"déjà vu\"", "[]", "{}",
    "[1, [2], {}]", "{\"b\":1,\"a\":{\"c\":null}}", "[{\"a\":[1,2.5,-3,true,false,null,\"x\\ny\\\"z\\u0001\"]}]",
    #"{"ivrid":"1700000000000000000-0","calls":[{"callstatus":"Talking","customdata":{"PCI_STAGE":"CARD","n":3}}],"x":[]}"#,
    #"{"a":1,"a":2,"k\u00e9y":"v","\u212a":"kelvin"}"#,
]

@Test(arguments: documents)
func aDocumentHoldsWhatTheTreeParserBuilds(_ text: String) throws {
    let document = try JSONDocument.parse(text)
    #expect(document.root.value == (try JSONValue.parse(text)))
}

/// The same documents refused, with the same reason at the same offset, as by the tree parser.
@Test(arguments: [
    "", "{", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "[1,]", "01", "1.", "-", "tru", "nul1", "\"abc", "\"a\u{01}b\"", "\"\\x\"",
    "\"\\u12zz\"", "\"\\ud800\"", "{} {}", "1e999", "[1E400]", "\"0123456789\n\"", "[\"abc", "{\"a\\", "[\"é",
    // Refused prefixes with more values than half their bytes (found by fuzz-json-document).
    "[[[[x", "[[[[", "{\"a\":[[[[1",
])
func aDocumentIsRefusedAsByTheTreeParser(_ text: String) {
    var treeError: JSONError?
    do { _ = try JSONValue.parse(text) } catch { treeError = error }
    #expect(treeError != nil)
    #expect(throws: treeError!) { try JSONDocument.parse(text) }
}

@Test func invalidUTF8AndDepthAreRefusedAsByTheTreeParser() {
    #expect(throws: JSONError.self) { _ = try JSONDocument.parse([0x22, 0xC3, 0x28, 0x22]) }
    let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
    #expect(throws: JSONError(message: "nested deeper than 64 levels", offset: 64)) { try JSONDocument.parse(deep) }
    #expect((try? JSONDocument.parse(deep, maximumDepth: 200)) != nil)
}

@Test func nodesReadAsValuesDo() throws {
    let text = #"{"s":"x","n":42,"f":1.5,"b":true,"z":null,"o":{"k":1},"a":[1,"two",[3]],"e":"t\u00e9","k\u00e9y":1,"dup":1,"dup":2}"#
    let node = try JSONDocument.parse(text).root
    let value = try JSONValue.parse(text)
    for key in ["s", "n", "f", "b", "z", "o", "a", "e", "kéy", "dup", "missing", ""] {
        #expect(node[key]?.value == value[key], "\(key)")
        #expect(node[key]?.string == value[key]?.string)
        #expect(node[key]?.int == value[key]?.int)
        #expect(node[key]?.number == value[key]?.number)
        #expect(node[key]?.bool == value[key]?.bool)
        #expect(node[key]?.scalarText == value[key]?.scalarText)
        #expect(node[key]?.isNull == value[key]?.isNull)
    }
    #expect(node["dup"]?.int == 1)
    #expect(node["o"]?["k"]?.int == 1)
    #expect(node["a"]?.count == 3)
    #expect(node["a"]?.elements?.map(\.value) == [.number(1), .string("two"), .array([.number(3)])])
    #expect(node.members?.map(\.0) == ["s", "n", "f", "b", "z", "o", "a", "e", "kéy", "dup", "dup"])
    #expect(node.count == 11)
    #expect(node["s"]?.isString("x") == true)
    #expect(node["e"]?.isString("té") == true)
    #expect(node["e"]?.isString("te") == false)
    #expect(node["n"]?.isString("42") == false)
    #expect(node["s"]?["k"] == nil)
    #expect(node["s"]?.elements == nil)
    #expect(node["a"]?.members == nil)
}

/// `String`'s `==` is canonical equivalence: a key written with U+212A KELVIN SIGN is "K" to
/// the tree's lookup, so it must be to the document's too.
@Test func keysAndStringsCompareAsStringsDo() throws {
    let text = "{\"\u{212A}ey\":1,\"e\u{301}\":2}"
    let node = try JSONDocument.parse(text).root
    let value = try JSONValue.parse(text)
    #expect(value["Key"]?.int == 1)
    #expect(node["Key"]?.int == 1)
    #expect(node["é"]?.int == value["é"]?.int)
    #expect(try JSONDocument.parse("\"\u{212A}\"").root.isString("K"))
}

@Test func aDocumentOfABuiltValueHoldsIt() {
    let value = JSONValue.object([
        ("a", .array([.number(1.5), .string("q\"\n"), .null, .bool(false)])), ("b", .object([])), ("c", .number(-7)),
    ])
    #expect(JSONDocument(value).root.value == value)
    #expect(JSONDocument.null.root.isNull)
}

/// The document's string scan is the tree parser's: every stop byte at every offset.
@Test func theDocumentsStringScanStopsAtEveryOffset() throws {
    for length in 0..<24 {
        for offset in 0...length {
            let head = String(repeating: "a", count: offset)
            let tail = String(repeating: "b", count: length - offset)
            for text in ["\"\(head)\\\"\(tail)\"", "\"\(head)é\(tail)\"", "[\"\(head)\",\"\(tail)\"]"] {
                #expect(try JSONDocument.parse(text).root.value == (try JSONValue.parse(text)))
            }
            #expect(throws: JSONError.self) { try JSONDocument.parse("\"\(head)\u{1F}\(tail)\"") }
            var invalid = Array("\"\(head)\(tail)\"".utf8)
            invalid.insert(0xFF, at: 1 + offset)
            #expect(throws: JSONError.self) { try JSONDocument.parse(invalid) }
        }
    }
}

/// Every input the JSON fuzz targets ever crashed on: the document agrees with the tree parser.
@Test func theFuzzRegressionsAgreeWithTheTreeParser() throws {
    let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Regressions")
    for target in ["json", "json-document"] {
        let root = fuzz.appendingPathComponent(target)
        let files = (try? FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)) ?? []
        for file in files {
            let bytes = try Array(Data(contentsOf: file))
            switch (Result { () throws(JSONError) in try JSONValue.parse(bytes) }, Result { () throws(JSONError) in try JSONDocument.parse(bytes) }) {
            case (.success(let value), .success(let document)): #expect(document.root.value == value, "\(file.lastPathComponent)")
            case (.failure(let a), .failure(let b)): #expect(a == b, "\(file.lastPathComponent)")
            default: Issue.record("the parsers disagree on \(file.lastPathComponent)")
            }
        }
    }
}
