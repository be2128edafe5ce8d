/// Text a platform sent (an error message, an unknown type name) as it may appear in a record.
public enum PlatformText {
    /// At most `limit` characters, control characters removed, an ellipsis when cut: a platform's
    /// message can neither flood a record nor forge a line of it.
    public static func shown(_ text: String, limit: Int = 200) -> String {
        let scalars = text.unicodeScalars.lazy.filter { $0.value >= 0x20 && $0.value != 0x7F }
        let clean = String(String.UnicodeScalarView(scalars.prefix(limit)))
        return text.unicodeScalars.count > limit ? clean + "…" : clean
    }
}
