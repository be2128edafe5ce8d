import FuzzDriver
import MutewardenJSON

/// Any bytes to both JSON parsers, the tree (`JSONValue.parse`) as the reference and the
/// parsed-but-not-built document (`JSONDocument.parse`), at the default depth bound and at a
/// small one the bytes choose. They must agree: both refuse, with the same error, or both accept,
/// and then every node of the document reads (value, scalars, members, lookups by each member's
/// name and by a name taken from the bytes) as the tree's value does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let probe = String(decoding: bytes.prefix(8), as: UTF8.self)
    for depth in [64, 1 + size % 5] {
        let tree = Result { () throws(JSONError) in try JSONValue.parse(bytes, maximumDepth: depth) }
        let document = Result { () throws(JSONError) in try JSONDocument.parse(bytes, maximumDepth: depth) }
        switch (tree, document) {
        case (.success(let value), .success(let document)):
            compare(document.root, value, probe: probe)
        case (.failure(let a), .failure(let b)):
            precondition(a == b, "the parsers refuse with different errors: \(a) and \(b)")
        case (.success, .failure(let error)):
            fatalError("the document refuses what the tree parser reads: \(error)")
        case (.failure(let error), .success):
            fatalError("the document reads what the tree parser refuses: \(error)")
        }
    }
    return 0
}

private func compare(_ node: JSONNode, _ value: JSONValue, probe: String) {
    precondition(node.value == value, "the document's value differs")
    precondition(node.isNull == value.isNull && node.isObject == value.isObject && node.isArray == value.isArray)
    precondition(node.string == value.string && node.bool == value.bool, "a scalar reads otherwise")
    precondition(node.number.map { $0.bitPattern } == value.number.map { $0.bitPattern }, "a number reads otherwise")
    precondition(node.int == value.int && node.scalarText == value.scalarText, "a number's forms read otherwise")
    precondition(node.isString(probe) == value.isString(probe), "a string compares otherwise")
    precondition(node[probe]?.value == value[probe], "a lookup by the probe finds otherwise")
    if let members = value.object {
        precondition(node.count == members.count)
        for ((key, member), (nodeKey, nodeMember)) in zip(members, node.members.map(Array.init) ?? []) {
            precondition(key == nodeKey, "a member's name reads otherwise")
            precondition(node[key]?.value == value[key], "a lookup by name finds otherwise")
            precondition(nodeMember.isString(key) == member.isString(key))
            compare(nodeMember, member, probe: probe)
        }
    } else if let items = value.array {
        precondition(node.count == items.count && node.members == nil)
        for (item, nodeItem) in zip(items, node.elements.map(Array.init) ?? []) { compare(nodeItem, item, probe: probe) }
    } else {
        precondition(node.count == nil && node.elements == nil && node.members == nil)
    }
}

runFuzzer(fuzz)
