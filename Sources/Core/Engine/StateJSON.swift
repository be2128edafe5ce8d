import MutewardenModel

/// The state file's JSON, written by hand: the same document JSONEncoder writes for the
/// synthesized Codable conformances (so JSONDecoder reads it back), at a fraction of the cost.
/// JSONEncoder builds a boxed tree of every window before writing a byte; with many windows
/// open that cost CPU at saturation, a burst every second and megabytes of resident memory
/// (docs/performance.md).
/// Absent optionals are left out, as `encodeIfPresent` does.
extension EngineState {
    public func jsonBytes() -> [UInt8] {
        Self.json(
            version: version, windows: windows, windowCount: windows.count, pendingUndos: pendingUndos,
            pauseEvery: .max, pause: {})
    }

    static func json(
        version: Int, windows: some Sequence<WindowState>, windowCount: Int, pendingUndos: [PendingUndo],
        pauseEvery: Int, pause: () -> Void
    ) -> [UInt8] {
        var out = StateJSONWriter()
        out.bytes.reserveCapacity(1024 + windowCount * 1024)
        out.open()
        out.key("version"); out.integer(version)
        var sincePause = 0
        out.key("windows")
        out.array(windows) { out, window in
            out.window(window)
            sincePause += 1
            if sincePause >= pauseEvery {
                sincePause = 0
                pause()
            }
        }
        out.key("pendingUndos")
        out.array(pendingUndos) { out, undo in
            out.open()
            out.key("window"); out.window(undo.window)
            out.key("engagement"); out.integer(undo.engagement)
            out.key("target"); out.string(undo.target)
            out.close()
        }
        out.close()
        return out.bytes
    }
}

extension EngineStateImage {
    /// The same document as `state.jsonBytes`, without building `state`'s array of every window.
    ///
    /// `pause` runs after every `pauseEvery` windows: the state writer yields its core there, so
    /// that encoding thousands of windows is never one long burst (see `StateWriter`).
    public func jsonBytes(pauseEvery: Int = .max, pause: () -> Void = {}) -> [UInt8] {
        EngineState.json(
            version: EngineState.currentVersion, windows: sortedWindows.lazy.map(\.state),
            windowCount: windows.count, pendingUndos: pendingUndos, pauseEvery: pauseEvery, pause: pause)
    }
}

struct StateJSONWriter {
    var bytes: [UInt8] = []
    /// Whether the next member or element needs a comma before it.
    private var needsComma = false

    mutating func open() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    mutating func close() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    mutating func array<Element>(_ elements: some Sequence<Element>, _ write: (inout StateJSONWriter, Element) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        for element in elements { write(&self, element) }
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    mutating func strings(_ values: [String]) { array(values) { $0.string($1) } }

    mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        needsComma = true
    }

    mutating func integer(_ value: some BinaryInteger) {
        separate()
        // Digits straight into the buffer: `String(value)` allocated a string for each of the
        // five to ten integers of every window.
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude != 0
        bytes[start...].reverse()
        needsComma = true
    }

    mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes.append(0x5C)
                bytes.append(byte)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    mutating func optional(_ name: StaticString, _ value: String?) {
        if let value { key(name); string(value) }
    }

    mutating func identifiers(_ ids: CallIdentifiers) {
        open()
        key("primary"); string(ids.primary)
        key("secondary"); open()
        for (name, value) in ids.secondary.sorted(by: { $0.key < $1.key }) {
            string(name)
            bytes.append(UInt8(ascii: ":"))
            needsComma = false
            string(value)
        }
        close()
        close()
    }

    mutating func window(_ window: WindowState) {
        open()
        key("policy"); string(window.policy)
        key("feed"); string(window.feed)
        key("call"); identifiers(window.call)
        optional("agentExtension", window.agentExtension)
        key("extensionScope"); bool(window.extensionScope)
        key("sequence"); integer(window.sequence)
        if let opening = window.openingSequence { key("openingSequence"); integer(opening) }
        key("openedAtWallNanoseconds"); integer(window.openedAtWallNanoseconds)
        key("triggers"); strings(window.triggers)
        key("covered"); strings(window.covered)
        key("engagements"); array(window.engagements) { $0.engagement($1) }
        key("actions")
        array(window.actions) { out, action in
            out.open()
            out.key("kind"); out.string(action.kind.rawValue)
            out.key("target"); out.string(action.target)
            out.key("byExtension"); out.bool(action.byExtension)
            out.key("deadlineNanoseconds"); out.integer(action.deadlineNanoseconds)
            out.key("fallback"); out.strings(action.fallback)
            out.close()
        }
        key("mode"); string(window.mode)
        close()
    }

    mutating func engagement(_ engagement: EngagementState) {
        open()
        key("action"); integer(engagement.action)
        // A synthesized enum with associated values: {"case":{"label":value}}, `_0` if unlabelled.
        key("address"); open()
        switch engagement.address {
        case .call(let id):
            key("call"); open(); key("id"); string(id); close()
        case .agentExtension(let ext):
            key("agentExtension"); open(); key("_0"); string(ext); close()
        }
        close()
        optional("call", engagement.call)
        key("context"); identifiers(engagement.context)
        optional("agentExtension", engagement.agentExtension)
        key("generation"); integer(engagement.generation)
        key("targets")
        array(engagement.targets) { out, target in
            out.open()
            out.key("target"); out.string(target.target)
            out.key("status"); out.string(target.status.rawValue)
            out.close()
        }
        close()
    }
}

extension WindowJournalRecord {
    /// The record as one journal line (without its newline), the document JSONEncoder would
    /// write, through the state file's writer: the journal thread shares a core with the engine
    /// thread, and JSONEncoder cost it tens of microseconds a record.
    public func appendJSON(to bytes: inout [UInt8]) {
        var out = StateJSONWriter()
        swap(&out.bytes, &bytes)
        out.open()
        out.key("op"); out.string(op.rawValue)
        if let window { out.key("window"); out.window(window) }
        if let key {
            out.key("key"); out.open()
            out.key("policy"); out.string(key.policy)
            out.key("feed"); out.string(key.feed)
            out.key("call"); out.string(key.call)
            out.key("sequence"); out.integer(key.sequence)
            out.close()
        }
        out.close()
        swap(&out.bytes, &bytes)
    }
}
