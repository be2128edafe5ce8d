import CMutewardenShims
import Foundation
import MutewardenModel

#if canImport(Glibc)
import Glibc
#endif

/// Turns a host name into numeric addresses. Blocking is allowed: the client calls it on a thread
/// of its own, never on the service thread or the cooperative pool.
///
/// Bookworm's libwebsockets has no asynchronous resolver, so a name handed to lws would be resolved
/// with a blocking `getaddrinfo` on the service thread, stalling every other connection of that
/// thread for as long as the resolver takes. The client therefore resolves first and gives lws a
/// numeric address, with the name as Host header and TLS name.
public protocol HostResolver: Sendable {
    func resolve(host: String, port: Int) throws -> [String]
}

/// `getaddrinfo`, in the order it returns (RFC 6724 preference).
public struct SystemResolver: HostResolver {
    public init() {}

    public func resolve(host: String, port: Int) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            throw WebSocketError.connection("could not resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            if let text = numericAddress(current.pointee.ai_addr), !addresses.contains(text) { addresses.append(text) }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw WebSocketError.connection("\(host) has no address") }
        return addresses
    }

    private func numericAddress(_ address: UnsafeMutablePointer<sockaddr>?) -> String? {
        guard let address else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                var raw = ipv4.pointee.sin_addr
                return inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count)).map { String(cString: $0) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                var raw = ipv6.pointee.sin6_addr
                return inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)).map { String(cString: $0) }
            }
        default:
            return nil
        }
    }
}

/// Whether `host` is already a numeric IPv4 or IPv6 address (nothing to resolve).
func isNumericAddress(_ host: String) -> Bool {
    var ipv4 = in_addr()
    var ipv6 = in6_addr()
    return inet_pton(AF_INET, host, &ipv4) == 1 || inet_pton(AF_INET6, host, &ipv6) == 1
}

/// Runs a blocking resolver on a thread of its own and waits for it at most `timeout`.
///
/// A resolver that hangs keeps its thread until it returns, but nobody waits on it: the attempt
/// fails at its deadline and the next one starts after the backoff, so hung lookups pile up no
/// faster than attempts are made.
func resolveOffThread(
    _ resolver: any HostResolver, host: String, port: Int, timeout: Duration
) async throws -> [String] {
    struct Pending: Sendable {
        var continuation: CheckedContinuation<[String], any Error>?
        var timer: Task<Void, Never>?
        /// Cancelled before the continuation existed: it is settled as soon as it does.
        var cancelled = false
    }
    let pending = Locked(Pending())
    let settle: @Sendable (Result<[String], any Error>) -> Void = { result in
        let (continuation, timer) = pending.withLock { pending in
            defer {
                pending.continuation = nil
                pending.timer = nil
            }
            return (pending.continuation, pending.timer)
        }
        timer?.cancel()
        continuation?.resume(with: result)
    }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[String], any Error>) in
            let cancelled = pending.withLock { pending in
                if !pending.cancelled { pending.continuation = continuation }
                return pending.cancelled
            }
            if cancelled {
                continuation.resume(throwing: CancellationError())
                return
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if Task.isCancelled { return }
                settle(.failure(WebSocketError.connection("resolving \(host) took longer than \(timeout.compact)")))
            }
            pending.withLock { pending in
                if pending.continuation != nil { pending.timer = timer } else { timer.cancel() }
            }
            let thread = Thread {
                mw_set_thread_name("mw-resolve")
                settle(Result { try resolver.resolve(host: host, port: port) })
            }
            thread.start()
        }
    } onCancel: {
        pending.withLock { $0.cancelled = true }
        settle(.failure(CancellationError()))
    }
}
