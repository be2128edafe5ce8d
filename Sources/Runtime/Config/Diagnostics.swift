/// A place in a configuration file. Lines and columns are 1-based, as editors and Yams count them.
/// A location with `line == 0` names a whole file (it could not be read, or has no content).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int = 0, column: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }
}

/// One problem in the configuration, in the `file:line:column: error: message` form that editors
/// and CI log viewers turn into links.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation?
    public var message: String

    public init(location: SourceLocation?, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String {
        location.map { "\($0): error: \(message)" } ?? "error: \(message)"
    }
}

/// Every problem found in one load. A configuration is all-or-nothing: the daemon never runs with
/// a partly understood policy set.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// Collects diagnostics for one load. Confined to the loading thread: the loader creates it, passes
/// it down synchronously and reads it back before returning.
final class DiagnosticSink {
    private(set) var diagnostics: [ConfigDiagnostic] = []

    func error(_ message: String, at location: SourceLocation?) {
        diagnostics.append(ConfigDiagnostic(location: location, message: message))
    }

    var isEmpty: Bool { diagnostics.isEmpty }

    /// Reports in file order, then by position, so that the output reads like a compiler's.
    /// Exact repeats (a YAML alias decoded twice) are reported once.
    func sorted(fileOrder: [String]) -> [ConfigDiagnostic] {
        var seen = Set<ConfigDiagnostic>()
        let unique = diagnostics.filter { seen.insert($0).inserted }
        func rank(_ d: ConfigDiagnostic) -> (Int, Int, Int) {
            guard let location = d.location else { return (-1, 0, 0) }
            let fileRank = fileOrder.firstIndex(of: location.file) ?? fileOrder.count
            return (fileRank, location.line, location.column)
        }
        return unique.enumerated().sorted { lhs, rhs in
            let (l, r) = (rank(lhs.element), rank(rhs.element))
            return l != r ? l < r : lhs.offset < rhs.offset
        }.map(\.element)
    }
}
