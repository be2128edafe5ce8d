import Foundation
import Synchronization

/// One run: the server, the daemon (or a built-in consumer), warm-up, measurement, grace, report.
struct LoadRun {
    let options: Options

    func run() -> Report {
        let voicenter = options.platform == .voicenter
        let transport = voicenter ? "socket.io" : options.transport
        var report = Report(
            transport: options.external ? "external" : transport, sink: options.sink, reflex: options.reflex, targetRate: options.rate,
            calls: options.calls,
            capturePercent: options.capturePercent, warmupSeconds: options.warmup, durationSeconds: options.duration)
        if voicenter {
            report.platform = options.platform.rawValue
            report.extensions = VoicenterTraffic.extensionCount(calls: options.calls)
            // The daemon's choice: the sink speaks Engine.IO 4, an external client its own.
            if !options.sink, !options.external { report.socketioVersion = options.engineIO }
        }
        let status = ServerStatus()
        let launched: (any PlatformSide)? =
            voicenter
            ? VoicenterSide.start(options: options, status: status, log: log) : GenesysSide.start(options: options, status: status, log: log)
        guard let side = launched else {
            report.error = "the load generator's server could not listen on 127.0.0.1"
            return report
        }
        let port = side.port

        var daemon: DaemonProcess?
        defer {
            daemon?.stop()
        }
        let stopConsumer = ConsumerStop()
        let started = monotonicNanoseconds()
        if options.sink {
            side.startSink(until: { stopConsumer.isSet })
        } else if options.reflex {
            side.startReflex(cpu: options.daemonCPU, until: { stopConsumer.isSet })
        } else if options.external {
            log("no daemon: waiting for a client on 127.0.0.1:\(port)")
        } else {
            do {
                daemon = try DaemonProcess.start(
                    binary: options.daemon, port: port,
                    configuration: {
                        // `state:` ends both platforms' configurations.
                        side.daemonConfiguration(logLevel: options.logLevel, stateDirectory: $0)
                            + (options.journalSyncInterval.map { "\n  journal_sync_interval: \($0)" } ?? "")
                            + (options.metricsPort.map { "\nmetrics:\n  enabled: true\n  port: \($0)" } ?? "")
                    }, cpu: options.daemonCPU,
                    logFile: options.daemonLog)
            } catch {
                report.error = "cannot start the daemon \(options.daemon): \(error)"
                return finish(report, status: status, side: side)
            }
            status.daemonPID.store(daemon!.process.processIdentifier, ordering: .relaxed)
        }
        let probe = daemon.map { ProcessProbe(pid: $0.process.processIdentifier) }
        var curve: [[Double]] = []
        func sample() {
            guard let probe, let memory = probe.memory() else { return }
            curve.append([Double(monotonicNanoseconds() - started) / 1e9, Double(memory.rssKiB) / 1024])
        }

        // The stream starts once the daemon has resynced (10,000 calls tracked) and polls.
        let deadline = monotonicNanoseconds() + (options.external ? 300 : 30) * 1_000_000_000
        while true {
            let counters = status.snapshot()
            if counters.subscriptions >= 1, counters.connects >= 1, daemon == nil || counters.resyncs >= 1 { break }
            if let daemon, !daemon.process.isRunning {
                report.error = "the daemon exited with status \(daemon.process.terminationStatus) before subscribing"
                report.daemon = Report.Daemon(
                    cpuSeconds: 0, cpuCores: 0, peakRssMib: 0, rssWithCallsMib: 0, rssCurve: [],
                    exitStatus: daemon.process.terminationStatus)
                return finish(report, status: status, side: side)
            }
            if monotonicNanoseconds() > deadline {
                report.error = "no client subscribed and polled in time"
                return finish(report, status: status, side: side)
            }
            usleep(10_000)
        }
        // Let the engine take the resync in before measuring memory per call.
        usleep(500_000)
        sample()

        side.pacer.set(.running)
        log("streaming at \(Int(options.rate)) events/s over \(options.calls) calls")

        let own = ProcessProbe.current
        func wait(seconds: Double) {
            let end = monotonicNanoseconds() + Int64(seconds * 1e9)
            var nextSample = monotonicNanoseconds()
            while monotonicNanoseconds() < end {
                if monotonicNanoseconds() >= nextSample {
                    sample()
                    nextSample += Int64(options.sampleEvery * 1e9)
                }
                usleep(20_000)
            }
        }
        wait(seconds: options.warmup)
        let rssWithCalls = probe?.memory()?.rssKiB ?? 0
        status.measuring.store(true, ordering: .relaxed)
        let measureStart = monotonicNanoseconds()
        let eventsStart = status.snapshot().eventsWritten
        let daemonCPUStart = probe?.cpuSeconds() ?? 0
        let ownCPUStart = own.cpuSeconds() ?? 0
        wait(seconds: options.duration)
        status.measuring.store(false, ordering: .relaxed)
        let measured = Double(monotonicNanoseconds() - measureStart) / 1e9
        let eventsEnd = status.snapshot().eventsWritten
        let daemonCPU = (probe?.cpuSeconds() ?? 0) - daemonCPUStart
        let ownCPU = (own.cpuSeconds() ?? 0) - ownCPUStart
        side.pacer.set(.confirmationsOnly)
        log("measured; \(options.grace) s of grace for late actions")
        wait(seconds: options.grace)
        stopConsumer.set()

        report.eventsWritten = eventsEnd - eventsStart
        report.eventsPerSecond = Double(report.eventsWritten) / measured
        report.durationSeconds = measured
        let statistics = side.pacer.currentStatistics
        report.loadgen = Report.Loadgen(
            cpuSeconds: ownCPU, cpuCores: ownCPU / measured, confirmations: statistics.confirmations,
            ignoredConfirmations: statistics.ignoredConfirmations, shortfall: statistics.shortfall)
        if let probe, let memory = probe.memory() {
            let before = status.rssAtHandshake.withLock { $0 }
            report.daemon = Report.Daemon(
                cpuSeconds: daemonCPU, cpuCores: daemonCPU / measured, peakRssMib: Double(memory.peakKiB) / 1024,
                rssBeforeCallsMib: before.map { Double($0) / 1024 }, rssWithCallsMib: Double(rssWithCalls) / 1024,
                memoryPerCallBytes: before.map { Double(rssWithCalls - $0) * 1024 / Double(options.calls) },
                rssCurve: curve)
        } else if let daemon {
            report.error = "the daemon exited with status \(daemon.process.terminationStatus) during the run"
        }
        return finish(report, status: status, side: side)
    }

    private func finish(_ report: Report, status: ServerStatus, side: any PlatformSide) -> Report {
        var report = report
        side.pacer.set(.stopped)
        while !side.pacer.isFinished { usleep(1000) }
        status.stopRequested.store(true, ordering: .releasing)
        side.wake()
        while status.final.withLock({ $0 == nil }) {
            side.wake()
            usleep(1000)
        }
        if let final = status.final.withLock({ $0 }) {
            report.actions = final.counts
            if report.sink {
                report.actions = nil
            } else {
                report.latencyMs = final.latency
                report.latencyFromGenerationMs = final.latencyFromGeneration
                report.newCallLatencyMs = final.newCallLatency
            }
        }
        report.server = status.snapshot()
        return report
    }

    private func log(_ message: String) {
        if !options.quiet { FileHandle.standardError.write(Data("loadgen: \(message)\n".utf8)) }
    }
}

/// Tells a built-in consumer's thread to stop.
final class ConsumerStop: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
