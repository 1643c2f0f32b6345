import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback TCP port that nobody listens on, held for as long as the value lives.
///
/// The port is bound (127.0.0.1:0, the kernel picks it) but never listened on, so a connection
/// to it is refused at once, and no other process can bind it while this value is alive: unlike
/// a port probed free and released, it cannot turn into someone else's server during the test.
///
///     let dead = try ReservedPort()
///     let client = try NATSClient(url: "nats://127.0.0.1:\(dead.port)")   // connect fails
public final class ReservedPort: Sendable {
    /// The reserved port number.
    public let port: Int
    private let descriptor: Int32

    /// Binds a fresh socket to 127.0.0.1 on a port the kernel picks, without listening.
    public init() throws {
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw NATSServerError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr = in_addr(s_addr: UInt32(0x7f00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            let code = errno
            close(fd)
            throw NATSServerError("cannot reserve a loopback port: \(String(cString: strerror(code)))")
        }
        self.descriptor = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
    }
}
