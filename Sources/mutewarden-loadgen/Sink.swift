import Foundation
import MutewardenJSON

/// A trivial consumer in place of the daemon, to show the generator's own headroom: it shakes hands,
/// subscribes and long-polls back to back on one keep-alive connection, counting bytes and never
/// parsing the events, so nearly all the CPU it spends is the generator's and the server's.
/// It sends no actions; a sink run measures throughput only.
final class Sink: Sendable {
    let port: Int

    init(port: Int) { self.port = port }

    func start(until stop: @escaping @Sendable () -> Bool) -> Thread {
        let thread = Thread { [self] in
            do { try run(until: stop) } catch { FileHandle.standardError.write(Data("sink: \(error)\n".utf8)) }
        }
        thread.name = "loadgen-sink"
        thread.start()
        return thread
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private func run(until stop: @Sendable () -> Bool) throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect failed") }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var pending: [UInt8] = []

        func post(_ body: String) throws -> [UInt8] {
            let request = "POST /api/v2/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let bytes = Array(request.utf8)
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { throw Failure(description: "send failed") }
                sent += count
            }
            // Reads one response: the head up to CRLFCRLF, then Content-Length bytes.
            var headEnd: Int?
            var contentLength = 0
            while true {
                if headEnd == nil, let end = find(pending, Array("\r\n\r\n".utf8)) {
                    headEnd = end + 4
                    let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                    for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                        contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
                if let headEnd, pending.count >= headEnd + contentLength {
                    let body = Array(pending[headEnd..<headEnd + contentLength])
                    pending.removeFirst(headEnd + contentLength)
                    return body
                }
                let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { throw Failure(description: "the server closed the connection") }
                pending.append(contentsOf: buffer[..<count])
            }
        }

        let handshake = try JSONValue.parse(
            post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#))
        guard let clientID = handshake.array?.first?["clientId"]?.string else {
            throw Failure(description: "no clientId in the handshake reply")
        }
        _ = try post(#"[{"channel":"/meta/subscribe","clientId":"\#(clientID)","subscription":"/v2/me/calls","id":"2"}]"#)
        var id = 3
        while !stop() {
            _ = try post(#"[{"channel":"/meta/connect","clientId":"\#(clientID)","connectionType":"long-polling","id":"\#(id)"}]"#)
            id += 1
        }
    }
}

private func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    var index = 0
    while index <= haystack.count - needle.count {
        if haystack[index] == needle[0] && Array(haystack[index..<index + needle.count]) == needle { return index }
        index += 1
    }
    return nil
}
