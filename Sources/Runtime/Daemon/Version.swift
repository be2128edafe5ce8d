public enum MutewardenVersion {
    public static let current = "0.1.0"
}
