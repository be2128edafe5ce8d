import CMutewardenShims
import Foundation
import MutewardenJSON

/// The least a consumer can do and still send every action: one thread that long-polls (or reads
/// the CometD websocket), parses each reply (or frame), and the moment an event opens or closes a
/// capture (`PCI_STAGE` becomes or stops being `CARD`) sends that edge's two operations, each on a
/// keep-alive connection of its own, then waits for both answers before it reads on. No engine, no
/// log, no state file, no retry; over websocket, no service thread to hand frames over.
///
/// Run in place of the daemon (`--reflex`, pinned to `--daemon-cpu` like the daemon), it measures
/// the floor under the daemon's latency on this machine: the generator, loopback, the kernel's
/// scheduling and the host's noise, which no change to the daemon can remove.
struct Reflex: Sendable {
    let port: Int
    let authorization: String
    let cpu: Int?
    /// `long-polling` or `websocket`, as the daemon's feed would use.
    let transport: String

    func start(until stop: @escaping @Sendable () -> Bool) -> Thread {
        consumerThread(name: "loadgen-reflex", until: stop) {
            if let cpu, mw_pin_current_thread(Int32(cpu)) != 0 {
                throw LoopbackHTTP.Failure(description: "cannot pin the reflex thread to CPU \(cpu)")
            }
            try run(until: stop)
        }
    }

    private func run(until stop: @Sendable () -> Bool) throws {
        let recording = try LoopbackHTTP(port: port)
        let session = try GWSSession(port: port, authorization: authorization, over: recording)
        let headers = session.requestHeaders
        let mute = try LoopbackHTTP(port: port)
        let next = try bayeuxStream(port: port, transport: transport) { session }
        var capturing = Set<String>()

        func perform(_ recordingOperation: Operation, _ muteOperation: Operation, call: String) throws {
            try recording.send(
                "POST", "/api/v2/me/calls/\(call)", headers: headers, body: #"{"operationName":"\#(recordingOperation.name)"}"#)
            try mute.send("POST", "/api/v2/me/calls/\(call)", headers: headers, body: #"{"operationName":"\#(muteOperation.name)"}"#)
            _ = try recording.receive()
            _ = try mute.receive()
        }

        while !stop() {
            guard let messages = try JSONValue.parse(next()).array else { continue }
            for message in messages where message["channel"]?.string == "/v2/me/calls" {
                guard let call = message["data"]?["call"], let id = call["id"]?.string else { continue }
                let card = call["userData"]?["PCI_STAGE"]?.string == "CARD"
                if card, capturing.insert(id).inserted {
                    try perform(.pauseRecording, .mute, call: id)
                } else if !card, capturing.remove(id) != nil {
                    try perform(.resumeRecording, .unmute, call: id)
                }
            }
        }
    }
}
