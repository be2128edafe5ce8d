import FuzzDriver
import MutewardenACS
import MutewardenJSON
import MutewardenModel

/// Call Automation's callbacks: any bytes as an event batch through ``ACSEvents/parse(_:maximumEvents:)``
/// and the feed's logic (``ACSFeedCore``), then, when the bytes are an array of arrays, each inner
/// array as one callback of a session, with time passing between them. Read or refused, never a
/// trap; and what the feed hands on holds together.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A small tracker bound, so that the fuzzer reaches it.
    let configuration = ACSFeedCore.Configuration(
        feed: "acs", keyingQuietPeriod: .seconds(5), idleLimit: .seconds(3600), maximumCalls: 4)
    var core = ACSFeedCore(configuration: configuration)
    var now = MonotonicInstant.zero
    var batches: [[UInt8]] = [bytes]
    if let value = try? JSONValue.parse(bytes, maximumDepth: 16), let list = value.array, list.allSatisfy({ $0.array != nil }) {
        batches = list.prefix(64).map { Array($0.serialized.utf8) }
    }
    for batch in batches {
        now = now + .milliseconds(1500)
        guard let parsed = try? ACSEvents.parse(batch) else { continue }
        for event in parsed.events { checkID(event.callConnectionID) }
        check(core.receive(parsed, now: now), configuration)
        precondition(core.trackedCalls <= configuration.maximumCalls, "more calls tracked than the bound")
        check(core.tick(now: now), configuration)
    }
    precondition((core.nextDeadline == nil) == (core.trackedCalls == 0), "a tracked call without a deadline, or a deadline without one")
    // Past every quiet period and the idle limit, every call is let go.
    check(core.tick(now: now + .seconds(3601)), configuration)
    precondition(core.trackedCalls == 0, "a call outlived the idle limit")
    return 0
}

/// A delivered call has a usable id; its only attribute is the keying one, whose value is never a
/// tone; an ended call is not keying.
private func check(_ outputs: [ACSFeedCore.Output], _ configuration: ACSFeedCore.Configuration) {
    for output in outputs {
        guard case .deliver(let updates) = output else { continue }
        for update in updates {
            checkID(update.ids.primary)
            for (key, value) in update.attributes ?? [:] {
                precondition(key == configuration.keyingAttribute && value == ACSFeedCore.keyingValue, "an attribute other than keying")
            }
            if update.state == .released { precondition(update.attributes?.isEmpty ?? true, "an ended call is keying") }
            if let agent = update.agentExtension { checkID(agent) }
        }
    }
}

private func checkID(_ id: String) {
    precondition(
        !id.isEmpty && id.utf8.count <= 512 && !id.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F }, "an unusable id")
}

runFuzzer(fuzz)
