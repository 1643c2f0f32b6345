import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Plain HTTP/1.0 to a loopback port: enough for nats-server's monitoring endpoints and the
/// node's `/metrics`, without FoundationNetworking (and the libcurl a statically linked tool
/// would then need).
public enum LoopbackHTTP {
    /// An answer: the status code and the body.
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// The body of `GET path` on 127.0.0.1:`port`, or nil when it does not answer with 200
    /// within two seconds.
    public static func get(port: Int, path: String) -> Data? {
        guard let response = exchange(port: port, request: Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
              response.status == 200 else { return nil }
        return response.body
    }

    /// Sends `request` (any bytes) to 127.0.0.1:`port` and reads until the server closes; nil
    /// when nothing that looks like an HTTP response came back within two seconds.
    public static func exchange(port: Int, request: [UInt8]) -> Response? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return nil }
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response.append(contentsOf: buffer[0..<count])
            if response.count > 16 * 1024 * 1024 { return nil }
        }
        guard let split = response.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        guard head.hasPrefix("HTTP/1."), let status = head.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return Response(status: status, body: Data(response[split.upperBound...]))
    }
}
