import MutewardenModel

/// The journal's `MESSAGE_ID` for each ``AuditKind``.
///
/// These are fixed forever: `journalctl MESSAGE_ID=…` queries, SIEM rules and the catalog in
/// `systemd/mutewarden.catalog` all match on them, so an id must never be regenerated or reused
/// for another meaning. A new kind gets a new id (`systemd-id128 new`) and a catalog entry; a
/// test checks that the two lists agree.
public enum JournalMessageID {
    /// 32 lowercase hex digits, as journald writes them.
    public static func of(_ kind: AuditKind) -> String {
        switch kind {
        case .windowOpened: "e8c5e86d89c34d6b859ac5c7b03873b0"
        case .windowClosed: "cf03f2f72c004de598046f26c6446046"
        case .actionAttempt: "74cd718858de4f37a9ea14d16641d71a"
        case .actionRetry: "ebc79719ec654ba3802fd1f55fdfa6ae"
        case .actionConfirmed: "c782cbce3468405abd36d6e8950f2f77"
        case .actionFailed: "06cfaf6031794b5aace42058159f4ee0"
        case .actionAbandoned: "569309c33ddc4c7898edda08595cd55b"
        case .actionRecovered: "603e5b8b15444b8db153b2e272e611e1"
        case .windowOrphaned: "ca180cd5410b40ffaa3c0b8a5aaaadd0"
        case .windowDrift: "9811c2c492354ff7908320b1d9a109ac"
        case .dryRun: "6306fabcc57348ba96bf0f512629ac7b"
        case .callExpired: "6bed9002897b4defb52aa7a1c921cefe"
        case .trackerFull: "0fd445dda95f4ce496f3b1f07b8e485f"
        case .feedUp: "b4ad13f0683542ddafd447ee05301655"
        case .feedDown: "791ee453159640febd9acf9862085c55"
        case .configurationLoaded: "d2ce7e9dd92b4d878cb10cb657177a16"
        case .configurationRejected: "5bc682f96e0349c4bfa0f4bd58aa0a3e"
        case .stateRestored: "3f21c859b0a54f8492b2c5d03456dd32"
        case .daemonStarted: "bf65273f40c84308984349b4adea366c"
        case .daemonStopping: "5c87ffdbe37745eeb04d06fce767e962"
        }
    }

    /// The kind whose id is `id`, for readers of the journal (tests, tools).
    public static func kind(for id: String) -> AuditKind? {
        AuditKind.allCases.first { of($0) == id }
    }
}
