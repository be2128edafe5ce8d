// GWS feed throughput: events per second from a recorded stream of GWS CometD messages, through
// the Bayeux client (long-poll replies parsed from bytes, events delivered), the GWS mapping and
// the engine, with no network. Usage: mutewarden-gws-bench [--events N] [--batch N] [--calls N]
import MutewardenBayeux
import MutewardenEngine
import MutewardenGenesys
import MutewardenJSON
import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

var events = 500_000
var batchSize = 100
var callCount = 2_000
var iterator = CommandLine.arguments.dropFirst().makeIterator()
while let flag = iterator.next() {
    guard let value = iterator.next().flatMap(Int.init), value > 0 else {
        print("usage: mutewarden-gws-bench [--events N] [--batch N] [--calls N]")
        exit(64)
    }
    switch flag {
    case "--events": events = value
    case "--batch": batchSize = value
    case "--calls": callCount = value
    default:
        print("unknown option \(flag)")
        exit(64)
    }
}

/// One GWS notification as GWS sends it, about 900 bytes: a call with attached data.
func notification(call: Int, step: Int) -> String {
    let stage = step % 20 == 5 ? "CARD" : (step % 20 == 9 ? "DONE" : "NONE")
    let state = step % 20 == 19 ? "Released" : "Established"
    let id = "00HLPA5Q24AT9D8VH0A0K2LA\(String(call, radix: 16))"
    return """
        {"data":{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","phoneNumber":"\(3000 + call % 500)",\
        "call":{"callType":"Inbound","callUuid":"\(id)","connId":"0071026ce59f\(call)","id":"\(id)","mute":"Off",\
        "recordingState":"Recording","state":"\(state)","duration":"\(step)",\
        "capabilities":["AttachUserData","UpdateUserData","Hangup","SendDtmf","Hold","StartCallRecording"],\
        "participants":[{"digits":"5551234","e164Number":"","formattedPhoneNumber":"5551234","phoneNumber":"5551234"}],\
        "userData":{"PCI_STAGE":"\(stage)","Queue":"billing","CRMStep":"\(step)","AccountNumber":"12345678"}}},\
        "channel":"/v2/me/calls","id":"\(step)"}
        """
}

// The recording: long-poll reply bodies as bytes, each events then the /meta/connect reply.
var replies: [[UInt8]] = []
var produced = 0
var step = 0
while produced < events {
    var body = "["
    for index in 0..<batchSize {
        body += notification(call: (produced + index) % callCount, step: step) + ","
        step += 1
    }
    body += #"{"channel":"/meta/connect","successful":true,"id":"c"}]"#
    replies.append(Array(body.utf8))
    produced += batchSize
}
let bytes = replies.reduce(0) { $0 + $1.count }
print("mutewarden-gws-bench: \(produced) recorded GWS events in \(replies.count) long-poll replies, \(bytes / 1_048_576) MiB")

/// Plays the recording: handshake and subscribe succeed, then each connect returns the next reply.
final class ReplayTransport: BayeuxTransport {
    let connectionType = "long-polling"
    let replies: [[UInt8]]
    let next = Atomic<Int>(0)
    let finished: @Sendable () -> Void

    init(replies: [[UInt8]], finished: @escaping @Sendable () -> Void) {
        self.replies = replies
        self.finished = finished
    }

    func exchange(_ batch: [JSONValue], timeout: Duration) async throws -> BayeuxMessages {
        switch batch.first?["channel"]?.string {
        case "/meta/handshake":
            return BayeuxMessages(
                [
                    try JSONValue.parse(
                        #"[{"channel":"/meta/handshake","successful":true,"clientId":"bench","supportedConnectionTypes":["long-polling"],"advice":{"reconnect":"retry","interval":0,"timeout":30000}}]"#
                    )
                    .array![0]
                ], byteCount: 200)
        case "/meta/subscribe":
            return BayeuxMessages(
                batch.map { message in
                    .object([("channel", .string("/meta/subscribe")), ("subscription", message["subscription"]!), ("successful", .bool(true))])
                }, byteCount: 100)
        default:
            let index = next.add(1, ordering: .relaxed).oldValue
            guard index < replies.count else {
                finished()
                throw CancellationError()
            }
            // Parsing the bytes is part of the work, as it is for the real transport.
            return BayeuxMessages(try JSONValue.parse(replies[index]).array ?? [], byteCount: replies[index].count)
        }
    }
}

/// The engine and its counters, touched only from the Bayeux client's delivery callback, which
/// runs on one task at a time.
final class Sink: @unchecked Sendable {
    // @unchecked: only the client's task calls `handle`, sequentially; `main` reads the counters
    // after that task has finished.
    let engine: Engine
    var delivered = 0
    var malformed = 0
    var now = MonotonicInstant(nanoseconds: 1_000_000_000)

    init() {
        engine = try! Engine(
            configuration: EngineConfiguration(
                policies: [
                    PolicyDefinition(
                        name: "pause", feeds: ["gws"], start: .attributeEquals(key: "PCI_STAGE", value: "CARD"),
                        stop: .attributeIn(key: "PCI_STAGE", values: ["DONE", "NONE"]),
                        actions: [ActionSpec(kind: .pauseRecording, target: "gws-voice")])
                ],
                targets: [TargetDescriptor(name: "gws-voice", confirmsByEvent: true)]),
            options: EngineOptions(randomSeed: 1))
    }

    func handle(_ event: BayeuxEvent) {
        // The feed's size check (max_message_size, default 256 KiB), as GWSFeed makes it.
        guard event.envelopeBytes <= 256 << 10 || !event.data.isLarger(than: 256 << 10) else { return }
        do {
            if case .update(let update, _) = try GWSCallEvents.map(notification: event.data, feed: "gws") {
                engine.ingest(update, at: now)
                delivered += 1
                if delivered & 1023 == 0 { now = now + .milliseconds(1) }
                if engine.hasEffects {
                    for effect in engine.takeEffects() {
                        if case .send(_, let ticket) = effect { engine.attemptFinished(ticket, result: .accepted, at: now) }
                    }
                    _ = engine.takeEffects()
                }
            }
        } catch {
            malformed += 1
        }
    }
}

/// This thread's CPU time in seconds: on a shared host, time the hypervisor gives to others
/// (steal) is not counted, unlike a wall clock's.
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

// The JSON parser alone on the same replies, best of ten: the parser's share of the rounds
// below, with less noise than the whole path.
var fastestParse = Double.infinity
for _ in 1...10 {
    let start = threadCPUSeconds()
    var values = 0
    for reply in replies { values += (try JSONValue.parse(reply).array?.count ?? 0) }
    precondition(values == produced + replies.count)
    fastestParse = min(fastestParse, threadCPUSeconds() - start)
}
print("parse only: \(String(format: "%.3f", fastestParse / Double(produced) * 1e6)) µs of CPU an event (best of 10)")

for round in 1...3 {
    let sink = Sink()
    let done = Atomic<Bool>(false)
    let transport = ReplayTransport(replies: replies) { done.store(true, ordering: .relaxed) }
    let client = BayeuxClient(
        configuration: BayeuxClient.Configuration(channels: ["/v2/me/calls"]), transport: transport,
        callbacks: BayeuxClient.Callbacks(event: { sink.handle($0) }))
    let start = SystemClock().now()
    let task = Task { await client.run() }
    while !done.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(1)) }
    task.cancel()
    await task.value
    let seconds = SystemClock().now().since(start).seconds
    print(
        "round \(round): \(Int(Double(sink.delivered) / seconds)) events/s (\(sink.delivered) events, "
            + "\(sink.malformed) malformed, \(sink.engine.statistics.trackedCalls) calls tracked, "
            + "\(String(format: "%.1f", Double(bytes) / seconds / 1_048_576)) MiB/s parsed)")
}
