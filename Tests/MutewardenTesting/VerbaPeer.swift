import Foundation
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// The fake Verba Media Repository HTTP API (Peers/verba_peer.py), built from the documented
/// shapes because no public implementation exists: for the verba provider's tests and the
/// cross-platform ones (a Genesys feed, a Verba target). One python3 process on 127.0.0.1 and a
/// port the kernel chose; a missing python3 fails the test (`make test` installs it).
public final class VerbaPeer: Sendable {
    public static let apiKey = "74c8eea0-50c6-40b2-9f3e-252ed501c3c8"
    public static let user = "verba-svc"
    public static let password = "verba-password-value"

    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Peers/verba_peer.py").path

    /// One request the fake received.
    public struct Request: Sendable, Hashable, CustomStringConvertible {
        public var action: String
        public var method: String
        public var parameters: [String: String]
        public var authorization: String?
        public var contentType: String?

        public var description: String {
            "\(method) \(action) "
                + parameters.filter { $0.key != "token" && $0.key != "apiKey" }.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        }
    }

    public let process: PeerProcess
    public let port: Int
    private let commands = Locked(0)

    /// `…/verba/api`, the target's `base_url`.
    public var baseURL: String { "http://127.0.0.1:\(port)/verba/api" }

    private init(process: PeerProcess, port: Int) {
        self.process = process
        self.port = port
    }

    /// Starts the fake; `authentication: false` plays an API key without "Requires
    /// Authentication". Tokens live `tokenLife` seconds.
    public static func start(authentication: Bool = true, tokenLife: Double = 3600) async throws -> VerbaPeer {
        let process = try await PeerProcess.start(
            try locateTool("python3"),
            [
                script, "--api-key", apiKey, "--user", user, "--password", password, "--auth", authentication ? "basic" : "none",
                "--token-life", String(tokenLife),
            ], name: "verba_peer.py")
        do {
            let line = try await process.waitForLine(timeout: .seconds(30), "the port line") { $0.hasPrefix("port ") }
            guard let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else {
                throw process.failure("not a port line: \(line)")
            }
            return VerbaPeer(process: process, port: port)
        } catch {
            await process.stop(SIGKILL)
            throw error
        }
    }

    public func stop() async { await process.stop() }

    /// Sends a command and waits for its acknowledgement.
    public func command(_ line: String) async throws {
        let number = commands.withLock { count in
            count += 1
            return count
        }
        try process.writeLine(line)
        try await process.waitForLine(timeout: .seconds(10), "ACK \(number)") { $0 == "ACK \(number)" }
    }

    /// Every token issued so far is expired.
    public func expireTokens() async throws { try await command("expire") }

    /// Answers for the next MuteRecording requests, in order: HTTP status and body.
    public func script(_ answers: [(status: Int, body: String)]) async throws {
        let list = answers.map { ["status": $0.status, "body": $0.body] as [String: Any] }
        let data = try JSONSerialization.data(withJSONObject: list)
        try await command("script " + String(decoding: data, as: UTF8.self))
    }

    /// Calls the fake does not know (by callID or extension), extensions with several ongoing
    /// calls, and how a refused token is answered ("http": HTTP 401; "xml": code 3).
    public func configure(gone: [String] = [], several: [String] = [], unauthorized: String = "http") async throws {
        let object: [String: Any] = ["gone": gone, "several": several, "unauthorized": unauthorized]
        let data = try JSONSerialization.data(withJSONObject: object)
        try await command("config " + String(decoding: data, as: UTF8.self))
    }

    /// The requests received so far, of `action` (nil: all), in order. The fake prints each request
    /// before it answers, but the test reads its output on another thread: a command's
    /// acknowledgement, printed after them, proves every earlier line has been read.
    public func requests(_ action: String? = nil) async throws -> [Request] {
        try await command("sync")
        return requestsRead(action)
    }

    private func requestsRead(_ action: String?) -> [Request] {
        process.stdoutLines.compactMap { line -> Request? in
            guard line.hasPrefix("REQUEST "),
                let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(8).utf8)) as? [String: Any]
            else { return nil }
            let request = Request(
                action: object["action"] as? String ?? "", method: object["method"] as? String ?? "",
                parameters: object["params"] as? [String: String] ?? [:], authorization: object["authorization"] as? String,
                contentType: object["content_type"] as? String)
            return action == nil || request.action == action ? request : nil
        }
    }

    /// Waits (bounded) until at least `count` requests of `action` arrived; returns them all.
    @discardableResult
    public func waitForRequests(_ action: String, count: Int, timeout: Duration = .seconds(20)) async throws -> [Request] {
        try await process.eventually(what: "\(count) \(action) request(s)", timeout: timeout) {
            let found = requestsRead(action)
            return found.count >= count ? found : nil
        }
    }
}

/// Runs `body` with a started fake, and stops it however `body` ends (printing its log if it threw).
public func withVerbaPeer<T>(
    authentication: Bool = true, tokenLife: Double = 3600, _ body: (VerbaPeer) async throws -> T
) async throws -> T {
    let peer = try await VerbaPeer.start(authentication: authentication, tokenLife: tokenLife)
    do {
        let value = try await body(peer)
        await peer.stop()
        return value
    } catch {
        await peer.stop()
        peer.process.recordLog(reason: "\(error)")
        throw error
    }
}
