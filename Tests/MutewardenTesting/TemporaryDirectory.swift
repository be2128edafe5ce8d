import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory of the test's own under TMPDIR (`make test` points it at one scratch
/// directory per run), removed when the value goes away. Made with mkdtemp, so that tests running
/// side by side never share one.
public final class TemporaryDirectory: Sendable {
    public let path: String
    public var url: URL { URL(fileURLWithPath: path) }

    public init(_ prefix: String = "mutewarden-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw TestFailure("mkdtemp in \(base): \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    /// The path of `name` inside the directory.
    public func appending(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
