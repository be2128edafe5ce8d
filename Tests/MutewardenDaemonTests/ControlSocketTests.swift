import Foundation
import Logging
import MutewardenConfig
import MutewardenControl
import MutewardenDaemon
import MutewardenLogging
import MutewardenModel
import MutewardenProviderKit
import MutewardenSimulator
import MutewardenTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let pan = "4111111111111111"
private let spacedPAN = "4111 1111 1111 1111"

/// A target whose platform refuses every attempt with an error that quotes a card number, as a
/// careless platform might echo the request back.
struct EchoingRefusalTarget: ActionTarget, TargetSettings {
    var name = "echo"
    var summary: String { "refuses, quoting the card" }
    var confirmsByEvent: Bool { false }
    var descriptor: TargetDescriptor { TargetDescriptor(name: name, confirmsByEvent: false) }

    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget { self }

    func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        .failed(ActionFailure(.permanent, "platform said: invalid field CardNumber=\(spacedPAN)", code: "E-\(pan)"))
    }
}

/// Delivers one capture with a card number in its attributes, then stays quiet.
struct OneCaptureFeed: CallFeed, FeedSettings {
    var name = "desk"
    var summary: String { "one capture" }

    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { self }

    func run(delivering sink: any CallUpdateSink) async throws {
        sink.feedStateChanged(feed: name, up: true, detail: "connected")
        sink.deliver(
            CallUpdate(
                feed: name, ids: CallIdentifiers(primary: "c1"), agentExtension: "3001", direction: .inbound, state: .established,
                attributes: ["PCI_STAGE": "CARD", "CardNumber": pan, "Note": pan]))
        while true { try await Task.sleep(for: .seconds(60)) }
    }
}

/// Three policies on one capture: one confirmed (recorder), one whose control fails (echo), one
/// still in flight (slow).
private func statusConfiguration() -> DaemonConfiguration {
    let here = SourceLocation(file: "test.yaml", line: 1, column: 1)
    var slow = LogTargetSettings()
    slow.latency = .seconds(30)
    let start = Condition.attributeEquals(key: "PCI_STAGE", value: "CARD")
    let policies = [
        PolicyDefinition(name: "pause", feeds: ["desk"], start: start, actions: [ActionSpec(kind: .pauseRecording, target: "recorder")]),
        PolicyDefinition(
            name: "mute", feeds: ["desk"], start: start, actions: [ActionSpec(kind: .mute, target: "echo", deadline: .milliseconds(200))]),
        // A deadline longer than any wait of the test: its action stays pending, never failed.
        PolicyDefinition(
            name: "slow-pause", feeds: ["desk"], start: start,
            actions: [ActionSpec(kind: .pauseRecording, target: "slow", deadline: .seconds(600))]),
    ]
    var configuration = DaemonConfiguration(
        files: ["test.yaml"], feeds: [FeedConfiguration(name: "desk", type: "one-capture", settings: OneCaptureFeed(), location: here)],
        targets: [
            TargetConfiguration(name: "recorder", type: "log", settings: LogTargetSettings(), location: here),
            TargetConfiguration(name: "echo", type: "echo", settings: EchoingRefusalTarget(), location: here),
            TargetConfiguration(name: "slow", type: "log", settings: slow, location: here),
        ],
        engine: EngineConfiguration(
            policies: policies,
            targets: ["recorder", "echo", "slow"].map { TargetDescriptor(name: $0, confirmsByEvent: false) }),
        logging: LoggingConfiguration(level: .debug, target: .stderr, attributeAllowlist: ["PCI_STAGE", "CardNumber"]),
        state: StateConfiguration(
            directory: FileManager.default.temporaryDirectory.appendingPathComponent("mw-status-\(UUID().uuidString)").path))
    configuration.control = ControlConfiguration(socket: nil)
    return configuration
}

/// Asks the socket from a thread of its own: the client blocks, and cooperative threads must not.
private func ask(_ request: String, _ path: String, timeout: Duration = .seconds(5)) async -> Result<String, ControlClient.Failure> {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: ControlClient.ask(request, path: path, timeout: timeout)) }.start()
    }
}

/// Runs the daemon with a control socket in a fresh directory, hands `body` the socket's path,
/// then stops the daemon.
private func withStatusDaemon(
    _ body: (Daemon, String, InMemoryLogStore) async throws -> Void
) async throws {
    let directory = try TemporaryDirectory()
    let socket = directory.path + "/control.sock"
    let handler = InMemoryLogHandler(label: "mutewarden", logLevel: .debug)
    let logger = Logger(label: "mutewarden") { _ in handler }
    var options = Daemon.Options()
    options.controlSocket = socket
    options.shutdownGrace = .milliseconds(200)
    let daemon = try Daemon(configuration: statusConfiguration(), logger: logger, options: options)
    let (signals, continuation) = AsyncStream<DaemonSignal>.makeStream()
    let running = Task { try await daemon.run(signals: signals) }
    do {
        try await body(daemon, socket, handler.store)
    } catch {
        continuation.yield(.terminate)
        _ = try? await running.value
        throw error
    }
    continuation.yield(.terminate)
    #expect(try await running.value == 0)
    continuation.finish()
    #expect(!FileManager.default.fileExists(atPath: socket), "the socket outlived the daemon")
}

@Test func statusShowsTheConfirmedTheFailedAndTheInFlightActionsWithoutTheCardNumber() async throws {
    try await withStatusDaemon { daemon, socket, logs in
        var answer = ""
        let complete = await waitUntil(timeout: .seconds(30), every: .milliseconds(50)) {
            guard case .success(let line) = await ask("status", socket) else { return false }
            answer = line
            guard let decoded = try? DaemonStatus.decoder().decode(ControlAnswer.self, from: Data(line.utf8)),
                let status = decoded.status
            else { return false }
            let states = Set(status.windows.listed.flatMap { $0.actions.map(\.state) })
            return states.isSuperset(of: ["confirmed", "failed", "pending"]) && status.controlFailures.lastHour >= 1
                && status.actions.byPhase["in-flight", default: 0] >= 1
        }
        #expect(complete, "\(answer)")
        let status = try #require(try DaemonStatus.decoder().decode(ControlAnswer.self, from: Data(answer.utf8)).status)
        #expect(status.feeds.map(\.name) == ["desk"])
        #expect(status.feeds.first?.state == "up")
        #expect(status.feeds.first?.lastEventAt != nil)
        #expect(status.windows.open == 3)
        #expect(status.windows.listed.allSatisfy { $0.call == "c1" && $0.agentExtension == "3001" })
        #expect(status.windows.listed.first { $0.policy == "pause" }?.confirmed == true)
        #expect(status.windows.listed.first { $0.policy == "mute" }?.confirmed == false)
        let slow = try #require(status.actions.listed.first { $0.target == "slow" })
        #expect(slow.phase == "in-flight")
        #expect(slow.operation == "pause-recording")
        let failure = try #require(status.controlFailures.recent.first { $0.target == "echo" })
        #expect(failure.policy == "mute")
        #expect(failure.call == "c1")
        #expect(failure.message.contains("PCI control failure"))
        #expect(status.engine.answered)
        #expect(status.engine.callsTracked == 1)
        #expect(status.engine.callsCapacity == 100_000)
        #expect(status.configuration.files == ["test.yaml"])

        // The card number went into the attributes and into the platform's error: neither the
        // answer nor the text shows it, in any form; the allowlisted attribute shows masked.
        let text = StatusText.render(status, width: 1000)
        for output in [answer, text] {
            #expect(!output.contains(pan), "\(output)")
            #expect(!output.contains(spacedPAN), "\(output)")
        }
        #expect(answer.contains("CardNumber=411111******1111"), "\(answer)")
        #expect(answer.contains("Note=<redacted>"))
        #expect(text.contains("CONTROL") || text.contains("FAILED"), "\(text)")
        #expect(!logs.lines().contains { $0.contains(pan) || $0.contains(spacedPAN) })

        // The same from the in-process API.
        let direct = await daemon.status()
        #expect(direct.windows.open == 3)
    }
}

@Test func malformedOversizedAndUnknownRequestsAreAnsweredWithAnErrorAndTheSocketServesOn() async throws {
    try await withStatusDaemon { _, socket, logs in
        #expect(await waitUntil(timeout: .seconds(30)) { if case .success = await ask("ping", socket) { true } else { false } })
        func code(_ request: String) async -> String? {
            guard case .success(let line) = await ask(request, socket),
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else { return nil }
            return object["code"] as? String
        }
        #expect(await code("\u{01}\u{02}garbage") == "malformed")
        #expect(await code(String(repeating: "x", count: 5000)) == "too-long")
        #expect(await code("status please \(pan)") == "unknown-request")
        #expect(await code("") == "unknown-request")
        // Invalid UTF-8, sent raw.
        #expect(await rawExchange(socket, [0xff, 0xfe, 0x0a]).contains(#""code":"malformed""#))
        // Still serving.
        guard case .success(let line) = await ask("status", socket) else {
            Issue.record("no status after the bad requests")
            return
        }
        #expect(line.hasPrefix(#"{"#) && line.contains(#""ok":true"#))
        #expect(!logs.lines().contains { $0.contains(pan) })
        #expect(logs.lines().contains { $0.contains("control request longer than") })
    }
}

@Test func aSilentClientIsClosedAndOthersAreServedMeanwhile() async throws {
    try await withStatusDaemon { _, socket, _ in
        #expect(await waitUntil(timeout: .seconds(30)) { if case .success = await ask("ping", socket) { true } else { false } })
        // Eight connections that never send a request fill the slots...
        let silent = try (0..<8).map { _ in try connectRaw(socket) }
        defer { for fd in silent { close(fd) } }
        // ...so the next client is told the daemon is busy, at once.
        if case .success(let line) = await ask("status", socket) {
            #expect(line.contains(#""code":"busy""#), "\(line)")
        } else {
            Issue.record("no answer while the slots were full")
        }
        // The silent ones are closed at the connection timeout; then the socket serves again.
        #expect(
            await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) {
                if case .success(let line) = await ask("status", socket) { line.contains(#""ok":true"#) } else { false }
            })
    }
}

@Test func aSocketOfALiveDaemonIsNotTakenOverAndANonSocketIsLeftAlone() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.path + "/control.sock"
    let first = try ControlServer.start(ControlServerConfiguration(path: path), handler: { $1("{}") }, report: { _ in })
    defer { first.stop() }
    #expect(throws: ControlSocketError.inUse(path)) {
        try ControlServer.start(ControlServerConfiguration(path: path), handler: { $1("{}") }, report: { _ in })
    }
    let file = directory.path + "/plain"
    _ = FileManager.default.createFile(atPath: file, contents: Data("keep".utf8))
    #expect(throws: ControlSocketError.notASocket(file)) {
        try ControlServer.start(ControlServerConfiguration(path: file), handler: { $1("{}") }, report: { _ in })
    }
    #expect(FileManager.default.contents(atPath: file) == Data("keep".utf8))
    #expect(throws: ControlSocketError.directoryMissing(directory.path + "/absent")) {
        try ControlServer.start(ControlServerConfiguration(path: directory.path + "/absent/control.sock"), handler: { $1("{}") }, report: { _ in })
    }
}

/// A connected, blocking socket to `path`.
private func connectRaw(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        let bytes = Array(path.utf8)
        buffer.copyBytes(from: bytes)
        buffer[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect: \(errno)")
    }
    return fd
}

/// Sends `bytes` and reads the answer until the server closes, on a thread of its own (the reads
/// block, bounded by a receive timeout).
private func rawExchange(_ path: String, _ bytes: [UInt8]) async -> String {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: (try? blockingExchange(path, bytes)) ?? "") }.start()
    }
}

private func blockingExchange(_ path: String, _ bytes: [UInt8]) throws -> String {
    let fd = try connectRaw(path)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    for _ in 0..<100 {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        answer.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: answer, as: UTF8.self)
}
