import Yams

/// Parses one file's text into a node tree, turning Yams errors into diagnostics.
///
/// Yams refuses a mapping with a repeated key outright (`YamlError.duplicatedKeysInMapping`), which
/// would end the whole file at its first duplicate and hide every other error in it. Instead, the
/// first of the two keys is renamed in the text to a placeholder of the same length (so every
/// other node keeps its line and column) and the text is parsed again; the placeholder is then
/// turned back into the original key in the tree, where ``ConfigSection`` and the loader see both
/// keys and report the second one, with the first one's location.
struct YAMLParser {
    var file: String

    /// `nil` when the text has no document (empty, or only comments), or when it does not parse;
    /// in the latter case `sink` has the reason.
    func parse(_ text: String, into sink: DiagnosticSink) -> Node? {
        var text = text
        var renamed: [Placeholder: String] = [:]
        // A bound, so that a pathological file cannot loop; each round removes one duplicate.
        for round in 1...2000 {
            do {
                guard let root = try Yams.compose(yaml: text) else { return nil }
                return renamed.isEmpty ? root : restore(root, renamed)
            } catch let error as YamlError {
                if case .duplicatedKeysInMapping(let duplicates, let context) = error,
                    let key = duplicates.sorted().first,
                    let (newText, placeholder) = rename(key, at: context.mark, in: text, round: round)
                {
                    text = newText
                    renamed[placeholder] = key
                    continue
                }
                report(error, sink: sink)
                return nil
            } catch {
                sink.error("cannot parse YAML", at: SourceLocation(file: file, line: 1, column: 1))
                return nil
            }
        }
        sink.error("too many duplicate keys", at: SourceLocation(file: file, line: 1, column: 1))
        return nil
    }

    struct Placeholder: Hashable {
        var text: String
    }

    /// Replaces the key written at `mark` (plain or quoted) by private-use characters, one per
    /// character of the key, so that nothing else in the file moves.
    private func rename(_ key: String, at mark: Mark, in text: String, round: Int) -> (String, Placeholder)? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.unicodeScalars) }
        let (lineIndex, columnIndex) = (mark.line - 1, mark.column - 1)
        guard lines.indices.contains(lineIndex), columnIndex >= 0, columnIndex < lines[lineIndex].count else { return nil }
        let keyScalars = Array(key.unicodeScalars)
        guard !keyScalars.isEmpty, let base = Unicode.Scalar(0xE000 + UInt32(round % 0x1800)),
            let filler = Unicode.Scalar(0xE000)
        else { return nil }
        var line = lines[lineIndex]
        var start = columnIndex
        if line[start] == "\"" || line[start] == "'" { start += 1 }
        guard start + keyScalars.count <= line.count, Array(line[start..<start + keyScalars.count]) == keyScalars
        else { return nil }
        let replacement = [base] + Array(repeating: filler, count: keyScalars.count - 1)
        line.replaceSubrange(start..<start + keyScalars.count, with: replacement)
        lines[lineIndex] = line
        let newText = lines.map { String(String.UnicodeScalarView($0)) }.joined(separator: "\n")
        return (newText, Placeholder(text: String(String.UnicodeScalarView(replacement))))
    }

    private func restore(_ node: Node, _ renamed: [Placeholder: String]) -> Node {
        switch node {
        case .scalar(let scalar):
            guard let original = renamed[Placeholder(text: scalar.string)] else { return node }
            // A fresh tag: Yams caches the resolved tag in the (shared) tag object, and the cached
            // one was resolved from the placeholder's text.
            let tag = scalar.style == .plain ? Tag(.implicit) : Tag(.str)
            return .scalar(Node.Scalar(original, tag, scalar.style, scalar.mark))
        case .mapping(let mapping):
            let pairs = mapping.map { (restore($0.key, renamed), restore($0.value, renamed)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map { restore($0, renamed) }, sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    /// Uses Yams' problem and context texts, never its `description`: that quotes the offending
    /// line, which may hold an inline secret, and for duplicate keys the whole file.
    private func report(_ error: YamlError, sink: DiagnosticSink) {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            sink.error(message, at: at(mark))
        case .reader(let problem, let offset, _, let yaml):
            sink.error(
                "invalid YAML: \(problem)",
                at: offset.map { position(ofCharacterOffset: $0, in: yaml) } ?? SourceLocation(file: file, line: 1, column: 1))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            sink.error("duplicate key \(keys) in one mapping", at: at(context.mark))
        default:
            sink.error("invalid YAML", at: SourceLocation(file: file, line: 1, column: 1))
        }
    }

    private func position(ofCharacterOffset offset: Int, in text: String) -> SourceLocation {
        var (line, column) = (1, 1)
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" { (line, column) = (line + 1, 1) } else { column += 1 }
        }
        return SourceLocation(file: file, line: line, column: column)
    }
}
