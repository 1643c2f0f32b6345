import NexWorkloads
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The directories a node reads `file://` artifacts from (`allowed_file_roots`); none by default,
/// so `file://` is off unless the operator names a directory.
///
/// A deployer must not be able to read, or learn anything about, a file outside these
/// directories (the node's own keys live in its state directory). So a `file://` path is
/// checked twice:
/// - before anything touches the file system, by its text: an absolute path without `.` or `..`
///   components, under one of the roots;
/// - after it is opened, by what was opened: the kernel's name for the open descriptor
///   (`/proc/self/fd/N`), which has every symbolic link resolved, must still be under a root.
///   A link inside a root that points elsewhere is refused the same way, and since the check
///   is on the descriptor that is then read, a swap between check and read cannot win.
///
/// Either refusal is the same ``ArtifactError/fileOutsideRoots(location:)``, whether or not the
/// file exists, so the answer is no oracle of existence or size. When the open fails, the
/// failure is named only if the path's directory really is under a root and its last
/// component is no symbolic link (``failureIsInside(path:)``): a link in a root that points at
/// a missing or unreadable file elsewhere gets the same refusal as one that points at a file
/// that exists. Paths are compared byte for byte, as the kernel does.
public struct ArtifactFileRoots: Sendable, Equatable {
    /// The roots, absolute, with symbolic links resolved (as `/proc/self/fd` names files).
    public let directories: [String]

    /// No roots: every `file://` location is refused.
    public static let none = ArtifactFileRoots(canonical: [])

    private init(canonical: [String]) { directories = canonical }

    /// Resolves each root (it must be an existing directory given by an absolute path).
    ///
    /// - Throws: ``NodeConfigurationError`` naming `allowed_file_roots` and the root.
    public init(_ roots: [String]) throws(NodeConfigurationError) {
        var resolved: [String] = []
        for root in roots {
            guard root.hasPrefix("/") else {
                throw NodeConfigurationError(key: "allowed_file_roots", problem: "'\(root)' is not an absolute path")
            }
            guard let real = realpath(root, nil) else {
                throw NodeConfigurationError(key: "allowed_file_roots",
                                             problem: "'\(root)': \(String(cString: strerror(errno)))")
            }
            let path = String(cString: real)
            free(real)
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw NodeConfigurationError(key: "allowed_file_roots", problem: "'\(root)' is not a directory")
            }
            resolved.append(path)
        }
        self.init(canonical: resolved)
    }

    /// Whether `path` is, by its text, a file under one of the roots.
    public func admits(path: String) -> Bool {
        guard path.hasPrefix("/") else { return false }
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !components.contains(where: { $0 == "." || $0 == ".." }) else { return false }
        let normalized = "/" + components.joined(separator: "/")
        return directories.contains { Self.isBeneath(normalized, root: $0) }
    }

    /// After `path` (admitted by its text) failed to open: whether the failure may be told to
    /// the deployer, because it concerns a name inside a root, not something a link leads to.
    func failureIsInside(path: String) -> Bool {
        // The nearest ancestor that exists must resolve under a root, reached through no
        // dangling link (a link to a missing place elsewhere would tell that it is missing).
        var ancestor = Self.parent(of: path)
        while true {
            if let real = realpath(ancestor, nil) {
                let resolved = String(cString: real)
                free(real)
                guard directories.contains(where: { resolved.utf8.elementsEqual($0.utf8) || Self.isBeneath(resolved, root: $0) })
                else { return false }
                break
            }
            var info = stat()
            guard errno == ENOENT || errno == ENOTDIR, lstat(ancestor, &info) != 0, ancestor != "/" else { return false }
            ancestor = Self.parent(of: ancestor)
        }
        // The last component: missing is an answer about the root; a link is not.
        var info = stat()
        if lstat(path, &info) == 0 { return info.st_mode & S_IFMT != S_IFLNK }
        return errno == ENOENT || errno == ENOTDIR
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// Whether the open `descriptor` is a file under one of the roots, by the kernel's name for it.
    func admits(descriptor: Int32) -> Bool {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
        guard length > 0 else { return false }
        let name = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return directories.contains { Self.isBeneath(name, root: $0) }
    }

    /// The root that is `directory` or holds it (symbolic links resolved), if any.
    public func root(holding directory: String) -> String? {
        guard let real = realpath(directory, nil) else { return nil }
        defer { free(real) }
        let path = String(cString: real)
        return directories.first { path.utf8.elementsEqual($0.utf8) || Self.isBeneath(path, root: $0) }
    }

    /// A root that lies inside `directory` (symbolic links resolved), if any.
    public func root(inside directory: String) -> String? {
        guard let real = realpath(directory, nil) else { return nil }
        defer { free(real) }
        let path = String(cString: real)
        return directories.first { Self.isBeneath($0, root: path) }
    }

    /// Byte for byte (a `String` comparison would equate canonically equivalent Unicode, which
    /// the file system does not).
    private static func isBeneath(_ path: String, root: String) -> Bool {
        let prefix = Array((root.hasSuffix("/") ? root : root + "/").utf8)
        return path.utf8.count > prefix.count && path.utf8.starts(with: prefix)
    }
}
