/// The simulated contact center: a ring of `calls` slots, each holding one live call. Every event
/// advances the call in the next slot by one step of its script, so each call hears from the
/// platform every `calls / rate` seconds, and a capture window lasts two of those periods: at
/// 50,000 events/s with 10,000 calls that is 0.4 s, far longer than an action takes.
///
/// A call's script (one step per visit), GWS notification types in brackets:
///
///   0 Ringing [StatusChange]          4 PCI_STAGE=CARD, or other data [AttachedDataChanged]
///   1 Established [StatusChange]      5 more data, the capture goes on [AttachedDataChanged]
///   2 IVR data [AttachedDataChanged]  6 PCI_STAGE=DONE, or other data [AttachedDataChanged]
///   3 queue data [AttachedDataChanged] 7 wrap-up data [AttachedDataChanged]
///                                      8 Released [StatusChange]; a new call takes the slot
///
/// Each slot is one agent (DN 100000 + slot), so notifications carry 10,000 different
/// extensions. `capturePercent` of the calls take a card. Each confirmed action adds one event
/// (CallRecordingStateChange or StatusChange), so a capturing call makes 13 events and the others 9.
struct Traffic: Sendable {
    struct Call: Sendable {
        var serial: Int
        var id: String
        var step: Int
        var captures: Bool
        var muted = false
        var paused = false
    }

    static let steps = 9
    let capturePercent: Int
    var baseURL: String
    private(set) var slots: [Call] = []
    private var nextSerial = 0
    private var cursor = 0
    private var messageID = 0

    /// Fills every slot with a call already under way, at staggered steps so that captures are
    /// spread evenly over time; the daemon learns of them from its resync (`GET /api/v2/me/calls`).
    /// A call first seen past step 3 never captures, so no window is open before the stream starts.
    init(calls: Int, capturePercent: Int, baseURL: String) {
        self.capturePercent = capturePercent
        self.baseURL = baseURL
        slots.reserveCapacity(calls)
        for index in 0..<calls {
            let done = index % (Traffic.steps - 1)
            var call = makeCall(slot: index)
            call.step = done + 1
            if done >= 4 { call.captures = false }
            slots.append(call)
        }
    }

    private mutating func makeCall(slot: Int) -> Call {
        let serial = nextSerial
        nextSerial += 1
        return Call(
            serial: serial, id: "00LG" + hex(slot, digits: 6) + hex(serial, digits: 10), step: 0,
            captures: serial % 100 < capturePercent)
    }

    /// The agent's DN: one agent per slot, as in a center where each seat has one call at a time.
    static func agentNumber(of call: Call) -> Int { 100_000 + (slot(of: call.id) ?? 0) }

    /// The slot a call id names (its 6 hex digits after the prefix), for confirmations.
    static func slot(of callID: String) -> Int? {
        let utf8 = Array(callID.utf8)
        guard utf8.count == 20 else { return nil }
        var value = 0
        for byte in utf8[4..<10] {
            guard let digit = hexValue(byte) else { return nil }
            value = value << 4 | digit
        }
        return value
    }

    var callCount: Int { slots.count }

    // MARK: - The stream

    /// Renders the next call event as one Bayeux message into `out`, and says whether it opens or
    /// closes a capture window.
    mutating func nextEvent(into out: inout ByteWriter) -> WindowEdge? {
        let index = cursor
        cursor = cursor + 1 == slots.count ? 0 : cursor + 1
        if slots[index].step >= Traffic.steps { slots[index] = makeCall(slot: index) }
        let call = slots[index]
        let step = call.step
        slots[index].step += 1
        let type: StaticString
        switch step {
        case 0, 1, 8: type = "StatusChange"
        default: type = "AttachedDataChanged"
        }
        render(call, doneStep: step, notificationType: type, into: &out)
        guard call.captures else { return nil }
        if step == 4 { return WindowEdge(callID: call.id, opening: true) }
        if step == 6 { return WindowEdge(callID: call.id, opening: false) }
        return nil
    }

    /// What GWS publishes once T-Server has carried out an operation: the whole call, with its new
    /// mute or recording state. Nothing if the call has ended meanwhile.
    mutating func confirm(callID: String, operation: Operation, into out: inout ByteWriter) -> Bool {
        guard let index = Traffic.slot(of: callID), index < slots.count, slots[index].id == callID,
            slots[index].step > 0, slots[index].step <= 8
        else { return false }
        let type: StaticString
        switch operation {
        case .mute: slots[index].muted = true; type = "StatusChange"
        case .unmute: slots[index].muted = false; type = "StatusChange"
        case .pauseRecording: slots[index].paused = true; type = "CallRecordingStateChange"
        case .resumeRecording: slots[index].paused = false; type = "CallRecordingStateChange"
        }
        render(slots[index], doneStep: slots[index].step - 1, notificationType: type, into: &out)
        return true
    }

    // MARK: - Rendering

    private mutating func render(_ call: Call, doneStep: Int, notificationType: StaticString, into out: inout ByteWriter) {
        messageID += 1
        out.raw(#"{"channel":"/v2/me/calls","id":""#)
        out.int(messageID)
        out.raw(#"","data":{"messageType":"CallStateChangeMessage","notificationType":""#)
        out.raw(notificationType)
        out.raw(#"","phoneNumber":""#)
        out.int(Traffic.agentNumber(of: call))
        out.raw(#"","call":"#)
        renderCall(call, doneStep: doneStep, full: true, into: &out)
        out.raw("}}")
    }

    /// One call resource as of the step it has just done. `full` adds what notifications carry
    /// and the resync listing can do without (capabilities, uris), which keeps a 10,000-call
    /// listing well under the daemon's 4 MiB reply cap.
    func renderCall(_ call: Call, doneStep: Int, full: Bool, into out: inout ByteWriter) {
        let state: StaticString = doneStep == 0 ? "Ringing" : doneStep >= 8 ? "Released" : "Established"
        out.raw(#"{"id":""#)
        out.raw(call.id)
        out.raw(#"","callUuid":""#)
        out.raw(call.id)
        out.raw(#"","connId":""#)
        out.raw(hex(call.serial &* 2_654_435_761 & 0xFFFF_FFFF, digits: 8))
        out.raw(#"","state":""#)
        out.raw(state)
        out.raw(#"","callType":"Inbound","ani":"5551234","dnis":"3002","mute":""#)
        out.raw(call.muted ? "On" : "Off")
        out.raw(#"","recordingState":""#)
        out.raw(call.paused ? "Paused" : "Recording")
        out.raw(#"","participants":[{"digits":"5551234","phoneNumber":"5551234"}],"userData":{"IVR_LANG":"en","ACCOUNT_ID":"A"#)
        out.int(call.serial)
        out.raw(#"""#)
        if doneStep >= 2 { out.raw(#","INTENT":"#); out.raw(call.captures ? #""payment""# : #""billing""#) }
        if doneStep >= 3 { out.raw(#","QUEUE":"Q3","AGENT_SKILL":"payments-en""#) }
        if doneStep >= 4 {
            if call.captures {
                out.raw(doneStep >= 6 ? #","PCI_STAGE":"DONE""# : #","PCI_STAGE":"CARD""#)
            } else {
                out.raw(#","NOTE":"callback requested""#)
            }
        }
        if doneStep >= 5 { out.raw(#","PCI_ATTEMPT":"1""#) }
        if doneStep >= 7 { out.raw(#","DISPOSITION":"resolved""#) }
        if call.paused { out.raw(#","GSIP_RECORD":"PAUSED""#) }
        out.byte("}")
        if full {
            out.raw(#","capabilities":["#)
            switch doneStep {
            case 0: out.raw(#""Answer","AttachUserData","UpdateUserData","DeleteUserData""#)
            case 8: break
            default:
                out.raw(#""AttachUserData","UpdateUserData","DeleteUserData","Hangup","SendDtmf","Hold","#)
                out.raw(call.muted ? #""UnmuteCall","# : #""MuteCall","#)
                out.raw(call.paused ? #""ResumeCallRecording","StopCallRecording""# : #""PauseCallRecording","StopCallRecording""#)
            }
            out.raw(#"],"uri":""#)
            out.raw(baseURL)
            out.raw("/api/v2/me/calls/")
            out.raw(call.id)
            out.raw(#"","path":"/calls/"#)
            out.raw(call.id)
            out.byte("\"")
        }
        out.byte("}")
    }

    /// `GET /api/v2/me/calls`: every live call, as of its last step.
    func renderCallList() -> [UInt8] {
        var out = ByteWriter(capacity: slots.count * 400)
        out.raw(#"{"statusCode":0,"calls":["#)
        var first = true
        for call in slots where call.step > 0 && call.step < Traffic.steps {
            if !first { out.byte(",") }
            first = false
            renderCall(call, doneStep: call.step - 1, full: false, into: &out)
        }
        out.raw("]}")
        return out.bytes
    }
}

private let hexDigits = Array("0123456789ABCDEF".utf8)

func hex(_ value: Int, digits: Int) -> String {
    var bytes = [UInt8](repeating: 0, count: digits)
    var rest = value
    for index in stride(from: digits - 1, through: 0, by: -1) {
        bytes[index] = hexDigits[rest & 0xF]
        rest >>= 4
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
    default: nil
    }
}
