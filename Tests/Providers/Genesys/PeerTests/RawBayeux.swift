import Foundation
import MutewardenJSON
import MutewardenTesting
import Synchronization

/// A Bayeux long-polling client written out by hand: each batch is a JSON array POSTed with the
/// curl CLI. It proves the peer speaks Bayeux without any mutewarden code in between.
final class LongPollingBayeux: Sendable {
    let endpoint: String
    private let curl = Curl()
    private let storedClientId = Mutex<String?>(nil)
    private let nextId = Mutex(0)

    init(_ endpoint: String) { self.endpoint = endpoint }

    var clientId: String? { storedClientId.withLock { $0 } }

    private func messageId() -> String {
        nextId.withLock { id in
            id += 1
            return String(id)
        }
    }

    /// POSTs one batch (JSON array text) and returns the reply array; throws unless HTTP 200.
    func send(_ batch: String, timeout: Double = 15) async throws -> [JSONValue] {
        let response = try await curl.request("POST", endpoint, body: batch, timeout: timeout)
        guard response.status == 200 else {
            throw GenesysPeerError("Bayeux POST answered \(response.status): \(response.text)")
        }
        guard let replies = try response.json().array else { throw GenesysPeerError("not an array: \(response.text)") }
        return replies
    }

    /// The handshake reply; keeps the clientId when it succeeds.
    @discardableResult
    func handshake(connectionTypes: [String] = ["long-polling"]) async throws -> JSONValue {
        let types = JSONValue.array(connectionTypes.map { .string($0) }).serialized
        let replies = try await send(
            #"[{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":\#(types),"id":"\#(messageId())"}]"#
        )
        guard let reply = replies.first(where: { $0["channel"]?.string == "/meta/handshake" }) else {
            throw GenesysPeerError("no handshake reply in \(replies)")
        }
        if reply["successful"]?.bool == true, let id = reply["clientId"]?.string {
            storedClientId.withLock { $0 = id }
        }
        return reply
    }

    func subscribe(_ channel: String) async throws -> JSONValue {
        let replies = try await send(
            #"[{"channel":"/meta/subscribe","clientId":"\#(clientId ?? "")","subscription":\#(JSONValue.string(channel).serialized),"id":"\#(messageId())"}]"#
        )
        guard let reply = replies.first(where: { $0["channel"]?.string == "/meta/subscribe" }) else {
            throw GenesysPeerError("no subscribe reply in \(replies)")
        }
        return reply
    }

    /// One /meta/connect: the whole reply array (the connect reply and any events). Faye holds
    /// it until an event is queued or its timeout passes.
    func connect(timeout: Double = 20) async throws -> [JSONValue] {
        try await send(
            #"[{"channel":"/meta/connect","clientId":"\#(clientId ?? "")","connectionType":"long-polling","id":"\#(messageId())"}]"#,
            timeout: timeout)
    }

    /// Connects again and again (bounded in time) until `count` events arrived on `channel`.
    func events(on channel: String = "/v2/me/calls", count: Int = 1, within seconds: Double = 20) async throws
        -> [JSONValue]
    {
        var events: [JSONValue] = []
        let deadline = ContinuousClock.now + .seconds(seconds)
        // Each connect is a long poll Faye holds for a while at most: a few hundred of them are
        // far more than `seconds` holds.
        for _ in 0..<500 where events.count < count {
            guard ContinuousClock.now < deadline else { break }
            let replies = try await connect()
            if let reply = replies.first(where: { $0["channel"]?.string == "/meta/connect" }),
                reply["successful"]?.bool != true
            {
                throw GenesysPeerError("connect failed: \(reply.serialized)")
            }
            events += replies.filter { $0["channel"]?.string == channel }
        }
        guard events.count >= count else {
            throw GenesysPeerError("\(events.count) of \(count) events on \(channel) within \(seconds) s")
        }
        return events
    }
}

/// Peers/bayeux_ws_probe.rb in a process: a Bayeux client on the websocket connection type.
final class WebSocketProbe: Sendable {
    private let process: PeerProcess

    private init(process: PeerProcess) { self.process = process }

    static func start(url: String, channel: String = "/v2/me/calls", events: Int = 1, seconds: Int = 20)
        async throws -> WebSocketProbe
    {
        WebSocketProbe(
            process: try await PeerProcess.start(
                try locateTool("ruby"),
                [GenesysPeer.peersDirectory + "/bayeux_ws_probe.rb", url, channel, String(events), String(seconds)],
                name: "bayeux_ws_probe.rb", holdInput: false))
    }

    var lines: [String] { process.lines }

    /// Waits (bounded) for a line starting with `prefix`; throws with the probe's output if it
    /// exits without one.
    func waitForLine(startingWith prefix: String, within seconds: Double = 20) async throws -> String {
        try await process.waitForLine(timeout: .seconds(seconds), "a line starting with \"\(prefix)\"") {
            $0.hasPrefix(prefix)
        }
    }
}
