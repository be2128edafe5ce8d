import Foundation

/// The pacing thread of a run, whichever platform's events it renders.
protocol Pacing: AnyObject, Sendable {
    func set(_ phase: Generator.Phase)
    var currentStatistics: Generator.Statistics { get }
    var isFinished: Bool { get }
}

extension Generator: Pacing {}

/// The platform side of a run, started: its server listens and its pacing thread waits to be
/// told to run. `LoadRun` does the rest (the daemon, the phases, the report) the same way for
/// every platform.
protocol PlatformSide {
    var port: Int { get }
    var pacer: any Pacing { get }
    /// Wakes the service thread, which then sees a stop request.
    func wake()
    /// The built-in consumer of `--sink`.
    func startSink(until stop: @escaping @Sendable () -> Bool)
    /// The built-in consumer of `--reflex`, where the platform has one.
    func startReflex(cpu: Int?, until stop: @escaping @Sendable () -> Bool)
    /// The daemon's configuration against this side.
    func daemonConfiguration(logLevel: String, stateDirectory: String) -> String
}

/// Genesys Web Services: `GWSServer`, `Traffic` and `Generator`.
struct GenesysSide: PlatformSide {
    let port: Int
    let options: Options
    let settings: GWSServer.Settings
    let outbox: Outbox
    let generator: Generator

    var pacer: any Pacing { generator }

    static func start(options: Options, status: ServerStatus, log: (String) -> Void) -> GenesysSide? {
        var traffic = Traffic(calls: options.calls, capturePercent: options.capturePercent, baseURL: "")
        let outbox = Outbox()
        let confirmations = ConfirmationQueue()
        let settings = GWSServer.Settings(
            authorization: "Basic " + Data("\(DaemonProcess.user):\(DaemonProcess.password)".utf8).base64EncodedString(),
            callList: traffic.renderCallList())
        guard let (_, port) = GWSServer.start(settings: settings, outbox: outbox, confirmations: confirmations, status: status)
        else { return nil }
        traffic.baseURL = "http://127.0.0.1:\(port)"
        log("listening on 127.0.0.1:\(port); resync listing of \(settings.callList.count) bytes")

        // Started now, idle until told to run: its periodic wake-ups let the server release held
        // polls at their deadline before the stream starts.
        let generator = Generator(rate: options.rate, outbox: outbox, confirmations: confirmations)
        _ = generator.start(traffic: traffic)
        return GenesysSide(port: port, options: options, settings: settings, outbox: outbox, generator: generator)
    }

    func wake() { outbox.wake() }

    func startSink(until stop: @escaping @Sendable () -> Bool) {
        _ = Sink(port: port, authorization: settings.authorization, transport: options.transport).start(until: stop)
    }

    func startReflex(cpu: Int?, until stop: @escaping @Sendable () -> Bool) {
        _ = Reflex(port: port, authorization: settings.authorization, cpu: cpu, transport: options.transport).start(until: stop)
    }

    func daemonConfiguration(logLevel: String, stateDirectory: String) -> String {
        DaemonProcess.configuration(port: port, transport: options.transport, logLevel: logLevel, stateDirectory: stateDirectory)
    }
}
