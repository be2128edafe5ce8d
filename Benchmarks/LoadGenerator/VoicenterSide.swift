import Foundation

/// Voicenter: `VoicenterServer`, `VoicenterTraffic` and `VoicenterGenerator`, and the daemon's
/// `voicenter` feed and target pointed at them.
struct VoicenterSide: PlatformSide {
    let port: Int
    let options: Options
    let outbox: ChunkOutbox<FrameChunk>
    let generator: VoicenterGenerator

    var pacer: any Pacing { generator }

    static func start(options: Options, status: ServerStatus, log: (String) -> Void) -> VoicenterSide? {
        let traffic = VoicenterTraffic(calls: options.calls, capturePercent: options.capturePercent, now: time(nil))
        let outbox = ChunkOutbox<FrameChunk>()
        let confirmations = ConfirmationQueue()
        let snapshots = SnapshotRequests()
        var settings = VoicenterServer.Settings(accountToken: DaemonProcess.token)
        settings.pingInterval = options.pingInterval
        settings.tokenLife = options.tokenLife
        guard
            let port = VoicenterServer.start(
                settings: settings, outbox: outbox, confirmations: confirmations, snapshots: snapshots, status: status)
        else { return nil }
        log("listening on 127.0.0.1:\(port); \(traffic.extensions.count) extensions for \(options.calls) calls")
        // Started now: it renders the snapshot a connecting client asks for before the stream starts.
        let generator = VoicenterGenerator(rate: options.rate, outbox: outbox, confirmations: confirmations, snapshots: snapshots)
        _ = generator.start(traffic: traffic)
        return VoicenterSide(port: port, options: options, outbox: outbox, generator: generator)
    }

    func wake() { outbox.wake() }

    func startSink(until stop: @escaping @Sendable () -> Bool) {
        _ = VoicenterSink(port: port, token: DaemonProcess.token).start(until: stop)
    }

    func startReflex(cpu: Int?, until stop: @escaping @Sendable () -> Bool) {
        // Options refuses --reflex with --platform voicenter.
        preconditionFailure("no reflex consumer plays Voicenter")
    }

    /// One policy, as docs/providers/voicenter.md would write it for this site: pause the
    /// recording of every call on the agent's extension while PCI_STAGE=CARD, addressed by ivrid,
    /// confirmed by the feed's `recording.IsMuted`. The login names this server as the socket
    /// server; `servers` lists it again as the fail-over list. The periodic resync is pushed past
    /// the run, since its snapshot would only add a 3 MB frame in the middle of the measurement.
    func daemonConfiguration(logLevel: String, stateDirectory: String) -> String {
        """
        feeds:
          vc:
            type: voicenter
            login_url: http://127.0.0.1:\(port)/monitorAPI
            login: token
            token: ${env:MW_LOADGEN_TOKEN}
            servers: [http://127.0.0.1:\(port)]
            socketio_version: "\(options.engineIO)"
            resync_interval: 24h
            timeout: 10s
            connect_timeout: 2s
            reconnect_max: 2s
        targets:
          vc-monitor:
            type: voicenter
            monitor_url: http://127.0.0.1:\(port)
            timeout: 5s
        policies:
          pause-recording-during-card:
            feeds: [vc]
            scope: extension
            start: { attribute: PCI_STAGE, equals: CARD }
            stop: { attribute: PCI_STAGE, in: [DONE, ABORTED] }
            max_duration: 10m
            on_timeout: resume
            actions:
              - { kind: pause-recording, target: vc-monitor, by: call, deadline: 5s }
        logging:
          level: \(logLevel)
          target: stderr
          attributes: [PCI_STAGE]
        state:
          directory: \(stateDirectory)
        """
    }
}
