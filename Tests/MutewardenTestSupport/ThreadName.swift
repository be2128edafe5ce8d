import Foundation

/// The kernel's name for the calling thread (what `top -H` shows): tests use it to see where a
/// feed, a target or a sink ran.
public func currentThreadName() -> String {
    ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?")
        .trimmingCharacters(in: .whitespacesAndNewlines)
}
