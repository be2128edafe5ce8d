import FuzzDriver
import MutewardenJSON
import MutewardenModel
import MutewardenVoicenter

/// Voicenter's platform input: real-time payloads, a session of them, a login answer, a
/// MuteUnmuteCalls answer. Mapped or refused, never a trap; and what the feed's logic hands on
/// holds together. Payloads are mapped both from a built `JSONValue` and read in place from a
/// `JSONDocument`, which must agree.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    // The REST answers are read from bytes, as they arrive.
    check(VoicenterMuteAPI.classify(httpStatus: 200, body: Array(bytes), operation: "op"), bytes: bytes)
    _ = VoicenterTime.expiry(.string(String(decoding: bytes, as: UTF8.self)))
    guard let value = try? JSONValue.parse(bytes) else { return 0 }
    _ = try? VoicenterLoginAnswer.parse(value, obtainedAt: 1_717_000_000_000_000_000)
    // The feed reads payloads in place (a JSONDocument's node); the tree is the reference: both
    // must map to the same result.
    guard let node = try? JSONDocument.parse(bytes).root else { fatalError("the document refuses what the tree parser reads") }
    let snapshot = Result { () throws(VoicenterEvents.Malformed) in try VoicenterEvents.snapshot(value, feed: "vc", field: .extenUser) }
    let snapshotInPlace = Result { () throws(VoicenterEvents.Malformed) in try VoicenterEvents.snapshot(node, feed: "vc", field: .extenUser) }
    precondition(snapshot == snapshotInPlace, "the snapshot read in place differs")
    let event = Result { () throws(VoicenterEvents.Malformed) in try VoicenterEvents.extensionEvent(value, feed: "vc", field: .number) }
    let eventInPlace = Result { () throws(VoicenterEvents.Malformed) in try VoicenterEvents.extensionEvent(node, feed: "vc", field: .number) }
    precondition(event == eventInPlace, "the extension event read in place differs")

    var core = VoicenterFeedCore(configuration: .init(feed: "vc", snapshotWait: .seconds(1), resyncInterval: .seconds(10)))
    var now = MonotonicInstant.zero
    check(core.connected(at: now))
    // A list of `[name, data]` pairs is a session; anything else is one payload of each kind.
    let events: [(String, JSONValue)] =
        value.array?.compactMap { pair in
            guard let name = pair.array?.first?.string, let data = pair.array?.dropFirst().first else { return nil }
            return (name, data)
        } ?? []
    // The same session through a second core, each payload read in place: the same outputs.
    var inPlace = VoicenterFeedCore(configuration: core.configuration)
    _ = inPlace.connected(at: now)
    for (name, payload) in events.isEmpty ? [("AllExtensionsStatus", value), ("ExtensionEvent", value), ("keepaliveResponse", value)] : events {
        now = now + .milliseconds(700)
        let outputs = core.received(name, payload, at: now)
        check(outputs)
        precondition(inPlace.received(name, JSONDocument(payload).root, at: now) == outputs, "the feed's outputs read in place differ")
        check(core.tick(at: now))
        _ = inPlace.tick(at: now)
    }
    check(core.tick(at: now + .seconds(300)))
    return 0
}

/// A call update names its call with a non-empty id free of control characters; a snapshot lists
/// each call once; an ended call carries no attributes.
private func check(_ outputs: [VoicenterFeedCore.Output]) {
    for output in outputs {
        switch output {
        case .deliver(let updates):
            for update in updates {
                checkID(update.ids.primary)
                if update.state == .released { precondition(update.attributes == nil, "an ended call carries attributes") }
            }
        case .resync(let calls):
            for call in calls { checkID(call.ids.primary) }
            precondition(Set(calls.map(\.ids.primary)).count == calls.count, "a snapshot lists a call twice")
        case .ready, .keepalive, .emit, .report, .reconnect:
            break
        }
    }
}

private func checkID(_ id: String) {
    precondition(!id.isEmpty && !id.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "an unusable call id")
}

/// Only an ErrorCode of 200 is accepted.
private func check(_ result: ActionAttemptResult, bytes: UnsafeBufferPointer<UInt8>) {
    guard result == .accepted else { return }
    let answer = try? JSONValue.parse(bytes)
    let code = answer?["ErrorCode"] ?? answer?["errorCode"]
    precondition(code?.int == 200 || code?.string.flatMap { Int($0.filter { $0 != " " }) } == 200, "accepted without ErrorCode 200")
}

runFuzzer(fuzz)
