import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An OTLP/HTTP collector for tests: listens on a loopback port of its own choosing, answers
/// every `POST` with `200 {}` and keeps the bodies of `POST /v1/traces`, decoded as JSON.
public final class OTLPReceiver: Sendable {
    /// One span as received, with the service that sent it.
    public struct ReceivedSpan: Sendable, Equatable {
        public var service: String
        public var name: String
        public var traceID: String
        public var spanID: String
        public var parentSpanID: String?
        public var kind: Int
        public var attributes: [String: String]
    }

    public let port: Int
    private let listener: Int32
    private let received = Mutex<[ReceivedSpan]>([])
    private let stopped = Atomic<Bool>(false)

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    /// `http://127.0.0.1:<port>`, the base URL to give an exporter.
    public var url: String { "http://127.0.0.1:\(port)" }

    public var spans: [ReceivedSpan] { received.withLock { $0 } }

    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                if stopped.load(ordering: .relaxed) { return }
                continue
            }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            serve(connection)
            close(connection)
        }
    }

    private func serve(_ connection: Int32) {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var headEnd: Range<Data.Index>?
        var contentLength = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return }
            data.append(contentsOf: buffer[0..<count])
            if headEnd == nil, let end = data.range(of: Data("\r\n\r\n".utf8)) {
                headEnd = end
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let end = headEnd, data.count - end.upperBound >= contentLength { break }
            if data.count > 64 * 1024 * 1024 { return }
        }
        guard let end = headEnd else { return }
        let requestLine = String(decoding: data[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let body = data[end.upperBound..<(end.upperBound + contentLength)]
        if requestLine.hasPrefix("POST /v1/traces") { record(Data(body)) }
        let response = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".utf8)
        _ = response.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, 0) }
    }

    private func record(_ body: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return }
        var spans: [ReceivedSpan] = []
        for resourceSpans in object["resourceSpans"] as? [[String: Any]] ?? [] {
            let resource = (resourceSpans["resource"] as? [String: Any])?["attributes"] as? [[String: Any]] ?? []
            let service = Self.attributes(resource)["service.name"] ?? ""
            for scope in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scope["spans"] as? [[String: Any]] ?? [] {
                    spans.append(ReceivedSpan(
                        service: service, name: span["name"] as? String ?? "", traceID: span["traceId"] as? String ?? "",
                        spanID: span["spanId"] as? String ?? "", parentSpanID: span["parentSpanId"] as? String,
                        kind: span["kind"] as? Int ?? 0,
                        attributes: Self.attributes(span["attributes"] as? [[String: Any]] ?? [])))
                }
            }
        }
        received.withLock { $0 += spans }
    }

    private static func attributes(_ list: [[String: Any]]) -> [String: String] {
        var result: [String: String] = [:]
        for entry in list {
            guard let key = entry["key"] as? String, let value = entry["value"] as? [String: Any] else { continue }
            if let text = value["stringValue"] as? String { result[key] = text }
            else if let number = value["intValue"] { result[key] = "\(number)" }
            else if let flag = value["boolValue"] as? Bool { result[key] = "\(flag)" }
            else if let number = value["doubleValue"] { result[key] = "\(number)" }
        }
        return result
    }
}
