import MutewardenProviderKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a secret field's text into a `Secret` (MutewardenProviderKit), reading the environment,
/// files and systemd credentials. Its errors name the reference and never the value.
struct SecretResolver: Sendable {
    var environment: [String: String]

    enum Outcome {
        case resolved(Secret)
        case failed(String)
    }

    static let syntaxHelp = "expected ${env:NAME}, ${file:/absolute/path} or ${credential:NAME}"

    /// Whether `text` uses the `${...}` reference syntax anywhere; such text is never taken
    /// literally, so a mistyped reference cannot become an inline password.
    static func looksLikeReference(_ text: String) -> Bool { text.contains("${") }

    func resolve(_ text: String) -> Outcome {
        guard Self.looksLikeReference(text) else {
            if text.isEmpty { return .failed("secret is empty") }
            return .resolved(Secret(reference: "inline", value: text))
        }
        // Only a whole `${...}` is echoed back: text around it might be an inline password.
        guard text.hasPrefix("${"), text.hasSuffix("}"), text.count > 3,
            !text.dropFirst(2).dropLast().contains("${"), !text.dropFirst(2).dropLast().contains("}")
        else {
            return .failed("a secret field holds either a literal value or one whole reference; \(Self.syntaxHelp)")
        }
        let body = String(text.dropFirst(2).dropLast())
        let parts = body.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return .failed("malformed secret reference '\(text)'; \(Self.syntaxHelp)")
        }
        let (scheme, name) = (String(parts[0]), String(parts[1]))
        switch scheme {
        case "env":
            guard isEnvironmentName(name) else {
                return .failed("malformed secret reference '\(text)'; expected ${env:NAME} with a variable name")
            }
            guard let value = environment[name] else {
                return .failed("environment variable '\(name)' for secret reference '\(text)' is not set")
            }
            if value.isEmpty {
                return .failed("environment variable '\(name)' for secret reference '\(text)' is empty")
            }
            return .resolved(Secret(reference: "env:\(name)", value: value))
        case "file":
            guard name.hasPrefix("/"), name.count > 1 else {
                return .failed("malformed secret reference '\(text)'; expected ${file:/absolute/path}")
            }
            return readSecretFile(name, reference: "file:\(name)", shown: text)
        case "credential":
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                return .failed("malformed secret reference '\(text)'; expected ${credential:NAME} with a credential name")
            }
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                return .failed(
                    "secret reference '\(text)' needs $CREDENTIALS_DIRECTORY, which systemd sets for units with LoadCredential=; it is not set")
            }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            return readSecretFile(path, reference: "credential:\(name)", shown: text)
        default:
            return .failed("malformed secret reference '\(text)'; \(Self.syntaxHelp)")
        }
    }

    private func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// The most a secret file may hold: a password, a token or a key is far smaller.
    static let maximumSecretFileBytes = 64 * 1024

    private func readSecretFile(_ path: String, reference: String, shown: String) -> Outcome {
        switch readWholeFile(path, maximumBytes: Self.maximumSecretFileBytes, regularOnly: true) {
        case .failure(let error):
            return .failed("cannot read '\(path)' for secret reference '\(shown)': \(error.message)")
        case .success(let bytes):
            guard var text = String(validating: bytes, as: UTF8.self) else {
                return .failed("'\(path)' for secret reference '\(shown)' is not valid UTF-8")
            }
            // Files written by `echo` or editors end with a newline that is not part of the secret.
            while text.hasSuffix("\n") || text.hasSuffix("\r\n") { text.removeLast() }
            if text.isEmpty { return .failed("'\(path)' for secret reference '\(shown)' is empty") }
            return .resolved(Secret(reference: reference, value: text))
        }
    }
}

struct FileReadError: Error {
    var message: String
}

/// Reads a file with POSIX calls, so that a failure carries the system's reason (`No such file or
/// directory`, `Permission denied`) for the operator.
///
/// At most `maximumBytes` are accepted: a larger file is refused after reading one byte more, so
/// that `/dev/zero` or a file that keeps growing cannot fill memory. With `regularOnly`, anything
/// but a regular file is refused before it is read: opened without blocking, so that a FIFO with
/// no writer cannot hang the load either.
func readWholeFile(_ path: String, maximumBytes: Int, regularOnly: Bool = false) -> Result<[UInt8], FileReadError> {
    let fd = open(path, O_RDONLY | O_CLOEXEC | (regularOnly ? O_NONBLOCK : 0))
    guard fd >= 0 else { return .failure(FileReadError(message: String(cString: strerror(errno)))) }
    defer { close(fd) }
    if regularOnly {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return .failure(FileReadError(message: String(cString: strerror(errno)))) }
        guard status.st_mode & S_IFMT == S_IFREG else { return .failure(FileReadError(message: "not a regular file")) }
    }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let wanted = min(chunk.count, maximumBytes + 1 - bytes.count)
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, wanted) }
        if count < 0 {
            if errno == EINTR { continue }
            return .failure(FileReadError(message: String(cString: strerror(errno))))
        }
        if count == 0 { return .success(bytes) }
        bytes.append(contentsOf: chunk[0..<count])
        if bytes.count > maximumBytes {
            return .failure(FileReadError(message: "larger than \(describeSize(maximumBytes))"))
        }
    }
}

/// `65536` as `64 KiB`, `1048576` as `1 MiB`: how the limits are documented.
func describeSize(_ bytes: Int) -> String {
    if bytes % (1024 * 1024) == 0 { return "\(bytes / (1024 * 1024)) MiB" }
    if bytes % 1024 == 0 { return "\(bytes / 1024) KiB" }
    return "\(bytes) bytes"
}
