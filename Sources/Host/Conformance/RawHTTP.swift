import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A bare HTTP/1.1 client on a blocking socket, for the transport checks: it
/// can read only an answer's head (a stream never ends) and can leave in
/// the middle, which is what a conformance check needs to do to a server.
struct RawHTTP {
    let port: Int

    struct Answer {
        let status: Int
        let head: String
        let body: String
    }

    /// Sends a request and reads the head, and the body when it has a
    /// `Content-Length`; the connection is closed after.
    func send(_ method: String, _ path: String, headers: [String: String] = [:], body: String = "",
              timeout: Int = 10) throws -> Answer {
        let socket = try open(timeout: timeout)
        defer { close(socket) }
        try write(socket, request(method, path, headers: headers, body: body))
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                let head = String(text[..<end.lowerBound])
                let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first
                let bodyStart = text.utf8.distance(from: text.startIndex, to: end.upperBound)
                if let length, received.count - bodyStart < length {
                    // Read on for the body.
                } else {
                    let bodyBytes = length.map { Array(received[bodyStart..<min(received.count, bodyStart + $0)]) } ?? []
                    return Answer(status: status, head: head, body: String(decoding: bodyBytes, as: UTF8.self))
                }
            }
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else {
                throw ContractBroken(received.isEmpty ? "\(method) \(path): no answer within \(timeout) s (or the connection closed)"
                                                      : "\(method) \(path): the answer's head never ended")
            }
            received += buffer[0..<count]
        }
    }

    /// Sends a request and returns the open socket, having read nothing;
    /// the caller closes it (a client that leaves).
    func sendAndKeepOpen(_ path: String, headers: [String: String]) throws -> Int32 {
        let socket = try open(timeout: 10)
        try write(socket, request("GET", path, headers: headers, body: ""))
        return socket
    }

    private func request(_ method: String, _ path: String, headers: [String: String], body: String) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        return text + "\r\n" + body
    }

    private func open(timeout: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ContractBroken("no socket: errno \(errno)") }
        var wait = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw ContractBroken("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
        return socket
    }

    private func write(_ socket: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw ContractBroken("the server closed the connection while the request was sent") }
            sent += count
        }
    }
}
