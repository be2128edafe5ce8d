import Foundation

/// One keep-alive HTTP/1.1 connection to the generator's own server, with blocking calls: just
/// enough client for the built-in consumers (`--sink`, `--reflex`), which must cost next to
/// nothing themselves.
final class LoopbackHTTP {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    struct Response {
        var head: String
        var body: [UInt8]

        /// A header's value; `name` in lower case.
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name else { continue }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return nil
        }
    }

    private let socket: LoopbackSocket
    private var pending: [UInt8] = []

    init(port: Int) throws {
        socket = try LoopbackSocket(port: port)
    }

    /// Writes one request; read its response with `receive()`.
    func send(_ method: String, _ path: String, headers: [String] = [], body: String = "") throws {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for header in headers { request += header + "\r\n" }
        if method == "POST" { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + body
        try socket.send(Array(request.utf8))
    }

    /// Reads one response: the head up to CRLFCRLF, then Content-Length bytes.
    func receive() throws -> Response {
        let separator = Array("\r\n\r\n".utf8)
        var head: (text: String, end: Int)?
        var contentLength = 0
        while true {
            if head == nil, let end = find(pending, separator) {
                let text = String(decoding: pending[..<end], as: UTF8.self)
                head = (text, end + 4)
                contentLength = Int(Response(head: text, body: []).header("content-length") ?? "") ?? 0
            }
            if let head, pending.count >= head.end + contentLength {
                let body = Array(pending[head.end..<head.end + contentLength])
                pending.removeFirst(head.end + contentLength)
                return Response(head: head.text, body: body)
            }
            try socket.receive(appendingTo: &pending)
        }
    }

    func request(_ method: String, _ path: String, headers: [String] = [], body: String = "") throws -> Response {
        try send(method, path, headers: headers, body: body)
        return try receive()
    }
}

/// A TCP connection to 127.0.0.1:`port` for the built-in consumers, with blocking calls and
/// Nagle off: their requests are small and each is waited for, so Nagle would hold the next one
/// back.
final class LoopbackSocket {
    private let descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    init(port: Int) throws {
        descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw LoopbackHTTP.Failure(description: "socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw LoopbackHTTP.Failure(description: "connect failed")
        }
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw LoopbackHTTP.Failure(description: "send failed") }
            sent += count
        }
    }

    /// Waits for the next bytes and appends them.
    func receive(appendingTo pending: inout [UInt8]) throws {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw LoopbackHTTP.Failure(description: "the server closed the connection") }
        pending.append(contentsOf: buffer[..<count])
    }
}

func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    var index = 0
    while index <= haystack.count - needle.count {
        if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
        index += 1
    }
    return nil
}
