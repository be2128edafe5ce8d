/// The GWS voice operations the daemon sends, and which window edge makes it send them.
enum Operation: UInt8, CaseIterable, Sendable {
    case pauseRecording, resumeRecording, mute, unmute

    var name: String {
        switch self {
        case .pauseRecording: "PauseCallRecording"
        case .resumeRecording: "ResumeCallRecording"
        case .mute: "MuteCall"
        case .unmute: "UnmuteCall"
        }
    }

    init?(name: String) {
        guard let match = Operation.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    /// What the daemon's two policies (config/examples/genesys.yaml) send when a capture starts,
    /// and when it ends.
    static let onOpen: [Operation] = [.pauseRecording, .mute]
    static let onClose: [Operation] = [.resumeRecording, .unmute]
}

/// A window-opening (`PCI_STAGE=CARD`) or window-closing (`PCI_STAGE=DONE`) event in the stream.
struct WindowEdge: Sendable {
    var callID: String
    var opening: Bool
}
