import Foundation

struct Options: Sendable {
    /// The platform the generator plays; Genesys's figures are the ones compared across commits.
    enum Platform: String, Sendable {
        case genesys, voicenter
    }

    var daemon = ".build/release/mutewarden"
    var platform = Platform.genesys
    var transport = "long-polling"
    /// Set when --transport was given: it names a Genesys transport, which Voicenter runs refuse.
    var transportGiven = false
    /// The daemon's `socketio_version` on Voicenter runs: 3 by default, as Voicenter's own SDK.
    var engineIO = "3"
    /// Voicenter's Engine.IO `pingInterval` (ms) and socket token life (s): shorter than the
    /// defaults, they put heartbeats and token refreshes inside a run.
    var pingInterval = 25_000
    var tokenLife = 3600
    var rate = 1_000.0
    var calls = 10_000
    var capturePercent = 25
    var warmup = 5.0
    var duration = 20.0
    var grace = 5.0
    var daemonCPU: Int?
    var sink = false
    /// A minimal consumer that sends every action, in place of the daemon: the floor under its latency.
    var reflex = false
    /// No daemon: serve whatever client connects (a probe script, a daemon started by hand).
    var external = false
    var output: String?
    var daemonLog = "/dev/null"
    /// The daemon's logging.level: info (the default, every action logged) is what sites run.
    var logLevel = "info"
    /// The daemon's `state.journal_sync_interval` (`0s`, its default: every group commit).
    var journalSyncInterval: String?
    /// Turns the daemon's metrics listener on, on this port (an A/B of the instrumentation's cost).
    var metricsPort: Int?
    /// Seconds between memory samples of the daemon (the soak's curve).
    var sampleEvery = 1.0
    var quiet = false

    static let usage = """
        usage: mutewarden-loadgen [--daemon PATH] [--platform genesys|voicenter] [--transport long-polling|websocket]
                                  [--eio 3|4|auto] [--ping-interval MS] [--token-life S] [--rate EVENTS_PER_S] [--calls N] [--capture-percent P]
                                  [--warmup S] [--duration S] [--grace S]
                                  [--daemon-cpu N] [--daemon-log FILE] [--log-level info] [--journal-sync-interval 0s] [--metrics-port N] [--sample-every S] [--output FILE.json]
                                  [--sink | --reflex | --external] [--quiet]

        Plays Genesys Web Services on 127.0.0.1 (CometD over long-polling or WebSocket, and the voice
        API), starts the daemon against it (pinned with taskset to --daemon-cpu), sends --rate call
        events a second over --calls concurrent calls, and measures the time from writing each
        capture-window event to the arrival of each action request it calls for.
        --platform voicenter plays Voicenter instead: the REST login, the Real-Time API's socket.io
        server (Engine.IO 3 and 4 over WebSocket) and MuteUnmuteCalls, with windows scoped to the
        agent's extension and a new outgoing call in each, whose mute is timed apart; --eio is the
        daemon's socketio_version (--transport does not apply); --ping-interval and --token-life
        (default 25000 ms and 3600 s) bring Engine.IO heartbeats and token refreshes into a run.
        --sink replaces the daemon with a trivial built-in consumer on --transport, to show the
        generator's headroom.
        --reflex replaces the daemon with the least consumer that sends every action (one thread, pinned
        to --daemon-cpu, on --transport), to show the latency floor of this machine and harness.
        Genesys only.
        --external starts no daemon and serves any client (the port is printed on standard error).
        """

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        func value(_ name: String) -> String {
            guard let value = iterator.next() else { fail("\(name) needs a value") }
            return value
        }
        func number(_ name: String) -> Double {
            guard let number = Double(value(name)), number >= 0 else { fail("\(name) needs a number") }
            return number
        }
        while let argument = iterator.next() {
            switch argument {
            case "--daemon": options.daemon = value(argument)
            case "--platform":
                guard let platform = Platform(rawValue: value(argument)) else { fail("unknown platform") }
                options.platform = platform
            case "--transport":
                options.transport = value(argument)
                options.transportGiven = true
                guard ["long-polling", "websocket"].contains(options.transport) else { fail("unknown transport") }
            case "--eio":
                options.engineIO = value(argument)
                guard ["3", "4", "auto"].contains(options.engineIO) else { fail("--eio takes 3, 4 or auto") }
            case "--ping-interval": options.pingInterval = max(100, Int(number(argument)))
            case "--token-life": options.tokenLife = max(2, Int(number(argument)))
            case "--rate": options.rate = number(argument)
            case "--calls": options.calls = max(1, Int(number(argument)))
            case "--capture-percent": options.capturePercent = min(100, Int(number(argument)))
            case "--warmup": options.warmup = number(argument)
            case "--duration": options.duration = number(argument)
            case "--grace": options.grace = number(argument)
            case "--daemon-cpu": options.daemonCPU = Int(number(argument))
            case "--daemon-log": options.daemonLog = value(argument)
            case "--log-level": options.logLevel = value(argument)
            case "--journal-sync-interval": options.journalSyncInterval = value(argument)
            case "--metrics-port": options.metricsPort = Int(number(argument))
            case "--sample-every": options.sampleEvery = max(0.1, number(argument))
            case "--output": options.output = value(argument)
            case "--sink": options.sink = true
            case "--reflex": options.reflex = true
            case "--external": options.external = true
            case "--quiet": options.quiet = true
            case "--help", "-h":
                print(usage)
                exit(0)
            default: fail("unknown option \(argument)")
            }
        }
        if [options.sink, options.reflex, options.external].filter({ $0 }).count > 1 {
            fail("--sink, --reflex and --external each replace the daemon: give one")
        }
        if options.platform == .voicenter {
            if options.transportGiven { fail("--transport names a Genesys transport: Voicenter's feed is socket.io (see --eio)") }
            // The floor consumer speaks Bayeux; a socket.io one is not written yet.
            if options.reflex { fail("--reflex plays Genesys only") }
        }
        return options
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mutewarden-loadgen: \(message)\n\(Options.usage)\n".utf8))
    exit(64)
}
