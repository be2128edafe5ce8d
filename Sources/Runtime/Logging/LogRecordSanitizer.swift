import Logging
import MutewardenModel

/// A log event after sanitizing: what a backend may write, and the only thing it should see.
///
/// Every text in it has been through ``PANMasker`` and secret-bearing metadata values are
/// replaced, so a backend (stderr, the in-memory test handler, journald) formats it without
/// having to think about PCI at all.
public struct SanitizedLogRecord: Sendable, Equatable {
    public var level: Logger.Level
    public var label: String
    public var message: String
    /// Handler metadata, then the metadata provider's, then the call's, later ones winning, as
    /// swift-log's own handlers merge them; an event's error adds `error.message` and
    /// `error.type`. Values are `.string`, `.dictionary` or `.array`, never `.stringConvertible`:
    /// a value is rendered once, here, so that it cannot render differently later.
    public var metadata: Logger.Metadata
    public var source: String
    public var file: String
    public var function: String
    public var line: UInt

    public init(
        level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
        source: String, file: String, function: String, line: UInt
    ) {
        self.level = level
        self.label = label
        self.message = message
        self.metadata = metadata
        self.source = source
        self.file = file
        self.function = function
        self.line = line
    }
}

/// The one place that decides what of a log event may reach a log. Every handler in this module
/// runs each event through it, so that masking cannot differ between backends.
///
/// - Message, label, source, metadata keys and values at every nesting level: PANs masked, each
///   text cut to ``PANMasker/maximumLoggedBytes`` (``PANMasker/maskForLog(_:)``).
/// - A metadata key that names a secret (see ``secretKeyMarkers``): its whole value, nested or
///   not, becomes ``redacted``.
/// - A top-level identifier field (``identifierKeys``) whose value is one identifier
///   (``isIdentifier(_:)``) is kept as it is: see ``AuditField/isIdentifier``.
public struct LogRecordSanitizer: Sendable, Hashable {
    public static let redacted = "<redacted>"

    /// Substrings that mark a key as secret-bearing. Keys are compared lower-cased with `_` and
    /// `-` removed, so `api_key`, `API-Key` and `apiKey` all match `apikey`.
    public static let secretKeyMarkers: [String] = [
        "password", "passwd", "secret", "token", "authorization", "cookie", "apikey",
        "privatekey", "credential",
    ]

    /// The markers as UTF-8: `String.contains(_:)` on a string builds a search table per call,
    /// which made this check most of a log record's cost (126 searches for an audit record).
    private let markers: [[UInt8]]

    /// - Parameter additionalSecretKeyMarkers: more key substrings to treat as secret, such as a
    ///   platform's own header names; normalized like ``secretKeyMarkers``.
    public init(additionalSecretKeyMarkers: [String] = []) {
        markers = (Self.secretKeyMarkers + additionalSecretKeyMarkers.map(Self.normalizedKey)).map { Array($0.utf8) }
    }

    /// Sanitizes one swift-log event as a handler with `handlerMetadata` and `metadataProvider`
    /// received it.
    public func sanitize(
        _ event: LogEvent,
        label: String,
        handlerMetadata: Logger.Metadata,
        metadataProvider: Logger.MetadataProvider?
    ) -> SanitizedLogRecord {
        var merged = handlerMetadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            // The usual case (an audit record's fields, nothing else) takes the event's own
            // dictionary rather than hashing every key into an empty one.
            if merged.isEmpty { merged = explicit } else { merged.merge(explicit) { _, explicit in explicit } }
        }
        if let error = event.error {
            // The same keys as swift-log's StreamLogHandler, so that operators see one convention.
            merged["error.message"] = .string(String(describing: error))
            merged["error.type"] = .string(String(reflecting: type(of: error)))
        }
        return SanitizedLogRecord(
            level: event.level,
            label: PANMasker.maskForLog(label),
            message: Self.maskMessage(event.message.description, keeping: merged),
            metadata: sanitize(merged),
            source: PANMasker.maskForLog(event.source),
            file: event.file,
            function: event.function,
            line: event.line)
    }

    /// The metadata keys of the audit fields that hold an identifier the platform or the daemon
    /// generated, never customer data.
    public static let identifierKeys: [String] = AuditField.allCases.filter(\.isIdentifier).map(\.rawValue)

    /// Whether `value` is one identifier, as platforms and the daemon write them: 1–128 ASCII
    /// letters, digits, `-`, `_`, `.` or `:`. Anything else (spaces, other scripts, escapes) is
    /// free text, masked as every other field is.
    public static func isIdentifier(_ value: String) -> Bool {
        let count = value.utf8.count
        guard count > 0, count <= 128 else { return false }
        return value.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"):
                true
            default: false
            }
        }
    }

    /// The message with PANs masked, but for the identifiers its record's identifier fields
    /// hold: "window opened on call 4509…" names the call as its `call=` field does, so that
    /// both are searched alike. Voicenter's ivrids are 18–19 digit runs, one in ten Luhn-valid;
    /// masked in the text they read as a card number and split the trail. The text around each
    /// identifier is masked as any text; an identifier field's value is taken as one only when
    /// it looks like one (``isIdentifier(_:)``), as for the field itself.
    public static func maskMessage(_ message: String, keeping metadata: Logger.Metadata) -> String {
        var kept: [String] = []
        for key in identifierKeys {
            // Only a long digit run can read as a PAN: shorter identifiers need no keeping.
            guard case .string(let value)? = metadata[key], value.utf8.count >= 12, isIdentifier(value),
                value.utf8.lazy.filter({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }).count >= 12
            else { continue }
            kept.append(value)
        }
        // Longest first, so that an identifier that contains another is kept whole.
        return masked(message, keeping: kept.sorted { $0.utf8.count > $1.utf8.count }[...])
    }

    /// `text` cut at each of `identifiers` in turn, the pieces between them masked.
    private static func masked(_ text: String, keeping identifiers: ArraySlice<String>) -> String {
        guard let identifier = identifiers.first else { return PANMasker.maskForLog(text) }
        return text.split(separator: identifier, omittingEmptySubsequences: false)
            .map { masked(String($0), keeping: identifiers.dropFirst()) }
            .joined(separator: identifier)
    }

    /// `value` as it may be logged under `key` at the top level: kept whole when `key` is an
    /// identifier field and `value` one identifier, masked like any text otherwise.
    public static func loggable(_ value: String, forKey key: String) -> String {
        if identifierKeys.contains(key), isIdentifier(value) { return value }
        return PANMasker.maskForLog(value)
    }

    /// `metadata` with PANs masked in keys and values and secret-bearing values redacted.
    public func sanitize(_ metadata: Logger.Metadata) -> Logger.Metadata {
        sanitize(metadata, topLevel: true)
    }

    private func sanitize(_ metadata: Logger.Metadata, topLevel: Bool) -> Logger.Metadata {
        // Values are replaced in place, by index: most keys and values come out unchanged, and a
        // new dictionary would hash every key again.
        var result = metadata
        var renamed: [(key: String, value: Logger.MetadataValue)] = []
        var moved: [String] = []
        for index in metadata.indices {
            let (key, value) = metadata[index]
            let clean: Logger.MetadataValue
            if isSecretKey(key) {
                clean = .string(Self.redacted)
            } else if topLevel, case .string(let text) = value, Self.identifierKeys.contains(key), Self.isIdentifier(text) {
                clean = value
            } else {
                clean = sanitize(value)
            }
            let maskedKey = PANMasker.maskForLog(key)
            if maskedKey == key {
                result.values[index] = clean
            } else {
                moved.append(key)
                renamed.append((maskedKey, clean))
            }
        }
        for key in moved { result[key] = nil }
        // Two keys can mask to the same text. Keys that needed no masking win, then the first in
        // sorted order, so that the outcome does not depend on dictionary order.
        renamed.sort { $0.key < $1.key }
        for (key, value) in renamed where result[key] == nil {
            result[key] = value
        }
        return result
    }

    /// `value` with PANs masked throughout; nested keys are checked for secrets too.
    public func sanitize(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text):
            return .string(PANMasker.maskForLog(text))
        case .stringConvertible(let convertible):
            return .string(PANMasker.maskForLog(convertible.description))
        case .dictionary(let nested):
            return .dictionary(sanitize(nested, topLevel: false))
        case .array(let elements):
            return .array(elements.map { sanitize($0) })
        }
    }

    /// Whether `key` names a value that must never be logged.
    public func isSecretKey(_ key: String) -> Bool {
        // ASCII keys (all of the daemon's) are normalized into a stack buffer: lowercasing and
        // filtering a String allocated twice per key. Others keep Unicode's lowercasing, which
        // can turn a non-ASCII letter into an ASCII one (KELVIN SIGN into `k`).
        let count = key.utf8.count
        if count <= 64, key.utf8.allSatisfy({ $0 < 0x80 }) {
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
                var length = 0
                for byte in key.utf8 where byte != UInt8(ascii: "_") && byte != UInt8(ascii: "-") {
                    buffer[length] = byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
                    length += 1
                }
                let text = UnsafeBufferPointer(rebasing: buffer[..<length])
                return markers.contains { Self.occurs($0, in: text) }
            }
        }
        let normalized = Self.normalizedKey(key)
        return normalized.utf8.withContiguousStorageIfAvailable { text in
            markers.contains { Self.occurs($0, in: text) }
        } ?? markers.contains { Self.occurs($0, in: Array(normalized.utf8)) }
    }

    /// Whether `marker` occurs in `text`. Keys and markers are a few bytes long, so the plain
    /// scan beats any precomputed search.
    static func occurs<Text: RandomAccessCollection<UInt8>>(_ marker: [UInt8], in text: Text) -> Bool
    where Text.Index == Int {
        guard !marker.isEmpty else { return true }
        guard text.count >= marker.count else { return false }
        let first = marker[0]
        var start = text.startIndex
        let lastStart = text.endIndex - marker.count
        while start <= lastStart {
            if text[start] == first {
                var matched = 1
                while matched < marker.count && text[start + matched] == marker[matched] { matched += 1 }
                if matched == marker.count { return true }
            }
            start += 1
        }
        return false
    }

    static func normalizedKey(_ key: String) -> String {
        String(key.lowercased().unicodeScalars.filter { $0 != "_" && $0 != "-" })
    }
}
