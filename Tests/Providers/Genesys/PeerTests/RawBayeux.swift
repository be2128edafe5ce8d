import Foundation
import MutewardenJSON

#if canImport(Glibc)
import Glibc
#endif

/// A Bayeux long-polling client written out by hand: each batch is a JSON array POSTed with the
/// curl CLI. It proves the peer speaks Bayeux without any mutewarden code in between.
final class LongPollingBayeux: @unchecked Sendable {
    let endpoint: String
    private let curl = Curl()
    private let lock = NSLock()
    private var storedClientId: String?
    private var nextId = 0

    init(_ endpoint: String) { self.endpoint = endpoint }

    var clientId: String? {
        lock.lock()
        defer { lock.unlock() }
        return storedClientId
    }

    private func messageId() -> String {
        lock.lock()
        defer { lock.unlock() }
        nextId += 1
        return String(nextId)
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
            lock.withLock { storedClientId = id }
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
        let deadline = Date().addingTimeInterval(seconds)
        while events.count < count {
            guard Date() < deadline else {
                throw GenesysPeerError("\(events.count) of \(count) events on \(channel) within \(seconds) s")
            }
            let replies = try await connect()
            if let reply = replies.first(where: { $0["channel"]?.string == "/meta/connect" }),
                reply["successful"]?.bool != true
            {
                throw GenesysPeerError("connect failed: \(reply.serialized)")
            }
            events += replies.filter { $0["channel"]?.string == channel }
        }
        return events
    }
}

/// Peers/bayeux_ws_probe.rb in a process: a Bayeux client on the websocket connection type.
final class WebSocketProbe {
    private let process: Process
    private let outputPath: String

    init(url: String, channel: String = "/v2/me/calls", events: Int = 1, seconds: Int = 20) throws {
        outputPath =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("mutewarden-ws-probe-\(UUID().uuidString).out").path
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
            let output = FileHandle(forWritingAtPath: outputPath)
        else { throw GenesysPeerError("cannot create \(outputPath)") }
        defer { try? output.close() }
        process = Process()
        process.executableURL = URL(fileURLWithPath: try GenesysPeer.locateTool("ruby"))
        process.arguments = [
            GenesysPeer.peersDirectory + "/bayeux_ws_probe.rb", url, channel, String(events), String(seconds),
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    var lines: [String] {
        ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits (bounded) for a line starting with `prefix`.
    func waitForLine(startingWith prefix: String, within seconds: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let line = lines.first(where: { $0.hasPrefix(prefix) }) { return line }
            if !process.isRunning, !lines.contains(where: { $0.hasPrefix(prefix) }) {
                throw GenesysPeerError("the websocket probe exited without \"\(prefix)\": \(lines)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw GenesysPeerError("no \"\(prefix)\" from the websocket probe within \(seconds) s: \(lines)")
    }
}
