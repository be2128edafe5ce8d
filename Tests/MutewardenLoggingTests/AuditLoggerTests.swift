import Logging
import MutewardenModel
import Testing

@testable import MutewardenLogging

@Suite struct AuditLoggerTests {
    @Test func emitsKindFieldsAndSeverity() {
        let (logger, capture) = capturingLogger()
        let audit = AuditLogger(logger: logger)
        audit.emit(
            AuditRecord(
                .actionFailed, .critical, "mute not confirmed",
                [.policy: "pci-card", .call: "c-1", .target: "genesys", .attempt: "3", .latencyMs: "812"]))
        #expect(capture.entries.count == 1)
        let entry = capture.entries[0]
        #expect(entry.level == .critical)
        #expect(entry.message == "mute not confirmed")
        #expect(
            entry.metadata == [
                "audit": "action.failed", "severity": "critical", "policy": "pci-card", "call": "c-1",
                "target": "genesys", "attempt": "3", "latency_ms": "812",
            ])
        #expect(
            capture.lines() == [
                "2026-11-21T22:49:00.123Z CRIT mutewarden: mute not confirmed attempt=3 audit=action.failed"
                    + " call=c-1 latency_ms=812 policy=pci-card severity=critical target=genesys"
            ])
    }

    @Test(arguments: [
        (AuditSeverity.critical, Logger.Level.critical, "critical"), (.error, .error, "error"),
        (.warning, .warning, "warning"), (.notice, .notice, "notice"), (.info, .info, "info"),
        (.debug, .debug, "debug"),
    ])
    func mapsSeverity(severity: AuditSeverity, level: Logger.Level, name: String) {
        let (logger, capture) = capturingLogger()
        AuditLogger(logger: logger).emit(AuditRecord(.feedUp, severity, "feed up", [.feed: "sim"]))
        #expect(capture.entries.map(\.level) == [level])
        #expect(capture.entries.first?.metadata == ["audit": "feed.up", "severity": .string(name), "feed": "sim"])
    }

    @Test func masksPANsInRecordsEvenBehindAForeignHandler() {
        let collected = AuditLogger.metadata(
            for: AuditRecord(.dryRun, .info, "x", [.reason: "caller said 4111 1111 1111 1111"]))
        #expect(collected["reason"] == "caller said 4111 11** **** 1111")

        let (logger, capture) = capturingLogger()
        AuditLogger(logger: logger).emit(AuditRecord(.dryRun, .info, "heard 4111111111111111"))
        #expect(capture.entries.first?.message == "heard 411111******1111")
    }

    @Test func longTextsAreCutInTheRecord() {
        let (logger, capture) = capturingLogger()
        let long = String(repeating: "state 12 ", count: 30_000)
        AuditLogger(logger: logger).emit(AuditRecord(.feedDown, .warning, long, [.reason: long]))
        logger.warning("\(long)", metadata: ["detail": .string(long)])
        #expect(capture.entries.count == 2)
        for entry in capture.entries {
            #expect(entry.message.utf8.count <= PANMasker.maximumLoggedBytes)
            #expect(entry.message.hasSuffix("…[truncated from \(long.utf8.count) bytes]"))
        }
        #expect(capture.entries[0].metadata["reason"] == .string(PANMasker.maskForLog(long)))
        #expect(capture.entries[1].metadata["detail"] == .string(PANMasker.maskForLog(long)))
    }

    @Test func loggerLevelStillFilters() {
        let (base, capture) = capturingLogger()
        var logger = base
        logger.logLevel = .notice
        let audit = AuditLogger(logger: logger)
        audit.emit(AuditRecord(.actionAttempt, .info, "attempt"))
        audit.emit(AuditRecord(.actionConfirmed, .notice, "confirmed"))
        #expect(capture.entries.map(\.message) == ["confirmed"])
    }
}

@Suite struct AttributeRedactorTests {
    @Test(
        arguments: [
            ([:], ""),
            (["queue": "billing"], "queue=billing"),
            (["queue": "billing", "ivr_digits": "4111111111111111"], "ivr_digits=<redacted>,queue=billing"),
            (["language": "en", "note": "card 4111 1111 1111 1111"], "language=en,note=card 4111 11** **** 1111"),
            (["b": "2", "a": "1", "c": "3"], "a=<redacted>,b=<redacted>,c=<redacted>"),
        ] as [([String: String], String)])
    func rendersAllowlistedValuesOnly(attributes: [String: String], expected: String) {
        let redactor = AttributeRedactor(allowlist: ["queue", "language", "note"])
        #expect(redactor.render(attributes) == expected)
    }

    @Test func emptyAllowlistRedactsEverything() {
        #expect(AttributeRedactor(allowlist: []).render(["queue": "billing"]) == "queue=<redacted>")
    }
}
