// libyaml's events, through the C module that Yams is built on: Yams' own composer cannot be
// bounded (below), and it has no public API for events.
import CYaml
import Yams

/// Parses one file's text into a node tree, turning parse errors into diagnostics.
///
/// The tree is composed here from libyaml's events rather than by `Yams.compose`, for two reasons:
///
/// - Yams refuses a mapping with a repeated key outright, which would end the whole file at its
///   first duplicate and hide every other error in it. Here repeated keys are kept, and
///   ``ConfigSection`` reports each one with the first one's location.
/// - Yams checks for repeated keys by hashing every key node, which for an alias to a nested
///   alias tree (`a: &a [x, x]`, `b: &b [*a, *a]`, … then `*z` as a key) takes time exponential in
///   the file's size. Here aliases are counted and the nodes they add are summed as they are
///   read, and a file over ``maximumAliases`` or ``maximumAliasedNodes`` is refused at the alias
///   that crossed the bound, before anything walks the tree. An alias cannot be a key at all.
///
/// Nodes are Yams' own, tags resolved by Yams' default resolver, so everything downstream reads
/// them as if Yams had composed them.
struct YAMLParser {
    var file: String

    /// Aliases one file may use.
    static let maximumAliases = 1_000
    /// Nodes that aliases may add to one file, counting each alias as the size of what it names.
    static let maximumAliasedNodes = 100_000
    /// Levels of nested mappings and lists.
    static let maximumDepth = 64

    /// `nil` when the text has no document (empty, or only comments), or when it does not parse
    /// or crosses a bound; in the latter cases `sink` has the reason.
    func parse(_ text: String, into sink: DiagnosticSink) -> Node? {
        var text = text
        return text.withUTF8 { bytes in
            let composer = Composer(file: file, sink: sink)
            return composer.compose(bytes)
        }
    }
}

/// One pass over libyaml's events. A class: libyaml's parser must stay at one address.
private final class Composer {
    let file: String
    let sink: DiagnosticSink
    var parser = yaml_parser_t()
    /// Each anchor's node and its size in nodes, aliases inside it expanded.
    var anchors: [String: (node: Node, size: Int)] = [:]
    var aliases = 0
    var aliasedNodes = 0
    /// Nodes composed so far, aliases expanded: an anchored node's size is the difference.
    var nodes = 0

    init(file: String, sink: DiagnosticSink) {
        self.file = file
        self.sink = sink
    }

    deinit { yaml_parser_delete(&parser) }

    /// Thrown to stop composing; the diagnostic is already in the sink.
    struct Stop: Error {}

    final class Event {
        var event = yaml_event_t()
        deinit { yaml_event_delete(&event) }

        var type: yaml_event_type_t { event.type }
        var mark: Mark { makeMark(line: event.start_mark.line + 1, column: event.start_mark.column + 1) }
    }

    func compose(_ bytes: UnsafeBufferPointer<UInt8>) -> Node? {
        guard yaml_parser_initialize(&parser) == 1 else {
            sink.error("cannot parse YAML: out of memory", at: SourceLocation(file: file, line: 1, column: 1))
            return nil
        }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
        do {
            _ = try next()  // stream start
            let first = try next()
            guard first.type == YAML_DOCUMENT_START_EVENT else { return nil }
            let root = try node(from: next(), depth: 1)
            _ = try next()  // document end
            let after = try next()
            if after.type != YAML_STREAM_END_EVENT {
                sink.error(
                    "invalid YAML: but found another document (expected a single document in the stream)",
                    at: location(after.mark))
                return nil
            }
            return root
        } catch {
            return nil
        }
    }

    func next() throws(Stop) -> Event {
        let event = Event()
        guard yaml_parser_parse(&parser, &event.event) == 1 else {
            reportParserError()
            throw Stop()
        }
        return event
    }

    func node(from event: Event, depth: Int) throws(Stop) -> Node {
        switch event.type {
        case YAML_ALIAS_EVENT:
            return try alias(event)
        case YAML_SCALAR_EVENT:
            nodes += 1
            let data = event.event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
            // As Yams does: a quoted scalar is a string whatever it looks like.
            let tag = data.quoted_implicit == 1 ? Tag(.str) : tag(data.tag)
            let style = Node.Scalar.Style(rawValue: data.style.rawValue) ?? .any
            let node = Node.scalar(Node.Scalar(value, tag, style, event.mark))
            register(data.anchor, node, size: 1)
            return node
        case YAML_SEQUENCE_START_EVENT:
            try checkDepth(depth, at: event)
            let before = nodes
            nodes += 1
            let data = event.event.data.sequence_start
            var items: [Node] = []
            var item = try next()
            while item.type != YAML_SEQUENCE_END_EVENT {
                items.append(try node(from: item, depth: depth + 1))
                item = try next()
            }
            let style = Node.Sequence.Style(rawValue: data.style.rawValue) ?? .any
            let node = Node.sequence(Node.Sequence(items, data.implicit != 0 ? .implicit : tag(data.tag), style, event.mark))
            register(data.anchor, node, size: nodes - before)
            return node
        case YAML_MAPPING_START_EVENT:
            try checkDepth(depth, at: event)
            let before = nodes
            nodes += 1
            let data = event.event.data.mapping_start
            var pairs: [(Node, Node)] = []
            var key = try next()
            while key.type != YAML_MAPPING_END_EVENT {
                if key.type == YAML_ALIAS_EVENT {
                    sink.error("an alias cannot be used as a key", at: location(key.mark))
                    throw Stop()
                }
                let keyNode = try node(from: key, depth: depth + 1)
                let value = try node(from: next(), depth: depth + 1)
                pairs.append((keyNode, value))
                key = try next()
            }
            let style = Node.Mapping.Style(rawValue: data.style.rawValue) ?? .any
            let node = Node.mapping(Node.Mapping(pairs, data.implicit != 0 ? .implicit : tag(data.tag), style, event.mark))
            register(data.anchor, node, size: nodes - before)
            return node
        default:
            sink.error("invalid YAML: unexpected event", at: location(event.mark))
            throw Stop()
        }
    }

    func alias(_ event: Event) throws(Stop) -> Node {
        let name = string(event.event.data.alias.anchor) ?? ""
        guard let anchored = anchors[name] else {
            sink.error("invalid YAML: found undefined alias", at: location(event.mark))
            throw Stop()
        }
        aliases += 1
        guard aliases <= YAMLParser.maximumAliases else {
            sink.error("more than \(YAMLParser.maximumAliases) aliases in one file", at: location(event.mark))
            throw Stop()
        }
        aliasedNodes += anchored.size
        nodes += anchored.size
        guard aliasedNodes <= YAMLParser.maximumAliasedNodes else {
            sink.error(
                "aliases in this file expand to more than \(YAMLParser.maximumAliasedNodes) nodes; this one names '\(name)', of \(anchored.size)",
                at: location(event.mark))
            throw Stop()
        }
        return anchored.node
    }

    func checkDepth(_ depth: Int, at event: Event) throws(Stop) {
        guard depth <= YAMLParser.maximumDepth else {
            sink.error("mappings and lists nested more than \(YAMLParser.maximumDepth) levels deep", at: location(event.mark))
            throw Stop()
        }
    }

    func register(_ anchor: UnsafeMutablePointer<yaml_char_t>?, _ node: Node, size: Int) {
        // A later anchor of the same name shadows the earlier one, as YAML says.
        if let name = string(anchor) { anchors[name] = (node, size) }
    }

    func tag(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> Tag {
        string(pointer).map { Tag(Tag.Name(rawValue: $0)) } ?? .implicit
    }

    func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }

    func location(_ mark: Mark) -> SourceLocation {
        SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    /// Uses libyaml's problem and context texts only: never the offending line, which may hold an
    /// inline secret.
    func reportParserError() {
        let problem = parser.problem.map { String(cString: $0) } ?? "cannot parse"
        switch parser.error {
        case YAML_READER_ERROR:
            // The reader reports a byte offset; lines and columns count characters.
            sink.error("invalid YAML: \(problem)", at: readerLocation(byteOffset: parser.problem_offset))
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            var message = "invalid YAML: \(problem)"
            if let context = parser.context {
                message += " (\(String(cString: context)) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
            }
            sink.error(message, at: SourceLocation(file: file, line: parser.problem_mark.line + 1, column: parser.problem_mark.column + 1))
        default:
            sink.error("cannot parse YAML", at: SourceLocation(file: file, line: 1, column: 1))
        }
    }

    func readerLocation(byteOffset: Int) -> SourceLocation {
        var (line, column) = (1, 1)
        let input = UnsafeBufferPointer(start: parser.input.string.start, count: byteOffset)
        for byte in input where byte & 0xC0 != 0x80 {
            if byte == UInt8(ascii: "\n") { (line, column) = (line + 1, 1) } else { column += 1 }
        }
        return SourceLocation(file: file, line: line, column: column)
    }
}

/// Yams' `Mark` has no public initializer, and the nodes must carry one: ``ConfigSection`` reports
/// every problem at its node's mark. It is two `Int`s (line, then column), and `unsafeBitCast`
/// traps if its size ever differs.
private func makeMark(line: Int, column: Int) -> Mark {
    unsafeBitCast((line, column), to: Mark.self)
}
