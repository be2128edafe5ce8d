import MutewardenProviderKit
import MutewardenModel
import Synchronization

/// Settings of the built-in simulated contact center. See docs/providers/simulator.md.
public struct SimulatorSettings: FeedSettings, Hashable {
    /// Agents, each with one extension, numbered from `firstExtension`.
    public var agents = 10
    public var firstExtension = 3001
    /// New calls per second, on average (arrivals are Poisson).
    public var callRate = 1.0
    /// Average time from answer to hang-up.
    public var callDuration: Duration = .seconds(60)
    /// Share of calls that go through a card capture.
    public var captureRatio = 0.3
    /// Time from answer to the start of the capture.
    public var captureAfter: Duration = .seconds(10)
    public var captureDuration: Duration = .seconds(15)
    /// The attribute that signals the capture stage, and its values.
    public var captureAttribute = "PCI_STAGE"
    public var captureValue = "CARD"
    public var doneValue = "DONE"
    /// Share of captures whose end is never signalled: exercises the window cap.
    public var abandonRatio = 0.0
    /// Stop creating calls after this many (nil: never).
    public var maxCalls: Int?
    public var seed: UInt64?

    public init() {}

    public var summary: String {
        "simulator: \(agents) agents from extension \(firstExtension), \(callRate) calls/s, "
            + "\(Int((captureRatio * 100).rounded()))% with card capture on \(captureAttribute)=\(captureValue)"
    }

    public func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed {
        SimulatorFeed(name: name, settings: self)
    }

    /// The `simulator` feed type, for the provider registry.
    public static let provider = FeedProvider(type: "simulator") { section in
        var settings = SimulatorSettings()
        if let value = section.int("agents", in: 1...100_000) { settings.agents = value }
        if let value = section.int("first_extension", in: 0...999_999_999) { settings.firstExtension = value }
        if let value = section.double("call_rate", in: 0.001...100_000) { settings.callRate = value }
        if let value = section.positiveDuration("call_duration") { settings.callDuration = value }
        if let value = section.double("capture_ratio", in: 0...1) { settings.captureRatio = value }
        if let value = section.duration("capture_after") { settings.captureAfter = value }
        if let value = section.positiveDuration("capture_duration") { settings.captureDuration = value }
        if let value = section.string("capture_attribute") { settings.captureAttribute = value }
        if let value = section.string("capture_value") { settings.captureValue = value }
        if let value = section.string("done_value") { settings.doneValue = value }
        if let value = section.double("abandon_ratio", in: 0...1) { settings.abandonRatio = value }
        if let value = section.int("max_calls", in: 1...Int.max) { settings.maxCalls = value }
        if let value = section.int("seed", in: 0...Int.max) { settings.seed = UInt64(value) }
        return settings
    }
}

/// Synthetic calls in real time: each rings, is answered, may go through a card capture signalled
/// by an attribute, and hangs up.
public struct SimulatorFeed: CallFeed {
    public let name: String
    let settings: SimulatorSettings

    public init(name: String, settings: SimulatorSettings) {
        self.name = name
        self.settings = settings
    }

    public func run(delivering sink: any CallUpdateSink) async throws {
        var script = SimulatorScript(feed: name, settings: settings)
        sink.feedStateChanged(feed: name, up: true, detail: "simulator started")
        defer { sink.feedStateChanged(feed: name, up: false, detail: "simulator stopped") }
        let clock = ContinuousClock()
        let start = clock.now
        while let (offset, update) = script.next() {
            try await clock.sleep(until: start + offset)
            sink.deliver(update)
        }
        // Every scripted call is over; stay up (and silent) until cancelled, like a quiet feed.
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// The simulator's schedule, separate from real time so that it can be tested on its own.
struct SimulatorScript {
    private struct Scheduled {
        var at: Duration
        var order: Int
        var update: CallUpdate
    }

    let feed: String
    let settings: SimulatorSettings
    private var random: SplitMix64
    private var pending: [Scheduled] = []
    private var order = 0
    private var nextArrival: Duration = .zero
    private(set) var callsCreated = 0

    init(feed: String, settings: SimulatorSettings) {
        self.feed = feed
        self.settings = settings
        random = SplitMix64(seed: settings.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    /// The next event and its time from the start, or nil when the script is over.
    mutating func next() -> (Duration, CallUpdate)? {
        while settings.maxCalls.map({ callsCreated < $0 }) ?? true,
            pending.isEmpty || nextArrival <= pending.map(\.at).min()!
        {
            scheduleCall(at: nextArrival)
            nextArrival += exponential(mean: 1 / settings.callRate)
        }
        guard let index = pending.indices.min(by: { (pending[$0].at, pending[$0].order) < (pending[$1].at, pending[$1].order) })
        else { return nil }
        let event = pending.remove(at: index)
        return (event.at, event.update)
    }

    private mutating func scheduleCall(at arrival: Duration) {
        callsCreated += 1
        let id = "sim-\(feed)-\(callsCreated)"
        let ext = String(settings.firstExtension + Int(random.next() % UInt64(settings.agents)))
        var sequence: UInt64 = 0
        var attributes = ["Queue": ["billing", "sales", "support"][Int(random.next() % 3)]]
        func emit(_ at: Duration, _ state: CallState, _ attributes: [String: String]?) {
            sequence += 1
            pending.append(
                Scheduled(
                    at: at, order: order,
                    update: CallUpdate(
                        feed: feed, ids: CallIdentifiers(primary: id, secondary: ["connId": String(callsCreated, radix: 16)]),
                        agentExtension: ext, direction: .inbound, state: state, attributes: attributes,
                        sequence: sequence)))
            order += 1
        }
        let answered = arrival + .milliseconds(500 + Int(random.next() % 2500))
        let hangup = answered + max(.seconds(1), exponential(mean: settings.callDuration.seconds))
        emit(arrival, .ringing, [:])
        emit(answered, .established, attributes)
        if uniform() < settings.captureRatio {
            let captureStart = answered + settings.captureAfter
            if captureStart < hangup {
                attributes[settings.captureAttribute] = settings.captureValue
                emit(captureStart, .established, attributes)
                let captureEnd = captureStart + settings.captureDuration
                if uniform() >= settings.abandonRatio, captureEnd < hangup {
                    attributes[settings.captureAttribute] = settings.doneValue
                    emit(captureEnd, .established, attributes)
                }
            }
        }
        emit(hangup, .released, nil)
    }

    private mutating func uniform() -> Double { Double(random.next() >> 11) / Double(1 << 53) }

    private mutating func exponential(mean: Double) -> Duration {
        let seconds = -mean * log1p(-min(uniform(), 0.999_999))
        return .nanoseconds(Int64(seconds * 1e9))
    }
}

#if canImport(Glibc)
import Glibc
#endif
