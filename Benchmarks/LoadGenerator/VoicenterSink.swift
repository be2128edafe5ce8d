import Foundation
import MutewardenJSON

/// The trivial consumer of a Voicenter run (`--sink`): logs in as the daemon does, opens the
/// socket.io WebSocket with Engine.IO 4, so that the server keeps the heartbeat and the loop only
/// answers it, connects `/`, and reads frames without parsing them.
struct VoicenterSink: Sendable {
    let port: Int
    let token: String

    func start(until stop: @escaping @Sendable () -> Bool) -> Thread {
        consumerThread(name: "loadgen-sink", until: stop) { [self] in try run(until: stop) }
    }

    private func run(until stop: @Sendable () -> Bool) throws {
        let login = try LoopbackHTTP(port: port).request("POST", "/monitorAPI/Login/Token", body: #"{"token":"\#(token)"}"#)
        guard let socketToken = (try? JSONValue.parse(login.body))?["Data"]?["Socket"]?["Token"]?.string else {
            throw LoopbackHTTP.Failure(description: "the login gave no socket token")
        }
        let socket = try LoopbackWebSocket(port: port, path: "/socket.io/?EIO=4&transport=websocket&token=\(socketToken)", headers: [])
        try socket.sendText("40")
        let ping: [UInt8] = [UInt8(ascii: "2")]
        while !stop() {
            if try socket.nextMessage() == ping { try socket.sendText("3") }
        }
    }
}
