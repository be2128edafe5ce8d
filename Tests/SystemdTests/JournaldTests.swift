import Foundation
import Logging
import MutewardenLogging
import MutewardenModel
import MutewardenTesting
import Synchronization
import Testing

/// The journald backend against a real systemd-journald that each test starts for itself
/// (``PrivateJournal``), read back with `journalctl`.
@Suite(.enabled(if: Peers.journaldRuns)) struct JournaldTests {
    static let pan = "4111111111111111"
    static let maskedPAN = "411111******1111"
    static let severities: [AuditSeverity] = [.critical, .error, .warning, .notice, .info, .debug]

    static func record(_ kind: AuditKind, index: Int) -> AuditRecord {
        var fields = AuditFields()
        for field in AuditField.allCases { fields[field] = "\(field.rawValue)-\(index)" }
        fields.feed = "feed-\(index)"
        return AuditRecord(kind, severities[index % severities.count], "record \(kind.rawValue)", fields)
    }

    /// Logs through a ``JournalLogHandler`` on a thread that sees `journal`; returns what the
    /// handler wrote to its stderr fallback (nothing, when the journal took every record).
    static func log(into journal: PrivateJournal, _ body: @escaping @Sendable (Logger) -> Void) async throws -> [String] {
        let fallback = Locked<[String]>([])
        try await journal.withJournalMounted {
            let sink = JournalSink(fallback: { line in fallback.withLock { $0.append(line) } })
            body(Logger(label: "mutewarden") { JournalLogHandler(label: $0, logLevel: .trace, sink: sink) })
        }
        return fallback.withLock { $0 }
    }

    @Test func everyAuditKindArrivesWithItsMessageIDPriorityAndFields() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let journal = try await PrivateJournal.start()
        let fallback = try await Self.log(into: journal) { logger in
            let audit = AuditLogger(logger: logger)
            for (index, kind) in AuditKind.allCases.enumerated() { audit.emit(Self.record(kind, index: index)) }
        }
        #expect(fallback.isEmpty, "records fell back to stderr: \(fallback)")
        let entries = try await journal.waitForEntries(["SYSLOG_IDENTIFIER=mutewarden"], count: AuditKind.allCases.count)
        #expect(entries.count == AuditKind.allCases.count)

        for (index, kind) in AuditKind.allCases.enumerated() {
            let record = Self.record(kind, index: index)
            guard let entry = entries.first(where: { $0["MW_AUDIT"] == kind.rawValue }) else {
                Issue.record("no entry for \(kind.rawValue)")
                continue
            }
            #expect(entry["MESSAGE_ID"] == JournalMessageID.of(kind), "\(kind.rawValue)")
            #expect(entry["MESSAGE"] == "record \(kind.rawValue)")
            #expect(entry["PRIORITY"] == String(record.severity.rawValue), "\(kind.rawValue)")
            #expect(entry["MW_SEVERITY"] == AuditLogger.severityName(record.severity))
            #expect(entry["SYSLOG_IDENTIFIER"] == "mutewarden")
            #expect(entry["CODE_FILE"] == "SystemdTests/JournaldTests.swift")
            #expect(entry["CODE_LINE"].flatMap { Int($0) } != nil)
            #expect(entry["CODE_FUNC"]?.isEmpty == false)
            #expect(entry["_TRANSPORT"] == "journal", "sent natively, not as a stream line")
            for field in AuditField.allCases {
                let name = "MW_" + field.rawValue.uppercased()
                #expect(entry[name] == record.fields[field], "\(kind.rawValue) \(name)")
            }
        }
    }

    @Test func journalctlExplainsEveryKindFromTheCatalog() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let journal = try await PrivateJournal.start()
        _ = try await Self.log(into: journal) { logger in
            let audit = AuditLogger(logger: logger)
            for (index, kind) in AuditKind.allCases.enumerated() { audit.emit(Self.record(kind, index: index)) }
        }
        _ = try await journal.waitForEntries(["SYSLOG_IDENTIFIER=mutewarden"], count: AuditKind.allCases.count)

        // journalctl -x reads the compiled catalog from the fixed /var/lib/systemd/catalog: give
        // it ours in a mount namespace of its own rather than touching the host's.
        let catalog = try await CatalogRoot.make()
        let result = try await journal.runMounted(
            [(catalog.path + "/var/lib/systemd", "/var/lib/systemd")], Peers.journalctl!,
            ["--directory=\(journal.journalDirectory)", "--no-pager", "-x", "-o", "short", "SYSLOG_IDENTIFIER=mutewarden"])
        #expect(result.status == 0, "\(result.output)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let subjects = Dictionary(uniqueKeysWithValues: try CatalogFile.load().map { ($0.id, $0.headers["Subject"] ?? "") })

        for (index, kind) in AuditKind.allCases.enumerated() {
            guard let start = lines.firstIndex(where: { $0.hasSuffix(": record \(kind.rawValue)") }) else {
                Issue.record("no line for \(kind.rawValue) in \(result.stdout)")
                continue
            }
            // The explanation follows its record, up to the next record.
            let explanation = lines[(start + 1)...].prefix { !$0.contains(": record ") }.joined(separator: "\n")
            // journalctl substitutes @FIELD@ with the entry's values.
            let subject = subjects[JournalMessageID.of(kind)]!.replacingOccurrences(of: "@MW_FEED@", with: "feed-\(index)")
                .replacingOccurrences(of: "@MW_CALL@", with: "call-\(index)")
            #expect(explanation.contains("Subject: \(subject)"), "\(kind.rawValue): \(explanation)")
            #expect(explanation.contains("Defined-By: mutewarden"), "\(kind.rawValue)")
        }
    }

    @Test func panIsMaskedAndSecretsRedactedInEveryField() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let journal = try await PrivateJournal.start()
        let pan = Self.pan
        let fallback = try await Self.log(into: journal) { base in
            var logger = base
            logger[metadataKey: "handler_note"] = "handler \(pan)"
            logger.error(
                "customer read 4111 1111 1111 1111 aloud",
                error: CardDeclined(),
                metadata: [
                    "value": "\(pan)",
                    "key \(pan)": "x",
                    "nested": ["inner": "\(pan)", "deeper": ["list": ["a", "\(pan)"]]],
                    "multiline": "first line\nsecond \(pan)",
                    "password": "hunter2",
                    "api_key": "sk-live-abc123",
                    "Authorization": "Bearer eyJhbGciOi.payload",
                    "session": ["token": "tok-987"],
                ])
            AuditLogger(logger: logger).emit(
                AuditRecord(
                    .windowOpened, .notice, "window opened while the caller read \(pan)",
                    [
                        .call: "c-pan", .policy: "card", .result: "opened",
                        // An allowlisted attribute that holds a PAN, as a platform could send it.
                        .attributes: "Note=card \(pan),Stage=CARD",
                        .error: "declined 5555-5555-5555-4444",
                    ]))
        }
        #expect(fallback.isEmpty)
        let entries = try await journal.waitForEntries(["SYSLOG_IDENTIFIER=mutewarden"], count: 2)
        #expect(entries.count == 2)

        let spellings = [pan, "4111 1111 1111 1111", "5555-5555-5555-4444", "5555555555554444"]
        let secrets = ["hunter2", "sk-live-abc123", "eyJhbGciOi", "tok-987"]
        for entry in entries {
            // Fields starting with "_" are journald's own (timestamps, cursors, boot id): their digits
            // are not ours, and a 16-digit timestamp passes the Luhn check one time in ten. Every
            // planted spelling must still be absent from them.
            for (name, values) in entry.fields {
                let ours = !name.hasPrefix("_")
                #expect(!PANMasker.containsPAN(name), "PAN in field name \(name)")
                for value in values {
                    if ours { #expect(!PANMasker.containsPAN(value), "PAN in \(name)=\(value)") }
                    for leaked in spellings + secrets { #expect(!value.contains(leaked), "\(leaked) in \(name)") }
                }
            }
        }
        let plain = try #require(entries.first { $0["MW_AUDIT"] == nil })
        #expect(plain["MESSAGE"] == "customer read 4111 11** **** 1111 aloud")
        #expect(plain["PRIORITY"] == "3")
        #expect(plain["MW_VALUE"] == Self.maskedPAN)
        #expect(plain["MW_HANDLER_NOTE"] == "handler \(Self.maskedPAN)")
        // Nested values are rendered as on a stderr line (LogLineFormatter.render).
        #expect(plain["MW_NESTED"] == #"{deeper="{list=\"[a,411111******1111]\"}",inner=411111******1111}"#)
        // A line break in a value is carried as is: journald's binary field form.
        #expect(plain["MW_MULTILINE"] == "first line\nsecond \(Self.maskedPAN)")
        #expect(plain["MW_ERROR_MESSAGE"] == "card \(Self.maskedPAN) declined")
        #expect(plain.fields.keys.contains { $0.hasPrefix("MW_KEY_411111") })
        for name in ["MW_PASSWORD", "MW_API_KEY", "MW_AUTHORIZATION"] {
            #expect(plain[name] == LogRecordSanitizer.redacted, "\(name)")
        }
        #expect(plain["MW_SESSION"] == "{token=\(LogRecordSanitizer.redacted)}")

        let audit = try #require(entries.first { $0["MW_AUDIT"] == "window.opened" })
        #expect(audit["MESSAGE"] == "window opened while the caller read \(Self.maskedPAN)")
        #expect(audit["MW_ATTRIBUTES"] == "Note=card \(Self.maskedPAN),Stage=CARD")
        #expect(audit["MW_ERROR"] == "declined 5555-55**-****-4444")
        #expect(audit["MESSAGE_ID"] == JournalMessageID.of(.windowOpened))

        // Below the fields: not one byte of a PAN or a secret in the journal files themselves
        // (the values are far below journald's compression threshold, so they are stored plain).
        let files = try FileManager.default.subpathsOfDirectory(atPath: journal.journalDirectory)
            .filter { $0.hasSuffix(".journal") }
        #expect(!files.isEmpty)
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: journal.journalDirectory + "/" + file))
            for leaked in spellings + secrets {
                #expect(data.range(of: Data(leaked.utf8)) == nil, "\(leaked) stored in \(file)")
            }
            #expect(data.range(of: Data(Self.maskedPAN.utf8)) != nil, "the masked PAN should be stored")
        }
    }

    /// The daemon itself, configured for the journal: its audit trail arrives natively.
    @Test func daemonLogsNativelyWhenConfiguredForTheJournal() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let journal = try await PrivateJournal.start()
        let config = try DaemonConfig(target: "journal")
        let result = try await journal.runMounted(
            [(journal.runDirectory, "/run")], DaemonConfig.binary, ["run", "--config", config.path, "--for", "5s"])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.stderr.contains("audit=daemon.started"), "audit records went to stderr: \(result.stderr)")
        let started = try await journal.waitForEntries(["MESSAGE_ID=\(JournalMessageID.of(.daemonStarted))"], count: 1)
        #expect(started.first?["MW_AUDIT"] == "daemon.started")
        #expect(started.first?["_COMM"] == "mutewarden")
        let stopping = try await journal.waitForEntries(["MESSAGE_ID=\(JournalMessageID.of(.daemonStopping))"], count: 2)
        #expect(stopping.contains { $0["MW_RESULT"] == "stopped" })
        // The demo's first captures start after 2 s, and flaky-mute fails every mute within 1 s.
        let opened = try await journal.entries(["MESSAGE_ID=\(JournalMessageID.of(.windowOpened))"])
        #expect(!opened.isEmpty, "the demo opens windows within 5 s")
        #expect(opened.allSatisfy { $0["MW_CALL"]?.isEmpty == false && $0["MW_POLICY"]?.isEmpty == false })
        let failed = try await journal.entries(["MESSAGE_ID=\(JournalMessageID.of(.actionFailed))"])
        #expect(failed.contains { $0["PRIORITY"] == "2" && $0["MW_TARGET"] == "flaky-mute" && $0["MW_RESULT"] == "failed" })
    }

    /// `auto` under a journal stream, as systemd starts a service: systemd-cat connects the
    /// daemon's stdout and stderr to journald's stream socket, and `JOURNAL_STREAM` names that
    /// socket's device and inode. The daemon must then send natively, not stream lines.
    @Test func daemonInAutoModeUsesTheJournalWhenStderrIsAJournalStream() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let journal = try await PrivateJournal.start()
        let config = try DaemonConfig(target: "auto")
        let result = try await journal.runMounted(
            [(journal.runDirectory, "/run")], Peers.systemdCat!,
            [
                "-t", "mutewarden-stream", "/bin/sh", "-c",
                #"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@""#,
                DaemonConfig.binary, "run", "--config", config.path, "--for", "1s",
            ])
        #expect(result.status == 0, "\(result.output)")
        let started = try await journal.waitForEntries(["MESSAGE_ID=\(JournalMessageID.of(.daemonStarted))"], count: 1)
        #expect(started.first?["_TRANSPORT"] == "journal")
        #expect(started.first?["SYSLOG_IDENTIFIER"] == "mutewarden")
        // Nothing of the audit trail came through the stream as plain lines.
        let streamed = try await journal.entries(["SYSLOG_IDENTIFIER=mutewarden-stream"])
        #expect(!streamed.contains { $0["MESSAGE"]?.contains("audit=") == true }, "\(streamed.map { $0["MESSAGE"] ?? "" })")

        // The same daemon with its stderr elsewhere but the variable inherited: lines on stderr.
        let redirected = try await journal.runMounted(
            [(journal.runDirectory, "/run")], "/bin/sh",
            ["-c", #"JOURNAL_STREAM=1:1 exec "$0" "$@""#, DaemonConfig.binary, "run", "--config", config.path, "--for", "1s"])
        #expect(redirected.status == 0, "\(redirected.output)")
        #expect(redirected.stderr.contains("audit=daemon.started"))
    }

    /// `journal` configured where no journal listens: the daemon says so once and keeps its
    /// audit trail on stderr rather than losing it.
    @Test func daemonFallsBackToStderrWithoutAJournal() async throws {
        guard Peers.require(Peers.missingForJournald) else { return }
        let empty = try TemporaryDirectory("mutewarden-norun")
        let config = try DaemonConfig(target: "journal")
        let result = try await runProgram(
            Peers.unshare!,
            [
                "--mount", "--propagation", "private", "/bin/sh", "-c", #"mount --bind "$1" /run && shift && exec "$@""#,
                "sh", empty.path, DaemonConfig.binary, "run", "--config", config.path, "--for", "1s",
            ])
        #expect(result.status == 0, "\(result.output)")
        let warnings = result.stderr.split(separator: "\n").filter { $0.contains("journal socket") }
        #expect(warnings.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("audit=daemon.started"))
    }
}

/// The demo configuration with `logging.target` replaced, in a temporary file.
struct DaemonConfig {
    let directory: TemporaryDirectory
    let path: String

    static let binary: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            packageRoot.appendingPathComponent(".build/debug"),
        ]
        for directory in candidates {
            let url = directory.appendingPathComponent("mutewarden")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        }
        return packageRoot.appendingPathComponent(".build/debug/mutewarden").path
    }()

    init(target: String) throws {
        directory = try TemporaryDirectory("mutewarden-config")
        let demo = try String(contentsOf: packageRoot.appendingPathComponent("config/demo.yaml"), encoding: .utf8)
        let text = demo.replacingOccurrences(of: "  target: stderr\n", with: "  target: \(target)\n")
        precondition(text != demo, "config/demo.yaml no longer sets logging.target: stderr")
        path = directory.path + "/mutewarden.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct CardDeclined: Error, CustomStringConvertible {
    var description: String { "card 4111111111111111 declined" }
}
