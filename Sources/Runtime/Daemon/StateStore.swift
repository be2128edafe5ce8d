import CMutewardenShims
import Foundation
import MutewardenEngine
import MutewardenModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The state file: `<state directory>/state.json`, replaced atomically (write a temporary file,
/// fsync it, rename it over the old one, fsync the directory), so a crash at any instant leaves
/// either the old state or the new one, never a torn file.
public struct StateStore: Sendable {
    public enum LoadResult: Sendable {
        case none
        case loaded(EngineState)
        /// The file could not be read as state; it was moved to `movedTo` so the daemon can start.
        case corrupt(reason: String, movedTo: String)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) {
        self.directory = directory
    }

    /// Creates the directory if needed (0700: the state names calls and extensions).
    public func prepare() throws(Failure) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw Failure(description: "\(directory) is not a directory") }
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw Failure(description: "cannot create the state directory \(directory): \(error.localizedDescription)")
            }
        }
        guard access(directory, W_OK) == 0 else {
            throw Failure(description: "the state directory \(directory) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    public func load() -> LoadResult {
        guard let data = FileManager.default.contents(atPath: path) else { return .none }
        do {
            let state = try JSONDecoder().decode(EngineState.self, from: data)
            guard state.version == EngineState.currentVersion else {
                return moveAside(reason: "unknown state version \(state.version)")
            }
            return .loaded(state)
        } catch {
            return moveAside(reason: "not valid state: \(error)")
        }
    }

    private func moveAside(reason: String) -> LoadResult {
        let target = "\(path).corrupt-\(wallClockNanoseconds() / 1_000_000_000)"
        if rename(path, target) != 0 {
            // Could not move it: remove it, or the daemon would trip on it at every start.
            unlink(path)
            return .corrupt(reason: reason, movedTo: "(removed: \(String(cString: strerror(errno))))")
        }
        return .corrupt(reason: reason, movedTo: target)
    }

    /// Writes the engine's image, encoded straight from its entries. `pause` runs between slices
    /// of the work (32 windows encoded, or 256 KiB written): the state writer yields its core there.
    public func save(_ image: EngineStateImage, pause: () -> Void = {}) throws(Failure) {
        let data = image.jsonBytes(pauseEvery: 32, pause: pause)
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var ok = data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, min(buffer.count - offset, 256 * 1024))
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
                pause()
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let writeError = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(writeError)))")
        }
        guard rename(temporary, path) == 0 else {
            throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        // The rename is durable only once the directory entry is.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

/// Writes the latest state off the engine thread, coalescing: an fsync must never delay an
/// action, and only the newest state matters.
final class StateWriter: Sendable {
    private let store: StateStore
    private let latest = Locked<(image: EngineStateImage, version: UInt64)?>(nil)
    private let wakeup = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let onError: @Sendable (String) -> Void
    private let lastFailure = Locked<String?>(nil)

    init(store: StateStore, onError: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.onError = onError
        let thread = Thread { [self] in
            mw_set_thread_name("mw-state")
            run()
        }
        thread.start()
    }

    /// The engine's image: sorted and encoded here, off the engine thread.
    func submit(_ image: EngineStateImage, version: UInt64) {
        latest.withLock { $0 = (image, version) }
        wakeup.signal()
    }

    /// Writes what is pending and stops the thread.
    func finish() {
        stopped.store(true, ordering: .releasing)
        wakeup.signal()
        done.wait()
    }

    private func run() {
        // Encoding every open window takes milliseconds (3.5–5 ms with 1,200 windows open).
        // At nice 10 that burst still ran whole while the engine thread waited: this thread
        // sleeps for a second between writes, so the scheduler wakes it with credit to spend
        // (`perf sched timehist` showed 5 ms stalls of the engine, once a second). SCHED_IDLE
        // gives the core to any other thread that wants it and still writes in the gaps, which
        // is all the file needs: the newest state, soon. The yields in `write` bound what is
        // left: an idle-class thread once picked may still run out its time slice.
        if mw_set_thread_idle_policy() != 0 { _ = mw_set_thread_nice(19) }
        while true {
            wakeup.wait()
            if let pending = latest.withLock({ value in
                defer { value = nil }
                return value
            }) {
                write(pending.image)
            }
            if stopped.load(ordering: .acquiring) {
                if let pending = latest.withLock({ $0 }) { write(pending.image) }
                done.signal()
                return
            }
        }
    }

    private func write(_ image: EngineStateImage) {
        do {
            // About 100 µs of encoding between yields: whatever else wants this core gets it
            // within that, where SCHED_IDLE alone still let a burst run a whole time slice.
            try store.save(image, pause: { _ = sched_yield() })
            lastFailure.withLock { $0 = nil }
        } catch {
            // One report per distinct failure, not one per write.
            let message = error.description
            let isNew = lastFailure.withLock { last in
                defer { last = message }
                return last != message
            }
            if isNew { onError(message) }
        }
    }
}
