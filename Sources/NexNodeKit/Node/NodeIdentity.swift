import NexWorkloads
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import NATSWire

/// The node's identity: a server nkey (`N...`, the node id) and a curve xkey (`X...`, to which
/// deploy environments are sealed). Created on first start and kept in the state directory
/// (files `node.nk` and `node.xk`, mode 0600), so a restarted node keeps its id.
public struct NodeIdentity: Sendable {
    public let signingKey: NKeyPair
    public let curveKey: XKeyPair

    /// The node id: the server public key.
    public var nodeID: String { signingKey.publicKey }
    public var publicXKey: String { curveKey.publicKey }

    /// Loads the identity from `directory`, creating it (and the directory, mode 0700) if absent.
    public static func loadOrCreate(in directory: String) throws -> NodeIdentity {
        try StateDirectory.prepare(directory)
        let signingPath = directory + "/node.nk"
        let curvePath = directory + "/node.xk"
        let signing = try existingSeed(signingPath).map { try NKeyPair(seed: $0) } ?? {
            let pair = try NKeyPair.generate(.server)
            try StateDirectory.writeSecret(pair.seed, to: signingPath)
            return pair
        }()
        guard signing.type == .server else {
            throw NodeIdentityError("\(signingPath) holds a \(signing.type) key; the node id must be a server key (SN...)")
        }
        let curve = try existingSeed(curvePath).map { try XKeyPair(seed: $0) } ?? {
            let pair = try XKeyPair.generate()
            try StateDirectory.writeSecret(pair.seed, to: curvePath)
            return pair
        }()
        return NodeIdentity(signingKey: signing, curveKey: curve)
    }

    private static func existingSeed(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8)
        else { throw NodeIdentityError("cannot read \(path)") }
        return text.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
    }
}

public struct NodeIdentityError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The node's state directory: identity, caches. Private to the node's user.
public enum StateDirectory {
    /// `$STATE_DIRECTORY` (set by systemd), else `/var/lib/nex-node` for root,
    /// else `~/.local/state/nex-node`.
    public static var defaultPath: String {
        let environment = ProcessInfo.processInfo.environment
        if let fromSystemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first { return String(fromSystemd) }
        if getuid() == 0 { return "/var/lib/nex-node" }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.local/state/nex-node"
    }

    /// Creates the directory (mode 0700) if needed and checks it is writable.
    public static func prepare(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeIdentityError("cannot create state directory \(path): \(String(describing: error))")
        }
        guard access(path, W_OK) == 0 else { throw NodeIdentityError("state directory \(path) is not writable") }
    }

    /// Writes a secret to a new file readable only by its owner.
    static func writeSecret(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NodeIdentityError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array((text + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw NodeIdentityError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
