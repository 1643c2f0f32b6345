#if canImport(Glibc)
import Glibc
#endif
import NexWorkloads
import Synchronization

/// The uid and gid of one sandbox, held until ``SandboxIdentities/release(_:)``.
struct SandboxIdentity: Sendable, Equatable {
    let uid: UInt32
    let gid: UInt32
}

/// Hands each sandbox a uid and gid of its own from the node's ranges.
///
/// An id is held host-wide by binding an abstract Unix socket named after it: two nodes of
/// the same user (the test suite starts many) never give one id to two sandboxes, and the
/// kernel frees an id when its holder dies, so a crashed node leaks none.
final class SandboxIdentities: Sendable {
    let uids: SubordinateIDRange
    let gids: SubordinateIDRange
    /// uid → the socket that holds it.
    private let held = Mutex<[UInt32: Int32]>([:])

    init(uids: SubordinateIDRange, gids: SubordinateIDRange) {
        self.uids = uids
        self.gids = gids
    }

    /// An id pair no other sandbox on this host holds; nil when the range is used up.
    func acquire() -> SandboxIdentity? {
        let count = min(uids.count, gids.count)
        let first = UInt32.random(in: 0..<count)
        for step in 0..<count {
            let offset = (first &+ step) % count
            let uid = uids.start + offset
            if uid == getuid() { continue }  // never the node's own
            guard let socket = Self.hold(uid) else { continue }
            held.withLock { $0[uid] = socket }
            return SandboxIdentity(uid: uid, gid: gids.start + offset)
        }
        return nil
    }

    func release(_ identity: SandboxIdentity) {
        if let socket = held.withLock({ $0.removeValue(forKey: identity.uid) }) { close(socket) }
    }

    /// Binds `@nex-sandbox-uid-<uid>`; nil when another holds it.
    private static func hold(_ uid: UInt32) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array("nex-sandbox-uid-\(uid)".utf8)
        let length = withUnsafeMutableBytes(of: &address.sun_path) { path -> Int in
            path[0] = 0  // abstract: no file, gone with the socket
            for (index, byte) in name.enumerated() { path[index + 1] = byte }
            return 1 + name.count
        }
        let size = socklen_t(MemoryLayout<sa_family_t>.size + length)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
        }
        guard bound == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}
