/// Voicenter's Real-Time payloads, written straight into bytes: the generator renders thousands a
/// second and must stay far from being the bottleneck. Shapes are those of the vendor's SDK types
/// and of a recorded session (platform-apis.md §3), which is what the daemon's provider reads.
extension VoicenterTraffic {
    /// `42["ExtensionEvent",{…}]`: the extension's whole state after something happened to
    /// `current`; on HANGUP, `current` is the call that ended (`data.currentCall`) and the live
    /// ones are `data.calls`, and the top-level id is spelled `ivruniqueid`, as in the recording.
    func renderEvent(_ agent: Extension, reason: StaticString, current: Call?, ended: Bool, into out: inout ByteWriter) {
        SocketIOFraming.beginEvent("ExtensionEvent", into: &out)
        out.raw(#"{"eventName":"extension","reason":""#)
        out.raw(reason)
        out.raw(#"","servertime":"#)
        out.int(serverTime)
        out.raw(#","servertimeoffset":120"#)
        if let current {
            out.raw(ended ? #","cause":"Normal hangup","ivruniqueid":"# : #","ivrUniqueId":"#)
            out.quoted(current.ivrid)
            out.raw(#","callerID":"#)
            out.quoted(current.phone)
        }
        out.raw(#","data":"#)
        renderExtension(agent, current: current, full: true, into: &out)
        out.byte("}")
        SocketIOFraming.endEvent(into: &out)
    }

    /// `42["AllExtensionsStatus",{…}]`: every extension and its live calls. Leaner than the events
    /// (no SIP channels, file names or counters), which keeps 10,000 calls near 3 MB, under the
    /// 4 MiB that a socket.io client takes in one message by default.
    func renderSnapshot(into out: inout ByteWriter) {
        SocketIOFraming.beginEvent("AllExtensionsStatus", into: &out)
        out.raw(#"{"errorCode":0,"errorDesc":"","servertime":"#)
        out.int(serverTime)
        out.raw(#","servertimeoffset":120,"extensions":["#)
        for index in extensions.indices {
            if index > 0 { out.byte(",") }
            renderExtension(extensions[index], current: nil, full: false, into: &out)
        }
        out.raw("]}")
        SocketIOFraming.endEvent(into: &out)
    }

    /// Local time two hours ahead of UTC, as the recorded session's server stated it.
    private var serverTime: Int { now + 7200 }

    private func renderExtension(_ agent: Extension, current: Call?, full: Bool, into out: inout ByteWriter) {
        out.raw(#"{"userID":"#)
        out.int(10_000 + agent.index)
        out.raw(#","userName":"Agent "#)
        out.int(agent.index)
        out.raw(#"","number":"#)
        out.int(100_000 + agent.index)
        out.raw(#","extenUser":"#)
        out.quoted(agent.sipID)
        if full {
            out.raw(#","accountID":77,"peerStatus":"OK","representative":1,"representativeStatus":1,"onlineUserID":"#)
            out.int(50_000 + agent.index)
            out.raw(#","lastCallEventEpoch":"#)
            out.int(serverTime)
            out.raw(#","lastHangupCallEpoch":"#)
            out.int(agent.lastHangupAt == 0 ? 0 : agent.lastHangupAt + 7200)
        }
        out.raw(#","calls":["#)
        if let customer = agent.customer { renderCall(customer, in: agent, full: full, into: &out) }
        if let outgoing = agent.outgoing {
            if agent.customer != nil { out.byte(",") }
            renderCall(outgoing, in: agent, full: full, into: &out)
        }
        out.byte("]")
        if let current {
            out.raw(#","currentCall":"#)
            renderCall(current, in: agent, full: full, into: &out)
        }
        out.byte("}")
    }

    private func renderCall(_ call: Call, in agent: Extension, full: Bool, into out: inout ByteWriter) {
        let status = status(of: call, in: agent)
        out.raw(#"{"ivrid":"#)
        out.quoted(call.ivrid)
        out.raw(#","callstatus":""#)
        out.raw(status.text)
        out.raw(call.isOutgoing ? #"","direction":"Outgoing""# : #"","direction":"Incoming""#)
        let answered = status != .ringing && status != .dialing
        if full {
            out.raw(answered ? #","answered":1,"callStarted":"# : #","answered":0,"callStarted":"#)
            out.int(call.startedAt + 7200)
            out.raw(#","callAnswered":"#)
            out.int(answered ? call.startedAt + 7210 : 0)
        }
        out.raw(#","callerphone":"#)
        out.quoted(call.phone)
        if full {
            out.raw(#","callername":"","did":"0722000000","channel":"SIP/"#)
            out.raw(agent.sipID)
            out.byte("-")
            out.raw(String(call.ivrid.suffix(8)))
            out.raw(#"","channel 2":"","ip":"10.0.0.1","isInternal":0"#)
        }
        out.raw(call.muted ? #","recording":{"IsMuted":1"# : #","recording":{"IsMuted":0"#)
        if full {
            out.raw(#","Options":"","Filename":""#)
            out.raw(call.ivrid)
            out.raw(#".wav","ApproximateURL":"""#)
        }
        out.raw(#"},"customdata":"#)
        renderCustomData(call, in: agent, into: &out)
        if full {
            out.raw(#","calldurationinterval":"#)
            out.int(max(0, now - call.startedAt))
        }
        out.byte("}")
    }

    /// The customer call's data grows with the script, as an IVR and the agent's desktop attach
    /// it; the call the agent makes carries its purpose only.
    private func renderCustomData(_ call: Call, in agent: Extension, into out: inout ByteWriter) {
        if call.isOutgoing {
            out.raw(#"{"PURPOSE":"authorization"}"#)
            return
        }
        let done = agent.step - 1
        out.raw(#"{"IVR_LANG":"he","ACCOUNT_ID":"A"#)
        out.int(agent.index)
        out.byte("-")
        out.int(agent.episodes)
        out.byte("\"")
        if done >= 1 { out.raw(agent.captures ? #","INTENT":"payment""# : #","INTENT":"billing""#) }
        if done >= 2 {
            if agent.captures {
                out.raw(done >= 5 ? #","PCI_STAGE":"DONE""# : #","PCI_STAGE":"CARD""#)
            } else {
                out.raw(#","NOTE":"callback requested""#)
            }
        }
        if done >= 5 { out.raw(#","DISPOSITION":"resolved""#) }
        out.byte("}")
    }
}
