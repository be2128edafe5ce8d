import Logging
import MutewardenModel
import Testing

@testable import MutewardenLogging

/// Identifier fields keep a platform's id whole, so the audit trail can be searched by it, while
/// the same digits anywhere else are still masked.
@Suite struct IdentifierFieldTests {
    /// Shaped like a Voicenter ivrid (19 digits), and Luhn-valid.
    static let callID = "1763765340123456789"

    @Test func theCallIDIsAPANShapedNumber() {
        #expect(PANMasker.containsPAN(Self.callID))
    }

    @Test func auditRecordKeepsTheIDInItsFieldOnly() {
        let (logger, capture) = capturingLogger()
        AuditLogger(logger: logger).emit(
            AuditRecord(
                .windowOpened, .notice, "call \(Self.callID) opened a window; card 4111 1111 1111 1111 read out",
                [
                    .call: Self.callID, .window: Self.callID, .idempotencyKey: "0c1c2c3c-4c5c-8c6c-9c7c-8c9c0cacbccc",
                    .reason: "caller \(Self.callID)", .error: Self.callID, .extension: Self.callID,
                    .attributes: "ivrid=\(Self.callID)",
                ]))
        let entry = capture.entries[0]
        let masked = "176376*********6789"
        // The message names the call as its field does; a card number beside it is still masked.
        #expect(entry.message.hasPrefix("call \(Self.callID) opened a window; card "))
        #expect(!PANMasker.containsPAN(String(entry.message.dropFirst(5 + Self.callID.count))))
        #expect(entry.metadata["call"] == .string(Self.callID))
        #expect(entry.metadata["window"] == .string(Self.callID))
        #expect(entry.metadata["idempotency_key"] == "0c1c2c3c-4c5c-8c6c-9c7c-8c9c0cacbccc")
        #expect(entry.metadata["reason"] == .string("caller \(masked)"))
        #expect(entry.metadata["error"] == .string(masked))
        #expect(entry.metadata["extension"] == .string(masked))
        #expect(entry.metadata["attributes"] == .string("ivrid=\(masked)"))
        #expect(entry.line.contains(" call=\(Self.callID) "))
        #expect(entry.line.hasSuffix(" window=\(Self.callID)"))
        #expect(!entry.line.contains("caller \(Self.callID)"))
    }

    @Test func aMessageKeepsOnlyTheIdentifiersItsRecordNamesAndOnlyWhenTheyAreIdentifiers() {
        let pan = "4111111111111111"
        let metadata: Logger.Metadata = ["call": .string(Self.callID), "window": .string("\(Self.callID)-1")]
        let message = "\(Self.callID)-1 \(Self.callID) \(pan) \(Self.callID)\(pan)"
        let kept = LogRecordSanitizer.maskMessage(message, keeping: metadata)
        #expect(kept.hasPrefix("\(Self.callID)-1 \(Self.callID) "))
        #expect(!kept.contains(pan))
        #expect(!PANMasker.containsPAN(kept.replacingOccurrences(of: Self.callID, with: "")))
        // A value that is free text, not an identifier, keeps nothing.
        let spaced = "4111 1111 1111 1111"
        #expect(!LogRecordSanitizer.maskMessage("call \(spaced)", keeping: ["call": .string(spaced)]).contains(spaced))
        #expect(LogRecordSanitizer.maskMessage("no ids: \(pan)", keeping: [:]) == PANMasker.maskForLog("no ids: \(pan)"))
    }

    @Test func journalFieldKeepsTheID() {
        let record = LogRecordSanitizer().sanitize(
            ["call": .string(Self.callID), "detail": .string(Self.callID)])
        #expect(record["call"] == .string(Self.callID))
        #expect(record["detail"] == "176376*********6789")
    }

    /// Free text in an identifier field is not an identifier: it is masked like any other.
    @Test(arguments: [
        "card 4111 1111 1111 1111", "4111111111111111 ", "٤١١١١١١١١١١١١١١١", #"\u0034111111111111111"#,
        "4111111111111111/x", String(repeating: "1", count: 129),
    ])
    func freeTextInAnIdentifierFieldIsMasked(_ value: String) {
        let (logger, capture) = capturingLogger()
        AuditLogger(logger: logger).emit(AuditRecord(.windowOpened, .notice, "m", [.call: value]))
        logger.info("m", metadata: ["call": .string(value)])
        for entry in capture.entries {
            #expect(entry.metadata["call"] == .string(PANMasker.maskForLog(value)))
        }
    }

    @Test func onlyTopLevelIdentifierKeysAreKept() {
        let (logger, capture) = capturingLogger()
        logger.info(
            "m",
            metadata: [
                "call": .string(Self.callID), "caller": .string(Self.callID),
                "nested": .dictionary(["call": .string(Self.callID)]),
                "list": .array([.string(Self.callID)]),
            ])
        let metadata = capture.entries[0].metadata
        #expect(metadata["call"] == .string(Self.callID))
        #expect(metadata["caller"] == "176376*********6789")
        #expect(metadata["nested"] == .dictionary(["call": "176376*********6789"]))
        #expect(metadata["list"] == .array(["176376*********6789"]))
    }

    @Test func identifierFieldsAreTheDocumentedOnes() {
        #expect(LogRecordSanitizer.identifierKeys == ["call", "idempotency_key", "window", "digest"])
    }
}
