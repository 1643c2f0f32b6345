import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Synchronization

/// Records every `$NEX.events.<namespace>.<type>` CloudEvent from the moment it is created
/// (the subscription is flushed to the server before `start` returns).
final class EventRecorder: Sendable {
    private let events = Mutex<[NexEvent<JSONValue>]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    private init() {}

    static func start(_ nex: NexClient, namespace: String = "system", type: NexEventType? = nil) async throws -> EventRecorder {
        let recorder = EventRecorder()
        let stream = try await nex.events(namespace: namespace, type: type)
        try await nex.connection.flush()
        let task = Task { [recorder] in
            for await event in stream { recorder.events.withLock { $0.append(event) } }
        }
        recorder.task.withLock { $0 = task }
        return recorder
    }

    var all: [NexEvent<JSONValue>] { events.withLock { $0 } }

    /// Waits for the first event of `type` from `source` (any source when nil).
    @discardableResult
    func waitFor(
        _ type: NexEventType, from source: String? = nil, timeout: Duration = .seconds(5)
    ) async throws -> NexEvent<JSONValue> {
        try await waitForValue(timeout: timeout, "event \(type) from \(source ?? "any node"); got: \(summary)") {
            all.first { $0.type == type && (source == nil || $0.source == source) }
        }
    }

    var summary: String { all.map { "\($0.type)@\($0.source.prefix(8))" }.joined(separator: ", ") }

    deinit { task.withLock { $0?.cancel() } }
}

/// A Unix datagram socket bound in a temporary directory, standing in for systemd's
/// `NOTIFY_SOCKET`: it records every datagram the node sends.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32
    private let directory: TemporaryDirectory
    private let received = Mutex<[String]>([])

    init() throws {
        directory = try TemporaryDirectory(prefix: "nex-e2e-notify-")
        path = directory.appending("notify.sock")
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NotifySocketError("socket(AF_UNIX, SOCK_DGRAM): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw NotifySocketError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw NotifySocketError("bind(\(path)): \(reason)")
        }
        // The node runs as the unprivileged NodeUser: let it reach the socket, as systemd does.
        chmod(directory.path, 0o755)
        chmod(path, 0o666)
    }

    /// Reads whatever datagrams are waiting, without blocking.
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { return }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            received.withLock { $0.append(text) }
        }
    }

    /// Every datagram received so far.
    var messages: [String] {
        drain()
        return received.withLock { $0 }
    }

    /// Waits until a datagram contains the line `state` (e.g. `READY=1`).
    func waitFor(_ state: String, timeout: Duration = .seconds(10)) async throws {
        try await NATSTestSupport.waitFor(timeout: timeout, "\(state) on \(path); got \(messages)") {
            messages.contains { $0.split(separator: "\n").contains(Substring(state)) }
        }
    }

    deinit { close(fd) }
}

struct NotifySocketError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
