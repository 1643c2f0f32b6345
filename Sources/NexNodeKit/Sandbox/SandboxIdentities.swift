#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import NexWorkloads
import Synchronization

/// The uid and gid of one sandbox, held until ``SandboxIdentities/release(_:)``.
struct SandboxIdentity: Sendable, Equatable {
    let uid: UInt32
    let gid: UInt32
}

/// Hands each sandbox a uid and gid of its own from the node's ranges.
///
/// An id is held by an exclusive `flock` on a file named after it in ``lockDirectory``, a
/// directory of the node's user that no sandbox can see: two nodes of the same user (the test
/// suite starts many) never give one id to two sandboxes, and the kernel releases the lock
/// when its holder dies, so a crashed node leaks none.
final class SandboxIdentities: Sendable {
    let uids: SubordinateIDRange
    let gids: SubordinateIDRange
    let lockDirectory: String
    /// uid → the locked file that holds it.
    private let held = Mutex<[UInt32: Int32]>([:])

    /// `$RUNTIME_DIRECTORY/sandbox-ids` under systemd (`RuntimeDirectory=`), else
    /// `/tmp/nex-sandbox-ids-<uid>`: shared by the nodes of one user, private to it.
    static var defaultLockDirectory: String {
        if let runtime = ProcessInfo.processInfo.environment["RUNTIME_DIRECTORY"], runtime.hasPrefix("/") {
            return runtime.split(separator: ":").first.map { String($0) + "/sandbox-ids" } ?? runtime
        }
        return "/tmp/nex-sandbox-ids-\(getuid())"
    }

    /// Makes (or checks) the lock directory: a directory of this user, mode 0700, not a link.
    init(uids: SubordinateIDRange, gids: SubordinateIDRange, lockDirectory: String = defaultLockDirectory) throws(SandboxIDError) {
        self.uids = uids
        self.gids = gids
        self.lockDirectory = lockDirectory
        if mkdir(lockDirectory, 0o700) != 0, errno != EEXIST {
            throw SandboxIDError(path: lockDirectory, reason: "cannot create it: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(lockDirectory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid(),
              info.st_mode & 0o077 == 0 else {
            throw SandboxIDError(path: lockDirectory, reason: "it must be a directory of uid \(getuid()) with mode 0700")
        }
    }

    /// An id pair no other sandbox on this host holds; nil when the range is used up.
    func acquire() -> SandboxIdentity? {
        let count = min(uids.count, gids.count)
        let first = UInt32.random(in: 0..<count)
        for step in 0..<count {
            let offset = (first &+ step) % count
            let uid = uids.start + offset
            if uid == getuid() { continue }  // never the node's own
            guard let lock = hold(uid) else { continue }
            held.withLock { $0[uid] = lock }
            return SandboxIdentity(uid: uid, gid: gids.start + offset)
        }
        return nil
    }

    func release(_ identity: SandboxIdentity) {
        if let lock = held.withLock({ $0.removeValue(forKey: identity.uid) }) { close(lock) }
    }

    /// Locks `<lockDirectory>/<uid>`; nil when another holds it.
    private func hold(_ uid: UInt32) -> Int32? {
        let fd = open("\(lockDirectory)/\(uid)", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}

/// The sandbox ids' lock directory is unusable.
struct SandboxIDError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "sandbox id lock directory \(path): \(reason)" }
}
