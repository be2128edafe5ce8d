import FuzzDriver
import MutewardenGraph
import MutewardenModel

/// Graph's platform input: a callback's body (commsNotifications, a lone notification, the legacy
/// format), read into notifications and through the feed's logic with the operations the target
/// reports, and the same bytes as the calls API's answer. Read or refused, never a trap; and what
/// the feed's logic hands on holds together.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for status in [200, 202, 401, 404] {
        if case .failed(let failure) = GraphCallsAPI.classify(
            httpStatus: status, body: bytes, operation: .updateRecordingStatus(call: "c", recording: false))
        {
            precondition(!failure.message.unicodeScalars.contains { $0.value < 0x20 }, "a control character in a failure")
        }
    }
    guard case .notifications(let batch)? = try? GraphNotifications.parse(bytes) else { return 0 }
    for notification in batch.notifications { checkID(notification.callID) }
    for configuration in [
        GraphFeedCore.Configuration(feed: "g", agent: .bot(appID: "app-1"), maximumCalls: 4, maximumPendingOperations: 4),
        GraphFeedCore.Configuration(feed: "g", agent: .participant(kinds: ["user"], idPrefix: nil), maximumCalls: 4),
    ] {
        var core = GraphFeedCore(configuration: configuration)
        var now = MonotonicInstant(nanoseconds: 1_000_000_000)
        for (index, notification) in batch.notifications.enumerated() {
            // The target's messages about the calls the notifications name, as if it had sent operations.
            check(
                core.receive(
                    .running(
                        clientContext: "key-\(index)", operationID: nil, call: notification.callID, operation: "op",
                        effect: .recording(.paused)), now: now))
            check(core.receive(.completed(call: notification.callID, effect: .recording(.recording)), now: now))
        }
        check(core.receive(batch, now: now))
        now = now + .seconds(6)
        check(core.tick(now: now))
        check(core.tick(now: now + .seconds(86_400)))
        precondition(core.trackedCalls == 0 && core.pendingOperations == 0, "a call or an operation outlives every limit")
    }
    return 0
}

/// A call update names its call with a usable id; a released call carries no keying; the tone
/// never reaches an attribute.
private func check(_ outputs: [GraphFeedCore.Output]) {
    for output in outputs {
        guard case .deliver(let updates) = output else { continue }
        for update in updates {
            checkID(update.ids.primary)
            if update.state == .released { precondition(update.attributes?.isEmpty ?? true, "an ended call carries attributes") }
            for value in update.attributes?.values ?? [:].values {
                precondition(value == GraphFeedCore.keyingValue, "an attribute other than the keying flag")
            }
        }
    }
}

private func checkID(_ id: String) {
    precondition(!id.isEmpty && !id.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F }, "an unusable call id")
}

runFuzzer(fuzz)
