import FuzzDriver
import MutewardenModel
import MutewardenSocketIO

/// Any bytes, twice: as one frame to the packet codec, and as a session of frames (split at
/// 0x1E, the record separator Engine.IO's long-polling joins packets with) to the state machine
/// of each Engine.IO version, with the time moved on between frames by the bytes themselves.
///
/// Checks: nothing traps; a decoded packet survives its encoding and a second decoding
/// unchanged; the event path that leaves arguments unbuilt (`SocketIOPacket.decodeEvent`) reads
/// exactly the events the decoder reads, the same; after the session's `close` action nothing else happens, and it ends as that
/// action said; a tick never leaves a deadline already due behind it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    if let packet = try? EngineIOPacket.decode(bytes) {
        let text = packet.encoded
        guard let again = try? EngineIOPacket.decode(text) else { fatalError("an encoded packet does not decode: \(text.prefix(200))") }
        if again != packet { fatalError("a round trip changed the packet: \(text.prefix(200))") }
    }
    // The state machine's path for events, which leaves their arguments unbuilt, answers only
    // for frames the full decoder makes the same event of, and for every such frame.
    let decoded = try? EngineIOPacket.decode(bytes)
    for namespace in ["/", "/ns"] {
        let event = SocketIOPacket.decodeEvent(frame: bytes, namespace: namespace)
        if case .message(.event(namespace, let name, let arguments, let ackID))? = decoded, bytes.count > 2 {
            guard let event else { fatalError("the event path refuses an event the decoder reads") }
            precondition(event == SocketIOEvent(name: name, arguments: arguments, ackID: ackID), "the event path reads another event")
            precondition(event.payload == (arguments.first ?? .null), "the event path reads another payload")
            precondition(event.payloadNode.value == (arguments.first ?? .null), "the unbuilt payload differs")
        } else {
            precondition(event == nil, "the event path reads a frame the decoder does not make that event of")
        }
    }
    let frames = bytes.split(separator: 0x1E, omittingEmptySubsequences: false)
    for version in [EngineIOVersion.v3, .v4] {
        var session = SocketIOStateMachine(
            configuration: .init(version: version, namespace: size % 7 == 0 ? "/ns" : "/", handshakeTimeout: .seconds(10)),
            transportUpAt: .zero)
        var now = MonotonicInstant.zero
        var end: SocketIOSessionEnd?
        for frame in frames {
            let text = String(decoding: frame, as: UTF8.self)
            var actions = [session.received(text: text, at: now)]
            // The first byte of a frame, if any, moves the clock on by up to 25.5 s.
            now = now + .milliseconds(Int64(frame.first ?? 0) * 100)
            actions.append(session.timerFired(at: now, unreadFrames: frame.count % 2 == 1))
            if let deadline = session.nextDeadline, deadline <= now { fatalError("a tick left a deadline already due") }
            if frame.count == 3 {
                actions.append((try? session.emit("e", [.string(text)], wantsAck: true)).map { .send($0.frame) } ?? .none)
            }
            for action in actions {
                if end != nil, action != .none { fatalError("an action after the end: \(action)") }
                if case .close(_, let closed) = action { end = closed }
            }
        }
        if let end, session.transportClosed(reason: "fuzz") != end { fatalError("the session ended otherwise than it said") }
    }
    return 0
}

runFuzzer(fuzz)
