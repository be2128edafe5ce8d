/// The simulated Voicenter center: a ring of extensions (agents). Every event advances the next
/// extension's script by one step, so each extension hears from the platform every
/// `extensions / rate` seconds. An episode of the script, ExtensionEvent reasons in brackets:
///
///   0 a customer call A comes in [NEWCALL]          4 B is answered [ANSWER]
///   1 the agent answers A [ANSWER]                  5 A is back: PCI_STAGE=DONE, or other data [UNHOLD]
///   2 A on hold: PCI_STAGE=CARD, or other data [HOLD] 6 B ends [HANGUP]
///   3 the agent dials out meanwhile: call B [NEWCALL] 7 A ends [HANGUP]; the next visit starts an episode
///
/// The card is taken while the customer waits on hold and the agent calls out, which is the case
/// the issue is about: Voicenter's "mute the extension" does not reach a call made after it, so
/// the daemon's window, scoped to the extension, must pause B the moment B appears. A capturing
/// episode (`capturePercent` of them) expects: at step 2, A paused; at step 3, B paused (timed
/// apart, `Ledger.Kind.newCall`); at step 5, A and B resumed, since closing a window undoes it on
/// every call it covered. Each confirmed MuteUnmuteCalls adds an ExtensionEvent showing the call's
/// new `recording.IsMuted`. A non-capturing episode runs the same steps and calls for nothing.
///
/// An extension holds 1.25 live calls on average (1, 1, 1, 2, 2, 2, 1 and 0 after each step), so
/// `calls` concurrent calls take `calls × 4 / 5` extensions.
struct VoicenterTraffic: Sendable {
    struct Call: Sendable {
        /// 19 digits, as real ivrids begin (platform-apis.md §3: about one in ten passes the Luhn
        /// check, and the daemon must log them whole): `1733`, the extension, the call number.
        var ivrid: String
        /// B, the call the agent makes; A, the customer's, otherwise.
        var isOutgoing: Bool
        var phone: String
        var startedAt: Int
        var muted = false
    }

    struct Extension: Sendable {
        let index: Int
        /// `extenUser`, the SIP ID that MuteUnmuteCalls' `extension` takes: 8 characters.
        let sipID: String
        /// Episodes started on this extension, which number its calls.
        var episodes = 0
        /// The next step of the script; 8 once the episode is over.
        var step: Int
        var captures = false
        var customer: Call?
        var outgoing: Call?
        var lastHangupAt = 0
    }

    /// One action the written event calls for, and the frame of its chunk that carries it.
    struct Expectation: Sendable {
        var key: Ledger.Key
        var kind: Ledger.Kind
        var frame: Int
    }

    static let steps = 8
    let capturePercent: Int
    private(set) var extensions: [Extension] = []
    private var episodeSerial = 0
    private var cursor = 0
    /// Wall-clock seconds, for the payloads' times; the generator sets it once per tick.
    var now = 0

    /// Extensions for `calls` concurrent calls on average.
    static func extensionCount(calls: Int) -> Int { max(1, calls * 4 / 5) }

    /// Every extension mid-episode, at staggered steps so that captures are spread evenly over time;
    /// the daemon learns of the calls from the snapshot it is sent on connecting. An episode first
    /// seen at step 2 or later never captures, so no window is open before the stream starts.
    init(calls: Int, capturePercent: Int, now: Int) {
        self.capturePercent = capturePercent
        self.now = now
        let count = Self.extensionCount(calls: calls)
        extensions.reserveCapacity(count)
        for index in 0..<count {
            let sipID = "lg" + hex(index, digits: 6)
            var agent = Extension(index: index, sipID: sipID, step: 0)
            let done = index % Self.steps
            if done < Self.steps - 1 {
                startEpisode(&agent)
                agent.customer = makeCall(agent, leg: 0, startedAt: now - 60)
                if done >= 3 { agent.outgoing = makeCall(agent, leg: 1, startedAt: now - 20) }
                if done >= 6 { agent.outgoing = nil }
                if done >= 2 { agent.captures = false }
                agent.step = done + 1
            } else {
                agent.step = Self.steps
            }
            extensions.append(agent)
        }
    }

    private mutating func startEpisode(_ agent: inout Extension) {
        agent.episodes += 1
        agent.captures = episodeSerial % 100 < capturePercent
        episodeSerial += 1
        agent.customer = nil
        agent.outgoing = nil
    }

    private func makeCall(_ agent: Extension, leg: Int, startedAt: Int) -> Call {
        let number = agent.episodes * 2 + leg
        return Call(
            ivrid: "1733" + decimal(agent.index, digits: 6) + decimal(number, digits: 9), isOutgoing: leg == 1,
            phone: "05" + decimal((agent.index &* 7_919 &+ number &* 104_729) % 100_000_000, digits: 8), startedAt: startedAt)
    }

    /// The extension and call number an ivrid names, for confirmations.
    static func parse(ivrid: String) -> (extension: Int, number: Int)? {
        let utf8 = Array(ivrid.utf8)
        guard utf8.count == 19, utf8.starts(with: Array("1733".utf8)) else { return nil }
        var agent = 0
        var number = 0
        for (offset, byte) in utf8[4...].enumerated() {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            if offset < 6 {
                agent = agent * 10 + Int(byte - UInt8(ascii: "0"))
            } else {
                number = number * 10 + Int(byte - UInt8(ascii: "0"))
            }
        }
        return (agent, number)
    }

    // MARK: - The stream

    /// Renders the next extension's next step as one socket.io packet into `out`, and appends
    /// the actions it calls for (their frame: `frame`).
    mutating func nextEvent(frame: Int, into out: inout ByteWriter, expecting expectations: inout [Expectation]) {
        let index = cursor
        cursor = cursor + 1 == extensions.count ? 0 : cursor + 1
        var agent = extensions[index]
        if agent.step >= Self.steps {
            startEpisode(&agent)
            agent.step = 0
        }
        let step = agent.step
        agent.step += 1
        let reason: StaticString
        var current: Call?
        var ended = false
        switch step {
        case 0:
            agent.customer = makeCall(agent, leg: 0, startedAt: now)
            reason = "NEWCALL"
            current = agent.customer
        case 1:
            reason = "ANSWER"
            current = agent.customer
        case 2:
            reason = "HOLD"
            current = agent.customer
            if agent.captures, let customer = agent.customer {
                expectations.append(Expectation(key: Ledger.Key(callID: customer.ivrid, operation: .pauseRecording), kind: .windowEdge, frame: frame))
            }
        case 3:
            agent.outgoing = makeCall(agent, leg: 1, startedAt: now)
            reason = "NEWCALL"
            current = agent.outgoing
            if agent.captures, let outgoing = agent.outgoing {
                expectations.append(Expectation(key: Ledger.Key(callID: outgoing.ivrid, operation: .pauseRecording), kind: .newCall, frame: frame))
            }
        case 4:
            reason = "ANSWER"
            current = agent.outgoing
        case 5:
            reason = "UNHOLD"
            current = agent.customer
            if agent.captures {
                for call in [agent.customer, agent.outgoing].compactMap({ $0 }) {
                    expectations.append(
                        Expectation(key: Ledger.Key(callID: call.ivrid, operation: .resumeRecording), kind: .windowEdge, frame: frame))
                }
            }
        case 6:
            reason = "HANGUP"
            current = agent.outgoing
            ended = true
            agent.outgoing = nil
            agent.lastHangupAt = now
        default:
            reason = "HANGUP"
            current = agent.customer
            ended = true
            agent.customer = nil
            agent.lastHangupAt = now
        }
        extensions[index] = agent
        renderEvent(agent, reason: reason, current: current, ended: ended, into: &out)
    }

    /// What the platform publishes once MuteUnmuteCalls has taken effect: the extension, with the
    /// call's new `recording.IsMuted`. Nothing if the call has ended meanwhile.
    mutating func confirm(callID: String, operation: Operation, into out: inout ByteWriter) -> Bool {
        guard let (index, number) = Self.parse(ivrid: callID), index < extensions.count else { return false }
        var agent = extensions[index]
        let muted = operation == .pauseRecording
        let current: Call
        if number == agent.episodes * 2, var customer = agent.customer {
            customer.muted = muted
            agent.customer = customer
            current = customer
        } else if number == agent.episodes * 2 + 1, var outgoing = agent.outgoing {
            outgoing.muted = muted
            agent.outgoing = outgoing
            current = outgoing
        } else {
            return false
        }
        extensions[index] = agent
        renderEvent(agent, reason: status(of: current, in: agent).reason, current: current, ended: false, into: &out)
        return true
    }

    /// A live call's `callstatus`.
    enum Status {
        case ringing, dialing, talking, hold

        var text: StaticString {
            switch self {
            case .ringing: "Ringing"
            case .dialing: "Dialing"
            case .talking: "Talking"
            case .hold: "Hold"
            }
        }

        /// The platform does not document which reason a recording change comes with: the
        /// reason of the call's own last change is sent, so that the stream holds nothing the
        /// daemon would not see otherwise.
        var reason: StaticString {
            switch self {
            case .ringing, .dialing: "NEWCALL"
            case .talking: "ANSWER"
            case .hold: "HOLD"
            }
        }
    }

    /// A call's status after the steps its extension has done (an ended call's, as it was).
    func status(of call: Call, in agent: Extension) -> Status {
        let done = agent.step - 1
        if call.isOutgoing { return done == 3 ? .dialing : .talking }
        switch done {
        case 0: return .ringing
        case 2...4: return .hold
        default: return .talking
        }
    }
}

private let decimalDigits = Array("0123456789".utf8)

/// `value` in `digits` decimal digits, zero-padded (and cut to its low digits if larger).
func decimal(_ value: Int, digits: Int) -> String {
    var bytes = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
    var rest = value
    for index in stride(from: digits - 1, through: 0, by: -1) {
        bytes[index] = decimalDigits[rest % 10]
        rest /= 10
    }
    return String(decoding: bytes, as: UTF8.self)
}
