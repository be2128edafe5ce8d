import MutewardenAzure
import MutewardenJSON
import MutewardenModel
import Testing

@Suite struct RepeatabilityTests {
    @Test func theRequestIDIsAVersion4UUIDDerivedFromTheKey() {
        let id = Repeatability.requestID(forIdempotencyKey: "policy=pci|call=42|seq=1|mute|apply")
        #expect(id == Repeatability.requestID(forIdempotencyKey: "policy=pci|call=42|seq=1|mute|apply"))
        #expect(id != Repeatability.requestID(forIdempotencyKey: "policy=pci|call=42|seq=1|mute|undo"))
        let groups = id.split(separator: "-").map(\.count)
        #expect(groups == [8, 4, 4, 4, 12])
        #expect(id == id.lowercased())
        let characters = Array(id)
        #expect(characters[14] == "4")
        #expect("89ab".contains(characters[19]))
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 …: version and variant set on it.
        #expect(Repeatability.requestID(forIdempotencyKey: "abc") == "ba7816bf-8f01-4fea-8141-40de5dae2223")
    }

    @Test func theFirstSentDateIsKeptAcrossRetries() {
        let ledger = RepeatabilityLedger(horizon: .seconds(3600), capacity: 4)
        let start = MonotonicInstant(nanoseconds: 1_000_000_000_000)
        let first = ledger.repeatability(for: "key-1", now: start, wallClock: 784_111_777_000_000_000)
        #expect(first.firstSent == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(first.headers.map(\.name) == ["Repeatability-Request-ID", "Repeatability-First-Sent"])
        let retry = ledger.repeatability(for: "key-1", now: start + .seconds(30), wallClock: 784_111_807_000_000_000)
        #expect(retry == first)
        // Past the horizon, an attempt is a new first attempt.
        let late = ledger.repeatability(for: "key-1", now: start + .seconds(3601), wallClock: 784_115_378_000_000_000)
        #expect(late.requestID == first.requestID)
        #expect(late.firstSent != first.firstSent)
        ledger.forget("key-1")
        #expect(ledger.count == 0)
        for index in 0..<10 { _ = ledger.repeatability(for: "k\(index)", now: start + .seconds(Int64(index)), wallClock: 0) }
        #expect(ledger.count <= 4)
    }
}

@Suite struct CommunicationErrorTests {
    @Test func theDocumentedShapeIsRead() throws {
        let body = #"""
            {"error":{"code":"Forbidden","message":"Action is not allowed.","target":"targetParticipants",
             "details":[{"code":"8522","message":"Only ACS users can be muted."}],
             "innererror":{"code":"8522","innererror":{"code":"MuteNotSupported"}}}}
            """#
        let error = try #require(CommunicationError.parse(Array(body.utf8)))
        #expect(error.code == "Forbidden")
        #expect(error.message == "Action is not allowed.")
        #expect(error.target == "targetParticipants")
        #expect(error.innerCodes == ["8522", "MuteNotSupported"])
        #expect(error.details == [CommunicationError(code: "8522", message: "Only ACS users can be muted.")])
        #expect(error.fullCode == "Forbidden/8522/MuteNotSupported")
        #expect(
            error.description
                == "Forbidden/8522/MuteNotSupported: Action is not allowed. (target: targetParticipants; details: 8522: Only ACS users can be muted.)"
        )
    }

    @Test func otherBodiesAreNotAnError() {
        for body in ["", "<html>Bad gateway</html>", "{}", #"{"error":"invalid_client"}"#, #"{"error":{}}"#, "[1,2]"] {
            #expect(CommunicationError.parse(Array(body.utf8)) == nil, "\(body)")
        }
    }

    @Test func textIsBoundedAndOnOneLine() throws {
        let long = String(repeating: "x", count: 5000)
        let body =
            #"{"error":{"code":"Bad\nRequest","message":"\#(long)","details":[\#(Array(repeating: #"{"code":"c","message":"m"}"#, count: 50).joined(separator: ","))]}}"#
        let error = try #require(CommunicationError.parse(Array(body.utf8)))
        #expect(error.code == "Bad Request")
        #expect(error.message.count == CommunicationError.maximumText + 1)
        #expect(error.details.count == CommunicationError.maximumDetails)
        var nested = #"{"code":"x"}"#
        for _ in 0..<20 { nested = #"{"code":"x","innererror":\#(nested)}"# }
        let deep = try #require(CommunicationError.parse(Array(#"{"error":{"code":"c","message":"m","innererror":\#(nested)}}"#.utf8)))
        #expect(deep.innerCodes.count == CommunicationError.maximumDepth)
    }
}
