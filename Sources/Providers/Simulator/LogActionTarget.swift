import MutewardenProviderKit
import MutewardenModel

/// Settings of the `log` target: accepts every action and reports it, failing a configurable share.
public struct LogTargetSettings: TargetSettings, Hashable {
    /// Share of attempts that fail, to exercise retries and alarms.
    public var failRatio = 0.0
    public var failure: ActionFailure.Disposition = .retryable
    /// Simulated time each attempt takes.
    public var latency: Duration = .zero
    public var seed: UInt64?

    public init() {}

    /// It confirms on acceptance: there is no platform to report state back.
    public var confirmsByEvent: Bool { false }

    public var summary: String {
        "log: fails \(Int((failRatio * 100).rounded()))% of attempts (\(failure.rawValue)), latency \(latency.compact)"
    }

    public func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        LogActionTarget(name: name, settings: self, context: context)
    }

    public static let provider = TargetProvider(type: "log") { section in
        var settings = LogTargetSettings()
        if let value = section.double("fail_ratio", in: 0...1) { settings.failRatio = value }
        if let value = section.choice("failure", FailureKind.self) { settings.failure = value.disposition }
        if let value = section.duration("latency") { settings.latency = value }
        if let value = section.int("seed", in: 0...Int.max) { settings.seed = UInt64(value) }
        return settings
    }

    enum FailureKind: String, CaseIterable {
        case retryable, permanent
        case callGone = "call-gone"

        var disposition: ActionFailure.Disposition {
            switch self {
            case .retryable: .retryable
            case .permanent: .permanent
            case .callGone: .callGone
            }
        }
    }
}

public final class LogActionTarget: ActionTarget {
    public let descriptor: TargetDescriptor
    let settings: LogTargetSettings
    let context: ProviderContext
    private let random: Locked<SplitMix64>

    public init(name: String, settings: LogTargetSettings, context: ProviderContext) {
        descriptor = TargetDescriptor(name: name, confirmsByEvent: settings.confirmsByEvent)
        self.settings = settings
        self.context = context
        random = Locked(SplitMix64(seed: settings.seed ?? UInt64.random(in: 0...UInt64.max)))
    }

    public func perform(_ request: ActionRequest) async -> ActionAttemptResult {
        if settings.latency > .zero { try? await Task.sleep(for: settings.latency) }
        let draw = random.withLock { Double($0.next() >> 11) / Double(1 << 53) }
        let fields: AuditFields = [
            .target: descriptor.name, .action: request.kind.operation(request.verb), .call: request.call.primary,
            .attempt: String(request.attempt), .idempotencyKey: request.idempotencyKey, .policy: request.policy,
        ]
        if draw < settings.failRatio {
            return .failed(
                ActionFailure(
                    settings.failure, "simulated failure of the log target (fail_ratio \(settings.failRatio))",
                    code: "simulated"))
        }
        context.report(.debug, "log target \(descriptor.name): \(request.kind.operation(request.verb)) \(request.address)", fields)
        return .accepted
    }
}
