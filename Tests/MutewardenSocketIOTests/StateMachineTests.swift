import MutewardenJSON
import MutewardenModel
import Testing

@testable import MutewardenSocketIO

/// The session state machine, without sockets: every input is a frame, a tick of a made-up clock,
/// an emit or a close, and every answer is checked.
@Suite struct StateMachineTests {
    let start = MonotonicInstant(nanoseconds: 1_000_000_000)
    let open = #"0{"sid":"eio-sid","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#
    let handshake = EngineIOHandshake(sid: "eio-sid", pingInterval: .seconds(25), pingTimeout: .seconds(5))

    func machine(_ version: EngineIOVersion, namespace: String = "/", auth: JSONValue? = nil) -> SocketIOStateMachine {
        SocketIOStateMachine(
            configuration: .init(version: version, namespace: namespace, auth: auth, handshakeTimeout: .seconds(10)),
            transportUpAt: start)
    }

    func at(_ seconds: Double) -> MonotonicInstant { start + .milliseconds(Int64(seconds * 1000)) }

    // MARK: Engine.IO v3

    @Test func v3WaitsForTheServersConnectThenPingsOnItsOwnCadence() {
        var session = machine(.v3)
        #expect(session.phase == .awaitingOpen)
        #expect(session.nextDeadline == at(10))
        #expect(session.received(text: open, at: at(0.1)) == .none)
        #expect(session.phase == .awaitingConnect)
        #expect(session.received(text: "40", at: at(0.2)) == .connected(sid: "eio-sid", handshake: handshake))
        #expect(session.isConnected)
        // The first ping is due an interval after the open packet.
        #expect(session.nextDeadline == at(25.1))
        #expect(session.timerFired(at: at(25)) == .none)
        #expect(session.timerFired(at: at(25.1)) == .send("2"))
        #expect(session.nextDeadline == at(30.1))
        #expect(session.received(text: "3", at: at(25.3)) == .none)
        // After the pong, the next ping keeps the cadence of the last one sent.
        #expect(session.nextDeadline == at(50.1))
        #expect(session.timerFired(at: at(50.1)) == .send("2"))
        #expect(session.timerFired(at: at(55.0)) == .none)
        #expect(
            session.timerFired(at: at(55.1))
                == .close(goodbye: [], end: .heartbeatTimeout("no pong within 5s of a ping")))
        #expect(session.nextDeadline == nil)
        #expect(session.transportClosed(reason: "aborted") == .heartbeatTimeout("no pong within 5s of a ping"))
        #expect(session.phase == .closed)
    }

    @Test func v3SendsOnePingAtATimeWhenTheTimeoutIsLongerThanTheInterval() {
        var session = machine(.v3)
        _ = session.received(text: #"0{"sid":"s","pingInterval":1000,"pingTimeout":5000}"#, at: at(0))
        _ = session.received(text: "40", at: at(0))
        #expect(session.timerFired(at: at(1)) == .send("2"))
        // The interval passes again with the pong still due: no second ping, the deadline waits.
        #expect(session.nextDeadline == at(6))
        #expect(session.timerFired(at: at(2)) == .none)
        #expect(session.received(text: "3", at: at(4)) == .none)
        // The pong came late: the next ping goes at once.
        #expect(session.nextDeadline == at(4))
        #expect(session.timerFired(at: at(4)) == .send("2"))
    }

    @Test func v3AsksForANamespaceOtherThanTheDefault() throws {
        var session = machine(.v3, namespace: "/monitor")
        #expect(session.received(text: open, at: at(0)) == .send("40/monitor,"))
        // The server's own connect to "/" is not ours.
        #expect(session.received(text: "40", at: at(0)) == .skip(.otherNamespace(byteCount: 2)))
        #expect(session.received(text: "40/monitor,", at: at(0)) == .connected(sid: "eio-sid", handshake: handshake))
        #expect(session.received(text: #"42["x"]"#, at: at(1)) == .skip(.otherNamespace(byteCount: 7)))
        #expect(
            session.received(text: #"42/monitor,["x"]"#, at: at(1)) == .event(SocketIOEvent(name: "x", arguments: [])))
        #expect(try session.emit("y", [.number(1)]).frame == #"42/monitor,["y",1]"#)
        #expect(session.close() == .close(goodbye: ["41/monitor,"], end: .closedByClient))
    }

    @Test func v3RefusesWithA44Too() {
        var session = machine(.v3)
        _ = session.received(text: open, at: at(0))
        let action = session.received(text: #"44"Not authorized""#, at: at(0.1))
        #expect(action == .close(goodbye: [], end: .connectRefused(message: "Not authorized")))
        #expect(session.end?.requiresLogin == true)
    }

    // MARK: Engine.IO v4

    @Test func v4ConnectsWithItsAuthThenAnswersTheServersPings() {
        var session = machine(.v4, auth: .object([("token", .string("t0k"))]))
        #expect(session.received(text: open, at: at(0)) == .send(#"40{"token":"t0k"}"#))
        #expect(session.phase == .awaitingConnect)
        #expect(session.nextDeadline == at(10))
        #expect(session.received(text: #"40{"sid":"sio-sid"}"#, at: at(0.1)) == .connected(sid: "sio-sid", handshake: handshake))
        // No ping for interval + timeout means the server is gone.
        #expect(session.nextDeadline == at(30))
        #expect(session.received(text: "2", at: at(25)) == .send("3"))
        #expect(session.nextDeadline == at(55))
        #expect(session.timerFired(at: at(54.9)) == .none)
        #expect(
            session.timerFired(at: at(55))
                == .close(goodbye: [], end: .heartbeatTimeout("no ping from the server within 30s")))
    }

    @Test func v4WithoutAuthSendsAPlainConnectAndTakesTheEngineSidIfTheServerGivesNone() {
        var session = machine(.v4)
        #expect(session.received(text: open, at: at(0)) == .send("40"))
        #expect(session.received(text: "40", at: at(0)) == .connected(sid: "eio-sid", handshake: handshake))
    }

    @Test func v4ConnectErrorEndsTheSessionFromThisSide() {
        var session = machine(.v4)
        _ = session.received(text: open, at: at(0))
        let action = session.received(text: #"44{"message":"token refused"}"#, at: at(0.1))
        #expect(action == .close(goodbye: [], end: .connectRefused(message: "token refused")))
        #expect(session.phase == .closing)
        // The server keeps pinging the Engine.IO session; nothing answers any more.
        #expect(session.received(text: "2", at: at(1)) == .none)
        #expect(session.nextDeadline == nil)
        #expect(session.transportClosed(reason: "closed") == .connectRefused(message: "token refused"))
        #expect(SocketIOError.ended(.connectRefused(message: nil)).requiresLogin)
        #expect("\(SocketIOSessionEnd.connectRefused(message: "token refused"))" == "the server refused the socket.io connection: token refused")
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aHeartbeatDeadlineWaitsWhileFramesAreUnread(version: EngineIOVersion) {
        var session = machine(version)
        _ = session.received(text: open, at: at(0))
        _ = session.received(text: "40", at: at(0))
        if version == .v3 { #expect(session.timerFired(at: at(25)) == .send("2")) }
        let due = version == .v3 ? at(30) : at(30)
        #expect(session.nextDeadline == due)
        // The answer may be among the frames the consumer has not taken: a timeout later.
        #expect(session.timerFired(at: due, unreadFrames: true) == .none)
        #expect(session.nextDeadline == at(35))
        #expect(session.isConnected)
        guard case .close(_, .heartbeatTimeout) = session.timerFired(at: at(35)) else {
            Issue.record("no heartbeat timeout once nothing is unread")
            return
        }
    }

    // MARK: Both versions

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aHandshakeThatStallsEndsAtItsDeadline(version: EngineIOVersion) {
        var noOpen = machine(version)
        #expect(noOpen.timerFired(at: at(9.9)) == .none)
        #expect(
            noOpen.timerFired(at: at(10))
                == .close(goodbye: [], end: .handshakeTimeout("no Engine.IO open packet within 10s")))
        var noConnect = machine(version)
        _ = noConnect.received(text: open, at: at(1))
        #expect(noConnect.nextDeadline == at(11))
        #expect(noConnect.timerFired(at: at(11)) == .close(goodbye: [], end: .handshakeTimeout("no socket.io CONNECT within 10s")))
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func deliversEventsAndAcksAndSkipsWhatItCannotUse(version: EngineIOVersion) throws {
        var session = machine(version)
        _ = session.received(text: open, at: at(0))
        #expect(
            session.received(text: #"42["early"]"#, at: at(0)) == .skip(.unexpected("an event before the socket.io CONNECT")))
        #expect(throws: SocketIOError.notConnected) { try session.emit("too-early", []) }
        _ = session.received(text: version == .v4 ? #"40{"sid":"s"}"# : "40", at: at(0))
        let event = #"42["ExtensionEvent",{"reason":"NEWCALL","data":{"calls":[]}}]"#
        #expect(
            session.received(text: event, at: at(1))
                == .event(
                    SocketIOEvent(
                        name: "ExtensionEvent",
                        arguments: [.object([("reason", .string("NEWCALL")), ("data", .object([("calls", .array([]))]))])])))
        #expect(session.received(text: #"425["ask",1]"#, at: at(1)) == .event(SocketIOEvent(name: "ask", arguments: [.number(1)], ackID: 5)))
        #expect(try session.acknowledge(id: 5, arguments: [.string("yes")]) == #"435["yes"]"#)
        let first = try session.emit("echo", [.string("a")], wantsAck: true)
        let second = try session.emit("echo", [.string("b")], wantsAck: true)
        #expect(first.frame == #"420["echo","a"]"#)
        #expect(second.frame == #"421["echo","b"]"#)
        #expect(session.received(text: #"431["b"]"#, at: at(2)) == .ack(id: 1, arguments: [.string("b")]))
        // Malformed, binary, other namespaces, another open: skipped, and the session goes on.
        #expect(
            session.received(text: #"42{"a":1}"#, at: at(2))
                == .skip(.malformed(.invalidPayload("an event is not an array that starts with its name"), byteCount: 9)))
        #expect(session.received(text: "", at: at(2)) == .skip(.malformed(.empty, byteCount: 0)))
        #expect(
            session.received(text: #"451-["f",{"_placeholder":true,"num":0}]"#, at: at(2)) == .skip(.malformed(.binaryNotSupported, byteCount: 39)))
        #expect(session.received(binaryByteCount: 10, at: at(2)) == .skip(.binaryFrame(byteCount: 10)))
        #expect(session.received(text: #"42/other,["x"]"#, at: at(2)) == .skip(.otherNamespace(byteCount: 14)))
        #expect(session.received(text: open, at: at(2)) == .skip(.unexpected("a second Engine.IO open packet")))
        #expect(session.received(text: "40", at: at(2)) == .skip(.unexpected("a second socket.io CONNECT")))
        #expect(session.received(text: "6", at: at(2)) == .none)
        #expect(session.isConnected)
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func theServerEndsTheSession(version: EngineIOVersion) {
        for (frame, end) in [("41", SocketIOSessionEnd.serverDisconnected), ("1", .engineClosed)] {
            var session = machine(version)
            _ = session.received(text: open, at: at(0))
            _ = session.received(text: version == .v4 ? #"40{"sid":"s"}"# : "40", at: at(0))
            #expect(session.received(text: frame, at: at(1)) == .close(goodbye: [], end: end))
            // On v3 a 41 is followed by a 1: the first end stands.
            #expect(session.received(text: "1", at: at(1)) == .none)
            #expect(session.transportClosed(reason: "the server closed the connection (code 1000)") == end)
            #expect(!end.requiresLogin)
        }
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func thisSideClosesTheSession(version: EngineIOVersion) {
        var session = machine(version)
        #expect(session.close() == .close(goodbye: [], end: .closedByClient))
        var connected = machine(version)
        _ = connected.received(text: open, at: at(0))
        _ = connected.received(text: "40", at: at(0))
        #expect(connected.close() == .close(goodbye: ["41"], end: .closedByClient))
        #expect(connected.close() == .none)
        #expect(throws: SocketIOError.notConnected) { try connected.emit("late", []) }
        #expect(connected.transportClosed(reason: "closed") == .closedByClient)
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func aFirstPacketThatIsNoOpenIsAProtocolViolation(version: EngineIOVersion) {
        var garbage = machine(version)
        #expect(
            garbage.received(text: "hello", at: at(0))
                == .close(
                    goodbye: [],
                    end: .protocolViolation(
                        "the server's first packet was not an Engine.IO open packet: an unknown Engine.IO packet type (byte 104)")))
        var early = machine(version)
        #expect(
            early.received(text: "40", at: at(0))
                == .close(goodbye: [], end: .protocolViolation("the server sent a socket.io packet before the Engine.IO open packet")))
    }

    @Test(arguments: [EngineIOVersion.v3, .v4])
    func theTransportEndingFirstIsTheEnd(version: EngineIOVersion) {
        var session = machine(version)
        _ = session.received(text: open, at: at(0))
        #expect(session.transportClosed(reason: "the connection was lost") == .transportClosed("the connection was lost"))
        #expect(session.received(text: "40", at: at(1)) == .none)
        #expect(session.timerFired(at: at(100)) == .none)
        #expect(session.nextDeadline == nil)
    }

    /// Random inputs from a pool of good, bad and hostile frames, with ticks in between, on both
    /// versions: nothing traps, and the invariants of a session hold throughout.
    @Test(arguments: [EngineIOVersion.v3, .v4])
    func invariantsHoldForRandomInputs(version: EngineIOVersion) throws {
        let pool = [
            open, #"0{"sid":"x","pingInterval":1,"pingTimeout":1}"#, "0{}", "40", #"40{"sid":"a"}"#, "40/ns,", "41", "1", "2", "3",
            "5", "6", #"42["e",1]"#, #"427["e"]"#, #"43"#, #"431[]"#, #"44{"message":"no"}"#, "44", #"451-[]"#, "", "x", "4", "42[",
            #"42/ns,["e"]"#, "9",
        ]
        var random = SplitMix64(seed: 19)
        for run in 0..<400 {
            var session = machine(version, namespace: run % 5 == 0 ? "/ns" : "/")
            var now = start
            var connectedCount = 0
            var closedBy: SocketIOSessionEnd?
            for _ in 0..<40 {
                let roll = Int.random(in: 0..<10, using: &random)
                let action: SocketIOStateMachine.Action
                if roll < 7 {
                    action = session.received(text: pool[Int.random(in: 0..<pool.count, using: &random)], at: now)
                } else if roll < 9 {
                    now = now + .milliseconds(Int64.random(in: 0...30_000, using: &random))
                    action = session.timerFired(at: now)
                    // A tick leaves no deadline already due behind it: no busy loop in the driver.
                    #expect(session.nextDeadline.map { $0 > now } ?? true)
                } else {
                    action = session.close()
                }
                if closedBy != nil { #expect(action == .none, "nothing happens after the end") }
                switch action {
                case .connected: connectedCount += 1
                case .event, .ack: #expect(session.isConnected, "events only while connected")
                case .close(_, let end): closedBy = end
                default: break
                }
            }
            #expect(connectedCount <= 1)
            if let closedBy { #expect(session.transportClosed(reason: "x") == closedBy) }
        }
    }
}
