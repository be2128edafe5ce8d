import Logging
import MutewardenLogging
import MutewardenTesting
import Synchronization

/// 2026-11-21T22:49:00.123Z, so that expected lines can be written out in full.
let fixedTime = WallClockTime(secondsSinceEpoch: 1_795_301_340, nanoseconds: 123_456_789)
let fixedClock: @Sendable () -> WallClockTime = { fixedTime }

/// Collects what a `StderrLogHandler` would have written.
final class LineCollector: Sendable {
    private let collected = Mutex<[String]>([])

    var lines: [String] { collected.withLock { $0 } }

    var writer: StderrLogHandler.Writer {
        { [self] line in collected.withLock { $0.append(line) } }
    }
}

/// A logger on a `StderrLogHandler` writing into a collector.
func stderrLogger(label: String = "mutewarden", level: Logger.Level = .trace) -> (Logger, LineCollector) {
    let collector = LineCollector()
    let logger = Logger(label: label) { label in
        StderrLogHandler(label: label, logLevel: level, writer: collector.writer, clock: fixedClock)
    }
    return (logger, collector)
}

/// A logger on an `InMemoryLogHandler`, and the handler to read entries from.
func capturingLogger(label: String = "mutewarden") -> (Logger, InMemoryLogHandler) {
    let handler = InMemoryLogHandler(label: label, clock: fixedClock)
    return (handler.logger(label: label), handler)
}

struct CardDeclined: Error, CustomStringConvertible {
    var description: String { "card 4111111111111111 declined" }
}

/// A value whose description holds a PAN, to reach `.stringConvertible` metadata.
struct CardHolder: CustomStringConvertible, Sendable {
    var description: String { "holder of 5555 5555 5555 4444" }
}
