#if canImport(Glibc)
import Glibc
#endif

/// Explains a listener that could not be created: libwebsockets reports only that it failed, and
/// the likeliest cause under systemd is the unit's `SocketBindDeny=any`, which an operator cannot
/// guess from "cannot listen". The probe binds the same address and port once, closes the socket
/// and turns the errno into a remedy. It runs only after a failure, never to pick a port.
public enum IngressBindProbe {
    /// Why binding `address`:`port` fails, in an operator's words; nil when the bind succeeds now
    /// (or the address is not numeric), so that the caller keeps its own guess.
    public static func problem(address: String, port: Int) -> String? {
        guard (0...65535).contains(port) else { return nil }
        let error: Int32
        if address.contains(":") {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, address, &socketAddress.sin6_addr) == 1 else { return nil }
            error = bindOnce(family: AF_INET6, &socketAddress, length: MemoryLayout<sockaddr_in6>.size)
        } else {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, address == "localhost" ? "127.0.0.1" : address, &socketAddress.sin_addr) == 1 else { return nil }
            error = bindOnce(family: AF_INET, &socketAddress, length: MemoryLayout<sockaddr_in>.size)
        }
        switch error {
        case 0: return nil
        case EACCES where port > 0 && port < 1024:
            return "the system refused to bind the port (EACCES): ports below 1024 need CAP_NET_BIND_SERVICE, which the "
                + "unit does not grant; choose a port from 1024 up"
        case EPERM, EACCES:
            return "the system refused to bind the port (\(error == EPERM ? "EPERM" : "EACCES")). Under systemd the unit's "
                + "SocketBindDeny=any forbids every IP port: allow this one with a drop-in "
                + "(systemctl edit mutewarden) holding \"[Service]\" and \"SocketBindAllow=tcp:\(port)\", then restart "
                + "(docs/operations.md#ports-and-the-units-socket-sandbox)"
        case EADDRINUSE: return "port \(port) is in use by another socket"
        case EADDRNOTAVAIL: return "\(address) is not an address of this machine"
        default: return "bind failed with errno \(error)"
        }
    }

    private static func bindOnce<Address>(family: Int32, _ address: inout Address, length: Int) -> Int32 {
        #if canImport(Glibc)
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(family, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(length)) }
        }
        return result == 0 ? 0 : errno
    }
}
