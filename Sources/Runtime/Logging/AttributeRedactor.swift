/// Renders call attributes (platform-supplied key/value data such as IVR variables) for a log.
///
/// Attributes are the customer's data, not ours: anything could be in them, so a value is shown
/// only when its key is allowlisted, and even then PAN-masked.
public struct AttributeRedactor: Sendable, Hashable {
    public var allowlist: Set<String>

    public init(allowlist: Set<String>) {
        self.allowlist = allowlist
    }

    /// `key=value` pairs sorted by key and joined with `,`; a key outside the allowlist shows as
    /// `key=<redacted>`. Keys are PAN-masked too: a platform may key data by what it holds.
    public func render(_ attributes: [String: String]) -> String {
        var text = ""
        for (index, key) in attributes.keys.sorted().enumerated() {
            if index > 0 { text.append(",") }
            text.append(PANMasker.maskForLog(key))
            text.append("=")
            if allowlist.contains(key) {
                text.append(PANMasker.maskForLog(attributes[key]!))
            } else {
                text.append(LogRecordSanitizer.redacted)
            }
        }
        return text
    }
}
