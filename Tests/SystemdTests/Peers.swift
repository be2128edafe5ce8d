import Foundation
import Testing

/// The real systemd programs these tests drive, and whether they may run here.
///
/// Locally, a machine without them (or without root) leaves the tests disabled. In CI
/// (`CI=true`) they are required: the tests run and fail with what is missing, because a suite
/// that quietly skips its journald tests proves nothing.
enum Peers {
    static let isCI = ProcessInfo.processInfo.environment["CI"].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false

    static func find(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let systemdAnalyze = find(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"])
    static let journalctl = find(["/usr/bin/journalctl", "/bin/journalctl"])
    static let journald = find(["/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"])
    static let unshare = find(["/usr/bin/unshare", "/bin/unshare"])
    static let systemdCat = find(["/usr/bin/systemd-cat", "/bin/systemd-cat"])
    static let isRoot = geteuid() == 0

    /// What the journald tests need that this machine lacks; empty when they can run.
    static var missingForJournald: [String] {
        var missing: [String] = []
        if journald == nil { missing.append("systemd-journald (Debian package systemd)") }
        if journalctl == nil { missing.append("journalctl (Debian package systemd)") }
        if unshare == nil { missing.append("unshare (Debian package util-linux)") }
        if systemdCat == nil { missing.append("systemd-cat (Debian package systemd)") }
        if !isRoot { missing.append("root, to start journald in a private mount namespace") }
        return missing
    }

    static var missingForUnit: [String] {
        systemdAnalyze == nil ? ["systemd-analyze (Debian package systemd)"] : []
    }

    static var journaldRuns: Bool { missingForJournald.isEmpty || isCI }
    static var analyzeRuns: Bool { missingForUnit.isEmpty || isCI }

    /// Fails the current test when a peer is missing; true when all are there.
    static func require(_ missing: [String], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard missing.isEmpty else {
            Issue.record("missing: \(missing.joined(separator: ", "))", sourceLocation: sourceLocation)
            return false
        }
        return true
    }
}

/// The repository checkout, found from this file.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
