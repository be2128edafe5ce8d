import Foundation
import MutewardenLogging
import MutewardenModel
import MutewardenTesting
import Testing

/// One entry of a journal catalog file.
struct CatalogEntry: Sendable {
    var id: String
    var headers: [String: String]
    var body: String
}

/// Parses the journal catalog format as systemd's catalog.c reads it: `#` comments, then entries
/// that start with `-- <128-bit id>` (optionally followed by a language), headers up to the first
/// empty line, then free text up to the next entry.
enum CatalogFile {
    static let path = packageRoot.appendingPathComponent("systemd/mutewarden.catalog").path

    static func load() throws -> [CatalogEntry] {
        try parse(String(contentsOfFile: path, encoding: .utf8))
    }

    static func parse(_ text: String) throws -> [CatalogEntry] {
        var entries: [CatalogEntry] = []
        var current: CatalogEntry?
        var inHeaders = false
        func finish() {
            if var entry = current {
                entry.body = entry.body.trimmingCharacters(in: .whitespacesAndNewlines)
                entries.append(entry)
            }
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- ") {
                finish()
                let id = String(line.dropFirst(3).split(separator: " ").first ?? "")
                current = CatalogEntry(id: id, headers: [:], body: "")
                inHeaders = true
                continue
            }
            guard current != nil else {
                guard line.isEmpty || line.hasPrefix("#") else { throw CatalogError.textBeforeFirstEntry(line) }
                continue
            }
            if inHeaders {
                if line.isEmpty {
                    inHeaders = false
                    continue
                }
                guard let colon = line.firstIndex(of: ":") else { throw CatalogError.badHeader(line) }
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                current!.headers[name] = value
            } else if !line.hasPrefix("#") {
                current!.body += line + "\n"
            }
        }
        finish()
        return entries
    }
}

enum CatalogError: Error {
    case textBeforeFirstEntry(String)
    case badHeader(String)
}

@Suite struct CatalogTests {
    @Test func everyAuditKindHasExactlyOneEntryAndNoEntryIsStale() throws {
        let entries = try CatalogFile.load()
        let ids = entries.map(\.id)
        #expect(Set(ids).count == ids.count, "duplicate ids in the catalog")
        let expected = Set(AuditKind.allCases.map(JournalMessageID.of))
        #expect(expected.count == AuditKind.allCases.count, "two audit kinds share a MESSAGE_ID")
        for kind in AuditKind.allCases {
            #expect(ids.contains(JournalMessageID.of(kind)), "no catalog entry for \(kind.rawValue)")
        }
        for id in ids {
            #expect(expected.contains(id), "catalog entry \(id) is no audit kind's MESSAGE_ID")
        }
    }

    @Test func idsAreJournaldMessageIDs() {
        for kind in AuditKind.allCases {
            let id = JournalMessageID.of(kind)
            #expect(id.count == 32 && id.allSatisfy { "0123456789abcdef".contains($0) }, "\(kind.rawValue): \(id)")
            #expect(JournalMessageID.kind(for: id) == kind)
        }
    }

    @Test func everyEntryHasSubjectDefinedBySupportAndText() throws {
        for entry in try CatalogFile.load() {
            let kind = JournalMessageID.kind(for: entry.id)
            #expect(entry.headers["Subject"]?.isEmpty == false, "\(entry.id): no Subject")
            #expect(entry.headers["Defined-By"] == "mutewarden", "\(entry.id)")
            #expect(entry.headers["Support"]?.contains("operations.md") == true, "\(entry.id)")
            // The subject names the kind, so that an operator can go from `journalctl -x` to the
            // audit table in operations.md.
            if let kind { #expect(entry.headers["Subject"]?.contains("(\(kind.rawValue))") == true) }
            #expect(entry.body.count > 80, "\(entry.id): the text should say what happened and what to do")
        }
    }

    /// systemd's own parser: `journalctl --update-catalog` into a private root (it needs no
    /// privileges there), then the entries it lists.
    @Test(.enabled(if: Peers.analyzeRuns)) func journalctlCompilesTheCatalog() async throws {
        guard Peers.require(Peers.journalctl == nil ? ["journalctl (Debian package systemd)"] : []) else { return }
        let root = try await CatalogRoot.make()
        let listed = try await runProgram(Peers.journalctl!, ["--root=\(root.path)", "--list-catalog"])
        #expect(listed.status == 0, "\(listed.output)")
        for kind in AuditKind.allCases {
            #expect(listed.stdout.contains(JournalMessageID.of(kind) + " mutewarden: "), "\(kind.rawValue) not compiled")
        }
    }
}

/// A directory laid out as a root file system holding only our catalog, compiled by
/// `journalctl --root=… --update-catalog` into `var/lib/systemd/catalog/database`.
final class CatalogRoot {
    let directory: TemporaryDirectory
    var path: String { directory.path }
    var databaseDirectory: String { path + "/var/lib/systemd/catalog" }

    private init(directory: TemporaryDirectory) { self.directory = directory }

    static func make() async throws -> CatalogRoot {
        let root = CatalogRoot(directory: try TemporaryDirectory("mutewarden-catalog"))
        let catalogs = root.path + "/usr/lib/systemd/catalog"
        try FileManager.default.createDirectory(atPath: catalogs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CatalogFile.path, toPath: catalogs + "/mutewarden.catalog")
        let result = try await runProgram(Peers.journalctl!, ["--root=\(root.path)", "--update-catalog"])
        guard result.status == 0, FileManager.default.fileExists(atPath: root.databaseDirectory + "/database") else {
            throw PrivateJournalError.journalctl("--update-catalog: \(result.output)")
        }
        return root
    }
}
