// socket.io feed throughput: events per second from a recorded stream of Voicenter-shaped
// socket.io frames (`42["ExtensionEvent",{…}]`, 1 to 2 KiB each, with the server's pings among
// them), decoded by the packet codec and run through the session state machine, on one core,
// with no network. Usage: mutewarden-socketio-bench [--events N] [--rounds N] [--version 3|4]
// [--stage session|voicenter]
//
// The stages are consumers of the decoded events (`stages` below): `session` counts them;
// `voicenter` maps them through the feed's logic into an engine, fed the same stream.
import MutewardenEngine
import MutewardenJSON
import MutewardenModel
import MutewardenSocketIO
import MutewardenVoicenter

#if canImport(Glibc)
import Glibc
#endif

var eventCount = 300_000
var rounds = 5
var version = EngineIOVersion.v3
/// One stage alone, without the parser-only and codec-only lines: what a profiler is pointed at.
var onlyStage: String?
var iterator = CommandLine.arguments.dropFirst().makeIterator()
while let flag = iterator.next() {
    if flag == "--stage", let name = iterator.next() {
        onlyStage = name
        continue
    }
    guard let value = iterator.next().flatMap(Int.init), value > 0 else {
        print("usage: mutewarden-socketio-bench [--events N] [--rounds N] [--version 3|4] [--stage session|voicenter]")
        exit(64)
    }
    switch flag {
    case "--events": eventCount = value
    case "--rounds": rounds = value
    case "--version":
        guard let chosen = EngineIOVersion(rawValue: value) else {
            print("--version is 3 or 4")
            exit(64)
        }
        version = chosen
    default:
        print("unknown option \(flag)")
        exit(64)
    }
}

/// One ExtensionEvent as Voicenter sends it (the documented Extension and ExtensionCall fields,
/// with values shaped as in a recorded session): an ivrid of 19 digits and a suffix, customdata,
/// the recording state. One live call makes it about 1.4 KiB, two about 1.9 KiB.
///
/// Events come in cycles of five on one extension: NEWCALL, ANSWER, HOLD, UNHOLD, HANGUP of one
/// call, so that the engine sees what a contact center sends it (mostly updates of calls it
/// tracks, a new call every fifth event, each ended by its HANGUP) rather than a new call at every
/// event, which filled its tracker. Every other cycle the extension also has a second, held call
/// that lasts (one per extension).
func extensionEvent(_ index: Int) -> String {
    let reasons = ["NEWCALL", "ANSWER", "HOLD", "UNHOLD", "HANGUP"]
    let reason = reasons[index % reasons.count]
    let cycle = index / reasons.count
    let extensionNumber = 200 + cycle % 500
    let calls = 1 + cycle % 2
    func call(_ n: Int) -> String {
        let ivrid = n == 0 ? "\(1_700_000_000_000_000_000 + cycle % 1_000_000_000)-0" : "\(1_800_000_000_000_000_000 + extensionNumber)-1"
        return """
            {"ivrid":"\(ivrid)","callstatus":"\(n == 0 ? "Talking" : "Hold")","direction":"Incoming","callType":1,"answered":1,\
            "callStarted":\(1_700_000_000 + index),"callAnswered":\(1_700_000_005 + index),"callerphone":"0501234\(String(format: "%03d", n))",\
            "callername":"Customer \(n)","did":"0733123456","channel":"SIP/KGpK4iWq-0000\(n)","channel 2":"SIP/trunk-0000\(n)",\
            "ip":"10.0.0.\(n + 1)","queueID":12,"isInternal":0,\
            "recording":{"IsMuted":\(cycle % 4 == 1 && n == 0 ? 1 : 0),"Options":0,"Filename":"rec-\(ivrid).mp3","ApproximateURL":""},\
            "customdata":{"PCI_STAGE":"\(cycle % 4 == 1 && n == 0 ? "CARD" : "NONE")","CRM":"acct-\(cycle % 9973)"},\
            "calldurationinterval":\(index % 600)}
            """
    }
    // On HANGUP the ended call is `currentCall` and `calls` lists the live ones.
    let live = reason == "HANGUP" ? Array(1..<calls) : Array(0..<calls)
    let callList = live.map(call).joined(separator: ",")
    return """
        42["ExtensionEvent",{"eventName":"ExtensionEvent","reason":"\(reason)",\
        "data":{"userID":\(10_000 + extensionNumber),"userName":"Agent \(extensionNumber)","number":\(extensionNumber),\
        "extenUser":"Kx\(String(format: "%06d", extensionNumber))","accountID":4242,"peerStatus":"OK","representative":\(extensionNumber),\
        "representativeStatus":1,"onlineUserID":\(extensionNumber),"calls":[\(callList)],"currentCall":\(call(0)),\
        "lastCallEventEpoch":\(1_700_000_000 + index),"lastHangupCallEpoch":\(1_699_999_000 + index)},\
        "callerID":"0501234000","dialStatus":"ANSWER","servertime":\(1_700_000_000 + index),"servertimeoffset":120}]
        """
}

// The recording: events of one or two live calls, and a server ping (v4) or our ping's pong
// (v3) every thousand events, as a 25 s heartbeat at some 40 events a second would have them.
var frames: [String] = []
frames.reserveCapacity(eventCount + eventCount / 1000)
for index in 0..<eventCount {
    frames.append(extensionEvent(index))
    if index % 1000 == 999 { frames.append(version == .v4 ? "2" : "3") }
}
let bytes = frames.reduce(0) { $0 + $1.utf8.count }
let sizes = frames.map(\.utf8.count).filter { $0 > 1 }
print(
    "mutewarden-socketio-bench: \(eventCount) recorded ExtensionEvent frames, \(version), "
        + "\(sizes.min()!)–\(sizes.max()!) bytes (mean \(bytes / frames.count)), \(bytes / 1_048_576) MiB")

/// A consumer of the decoded events: `session` only counts them; `voicenter` maps them and
/// ingests the updates into an engine, as mutewarden-gws-bench does for GWS.
struct Stage {
    var name: String
    var make: () -> (SocketIOEvent) -> Void
}

final class Counter {
    var events = 0
    var payloadMembers = 0
}

let counter = Counter()
let stages = [
    Stage(name: "session") {
        { event in
            counter.events += 1
            counter.payloadMembers += event.payloadNode.count ?? 0
        }
    },
    // The whole Voicenter path after the codec: the feed's logic maps each event to call updates
    // (one per call of the extension), which an engine ingests, sending and settling actions.
    Stage(name: "voicenter") {
        var core = VoicenterFeedCore(configuration: .init(feed: "vc"))
        _ = core.connected(at: .zero)
        let engine = try! Engine(
            configuration: EngineConfiguration(
                policies: [
                    PolicyDefinition(
                        name: "pause", feeds: ["vc"], start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
                        stop: .attributeIn(key: "PCI_STAGE", values: ["DONE", "NONE"]),
                        actions: [ActionSpec(kind: .pauseRecording, target: "rec")])
                ],
                targets: [TargetDescriptor(name: "rec", confirmsByEvent: true)]),
            options: EngineOptions(randomSeed: 1))
        var now = MonotonicInstant(nanoseconds: 1_000_000_000)
        return { event in
            counter.events += 1
            if counter.events & 1023 == 0 { now = now + .milliseconds(1) }
            for output in core.received(event.name, event.payloadNode, at: now) {
                guard case .deliver(let updates) = output else { continue }
                for update in updates { engine.ingest(update, at: now) }
                counter.payloadMembers += updates.count
            }
            if engine.hasEffects {
                for effect in engine.takeEffects() {
                    if case .send(_, let ticket) = effect { engine.attemptFinished(ticket, result: .accepted, at: now) }
                }
            }
        }
    },
]

/// This thread's CPU time in seconds: on a shared host, time the hypervisor gives to others
/// (steal) is not counted, unlike a wall clock's.
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// A session already connected, as the client holds one between handshakes.
func connectedSession(_ version: EngineIOVersion) -> SocketIOStateMachine {
    var session = SocketIOStateMachine(configuration: .init(version: version), transportUpAt: .zero)
    _ = session.received(text: #"0{"sid":"bench","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#, at: .zero)
    if version == .v4 { _ = session.received(text: #"40{"sid":"s"}"#, at: .zero) } else { _ = session.received(text: "40", at: .zero) }
    precondition(session.isConnected)
    return session
}

// The JSON parser alone on the frames' payloads, then the codec (which includes it), best of
// the rounds each: their shares of the session's figure.
if onlyStage == nil {
    let payloads = frames.filter { $0.utf8.count > 1 }.map { Array($0.utf8.dropFirst(2)) }
    var fastestParse = Double.infinity
    for _ in 1...rounds {
        let start = threadCPUSeconds()
        var parsed = 0
        for payload in payloads where (try? JSONValue.parse(payload)) != nil { parsed += 1 }
        precondition(parsed == payloads.count)
        fastestParse = min(fastestParse, threadCPUSeconds() - start)
    }
    print(
        "JSON parser only: \(String(format: "%.2f", fastestParse / Double(payloads.count) * 1e6)) µs of CPU a payload "
            + "(best of \(rounds))")

    // The same payloads validated and indexed, not built: what the session's events carry.
    var fastestIndex = Double.infinity
    for _ in 1...rounds {
        let start = threadCPUSeconds()
        var parsed = 0
        for payload in payloads where (try? JSONDocument.parse(payload)) != nil { parsed += 1 }
        precondition(parsed == payloads.count)
        fastestIndex = min(fastestIndex, threadCPUSeconds() - start)
    }
    print(
        "JSON document only: \(String(format: "%.2f", fastestIndex / Double(payloads.count) * 1e6)) µs of CPU a payload "
            + "(best of \(rounds))")

    var fastestDecode = Double.infinity
    for _ in 1...rounds {
        let start = threadCPUSeconds()
        var decoded = 0
        for frame in frames where (try? EngineIOPacket.decode(frame)) != nil { decoded += 1 }
        precondition(decoded == frames.count)
        fastestDecode = min(fastestDecode, threadCPUSeconds() - start)
    }
    print(
        "codec only (events built): \(Int(Double(frames.count) / fastestDecode)) frames/s, "
            + "\(String(format: "%.2f", fastestDecode / Double(frames.count) * 1e6)) µs of CPU a frame (best of \(rounds))")
}

if let onlyStage, !stages.contains(where: { $0.name == onlyStage }) {
    print("--stage is one of: \(stages.map(\.name).joined(separator: ", "))")
    exit(64)
}
for stage in stages where onlyStage == nil || stage.name == onlyStage {
    var best = Double.infinity
    for round in 1...rounds {
        let consume = stage.make()
        counter.events = 0
        var session = connectedSession(version)
        var now = MonotonicInstant(nanoseconds: 1_000_000_000)
        var skipped = 0
        let start = threadCPUSeconds()
        for (index, frame) in frames.enumerated() {
            if index & 1023 == 0 { now = now + .milliseconds(25) }
            switch session.received(text: frame, at: now) {
            case .event(let event): consume(event)
            case .send, .none: break
            default: skipped += 1
            }
        }
        let seconds = threadCPUSeconds() - start
        best = min(best, seconds)
        precondition(counter.events == eventCount && skipped == 0 && session.isConnected)
        print(
            "\(stage.name) round \(round): \(Int(Double(eventCount) / seconds)) events/s "
                + "(\(String(format: "%.1f", Double(bytes) / seconds / 1_048_576)) MiB/s)")
    }
    print(
        "\(stage.name): best \(Int(Double(eventCount) / best)) events/s on one core, "
            + "\(String(format: "%.2f", best / Double(eventCount) * 1e6)) µs of CPU an event")
}
