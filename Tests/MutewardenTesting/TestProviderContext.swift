import MutewardenModel
import MutewardenProviderKit

/// A ``ProviderContext`` for building a provider in a test, whose reports (the audit records the
/// provider emits) are kept for the test to read.
public final class TestProviderContext: Sendable {
    public struct Report: Sendable, Hashable {
        public var severity: AuditSeverity
        public var message: String
        public var fields: AuditFields
    }

    private let recorded = Locked<[Report]>([])
    public let shared: SharedResources
    public let owner: String

    public init(owner: String = "test", shared: SharedResources = SharedResources()) {
        self.owner = owner
        self.shared = shared
    }

    /// The context to hand the provider; every copy reports here.
    public var context: ProviderContext {
        ProviderContext(
            report: { [self] severity, message, fields in
                recorded.withLock { $0.append(Report(severity: severity, message: message, fields: fields)) }
            }, shared: shared, owner: owner)
    }

    public var reports: [Report] { recorded.withLock { $0 } }

    public func removeAll() { recorded.withLock { $0.removeAll() } }
}
