import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The node's content-addressed artifact cache: `<state>/artifacts` (mode 0700), one file per
/// artifact, named by its SHA-256 in lowercase hex.
///
/// A deploy fetches its artifact through the cache: the JWT's `hash` claim names the file, so a
/// second deploy of the same artifact finds it and fetches nothing. A fetched artifact is checked
/// against `max_workload_bytes` (before any byte is read where the size is known up front) and
/// against the claimed hash before it is stored; a mismatch leaves nothing behind. Each agent
/// then gets its own copy, never the cache file itself.
///
/// ```swift
/// let cache = try ArtifactCache(stateDirectory: "/var/lib/nex-node")
/// let artifact = try await cache.fetch(
///     try ArtifactLocation(validating: request.location), expectedSHA256: claims.artifactHash!,
///     maxBytes: limits.maxWorkloadBytes, jetStreamDomain: request.jsDomain, client: control)
/// let executable = try cache.place(artifact, in: agentDirectory, named: "workload")
/// ```
///
/// Fetches of the same artifact may run at once: each writes its own temporary file and renames
/// it into place, so the cache never holds a partial or unverified file. The file I/O is
/// blocking, done on the calling task.
public final class ArtifactCache: Sendable {
    /// The cache directory, `<state>/artifacts`.
    public let directory: String

    /// Where `file://` artifacts may be read from; none by default.
    public let fileRoots: ArtifactFileRoots

    /// Prefix of the temporary files of fetches in progress.
    static let temporaryPrefix = ".fetch-"

    /// Opens the cache in `stateDirectory`, creating it and its `artifacts` directory (mode 0700).
    /// `file://` artifacts are read only from `fileRoots` (none by default: `file://` is off).
    ///
    /// - Throws: ``ArtifactError/fileError(path:operation:reason:)`` when a directory cannot be
    ///   created, or `artifacts` exists and is not a directory.
    public init(stateDirectory: String, fileRoots: ArtifactFileRoots = .none) throws(ArtifactError) {
        self.fileRoots = fileRoots
        let directory = stateDirectory.hasSuffix("/") ? stateDirectory + "artifacts" : stateDirectory + "/artifacts"
        do {
            try FileManager.default.createDirectory(
                atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .fileError(path: stateDirectory, operation: "create the state directory", reason: "\(error)")
        }
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw ArtifactFile.failure(directory, "create the artifact cache directory")
        }
        guard let info = ArtifactFile.linkStatus(directory), ArtifactFile.isDirectory(info) else {
            throw .fileError(path: directory, operation: "use", reason: "it is not a directory")
        }
        if info.st_mode & 0o777 != 0o700, chmod(directory, 0o700) != 0 {
            throw ArtifactFile.failure(directory, "set mode 0700 on")
        }
        self.directory = directory
    }

    /// The cache file an artifact of SHA-256 `sha256` has (or would have).
    public func path(forSHA256 sha256: String) -> String {
        "\(directory)/\(sha256.lowercased())"
    }

    /// The cached artifact of SHA-256 `sha256` (hex, any case), or nil when it is not cached.
    public func cached(sha256: String) -> CachedArtifact? {
        guard ArtifactDigest.isSHA256Hex(sha256) else { return nil }
        let path = path(forSHA256: sha256)
        guard let info = ArtifactFile.linkStatus(path), ArtifactFile.isRegular(info) else { return nil }
        return CachedArtifact(path: path, sha256: sha256.lowercased(), size: Int(info.st_size), fromCache: true)
    }

    /// The artifact at `location` whose SHA-256 is `expectedSHA256`, from the cache when it holds
    /// it (then nothing is fetched and no server is asked), else fetched, verified and cached.
    ///
    /// - Parameters:
    ///   - location: `file://` (read on this host, only under ``fileRoots``) or `nats://` (an
    ///     object store on `client`).
    ///   - expectedSHA256: the workload JWT's `hash` claim, 64 hex digits in any case; nil for
    ///     an unverified artifact (`allow_unverified_hash`): always fetched, and cached under
    ///     the SHA-256 it turns out to have.
    ///   - maxBytes: `max_workload_bytes`; 0 means no limit. Checked against the file's or
    ///     object's size before anything is read, again while copying, and on cache hits.
    ///   - jetStreamDomain: the JetStream domain of the object store, nil for the local one.
    ///   - client: the connection to fetch `nats://` artifacts on; unused for `file://`.
    /// - Throws: an ``ArtifactError``: ``ArtifactError/notFound(location:reason:)``,
    ///   ``ArtifactError/fileOutsideRoots(location:)``, ``ArtifactError/tooLarge(location:size:limit:)``,
    ///   ``ArtifactError/hashMismatch(location:claimed:actual:)``,
    ///   ``ArtifactError/fetchFailed(location:reason:)``...
    public func fetch(
        _ location: ArtifactLocation, expectedSHA256: String?, maxBytes: Int,
        jetStreamDomain: String? = nil, client: NATSClient?
    ) async throws(ArtifactError) -> CachedArtifact {
        let expected: String?
        if let expectedSHA256 {
            guard ArtifactDigest.isSHA256Hex(expectedSHA256) else {
                throw .invalidHash(location: location.url, hash: expectedSHA256)
            }
            expected = expectedSHA256.lowercased()
        } else {
            expected = nil
        }
        if let expected, let cached = cached(sha256: expected) {
            try Self.checkSize(cached.size, of: location, maxBytes: maxBytes)
            return cached
        }
        let temporary = "\(directory)/\(Self.temporaryPrefix)\(expected ?? "unverified")-\(ArtifactFile.uniqueSuffix())"
        switch location {
        case let .file(path):
            try copyFile(path, of: location, to: temporary, maxBytes: maxBytes)
        case let .objectStore(bucket, key):
            try await download(bucket: bucket, key: key, of: location, to: temporary, maxBytes: maxBytes,
                               jetStreamDomain: jetStreamDomain, client: client)
        }
        return try store(temporary, of: location, expectedSHA256: expected, maxBytes: maxBytes)
    }

    /// Copies a cached artifact to `directory/name` for an agent: a copy, never a link, so a
    /// workload cannot change the cache. The file gets mode 0755 (the agent runs it, maybe as another uid); it is
    /// written beside its final name and renamed into place, so an existing file (or a symbolic
    /// link) there is replaced, not written through.
    ///
    /// - Parameters:
    ///   - directory: the agent's own directory, created by the caller (mode 0700; 0755 for a
    ///     sandboxed agent, which runs as another uid and sees no directory above it).
    ///   - name: a plain file name: no `/`, not `.` or `..`.
    /// - Returns: the path of the copy.
    /// - Throws: ``ArtifactError/invalidFileName(_:reason:)``, or
    ///   ``ArtifactError/fileError(path:operation:reason:)`` naming the file that failed.
    @discardableResult
    public func place(_ artifact: CachedArtifact, in directory: String, named name: String) throws(ArtifactError) -> String {
        try Self.validateFileName(name)
        let destination = directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
        let temporary = "\(directory)/.\(name).\(ArtifactFile.uniqueSuffix()).partial"
        let source = try ArtifactFile.openForReading(artifact.path)
        defer { close(source) }
        // Readable and executable by others: a sandboxed agent runs as another uid (the
        // directory is what keeps it private).
        let output = try ArtifactFile.createExclusive(temporary, mode: 0o755)
        let copied: Int
        do throws(ArtifactError) {
            copied = try ArtifactFile.copy(from: source, artifact.path, to: output, temporary)
        } catch {
            close(output)
            unlink(temporary)
            throw error
        }
        guard copied == artifact.size else {
            close(output)
            unlink(temporary)
            throw .fileError(
                path: artifact.path, operation: "copy to \(destination)",
                reason: "copied \(copied) bytes; the artifact is \(artifact.size) bytes")
        }
        try ArtifactFile.commit(output, temporary: temporary, to: destination)
        return destination
    }

    /// Deletes every cached artifact whose SHA-256 is not in `keep` (hex, any case), and
    /// temporary files of fetches that ended without cleaning up. Returns how many files went.
    ///
    /// Call it only while no fetch is running: a running fetch's temporary file would go too.
    @discardableResult
    public func removeAll(except keep: Set<String>) throws(ArtifactError) -> Int {
        let kept = Set(keep.map { $0.lowercased() })
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .fileError(path: directory, operation: "list", reason: "\(error)")
        }
        var removed = 0
        for name in names where !kept.contains(name) {
            guard ArtifactDigest.isSHA256Hex(name) || name.hasPrefix(Self.temporaryPrefix)
                    || name.hasPrefix(".") && name.hasSuffix(".partial")
            else { continue }
            let path = "\(directory)/\(name)"
            if unlink(path) == 0 {
                removed += 1
            } else if errno != ENOENT {
                throw ArtifactFile.failure(path, "remove")
            }
        }
        return removed
    }

    // MARK: - Fetching

    /// Copies the file at `path` to `temporary`, checking where it is, its type and its size first.
    ///
    /// The path must be under ``fileRoots`` by its text before anything touches the file system,
    /// and the opened file must be under them by the kernel's name for it (see
    /// ``ArtifactFileRoots``); both refusals read the same, whether the file exists or not.
    private func copyFile(_ path: String, of location: ArtifactLocation, to temporary: String, maxBytes: Int) throws(ArtifactError) {
        guard fileRoots.admits(path: path) else { throw .fileOutsideRoots(location: location.url) }
        let source = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard source >= 0 else {
            let code = errno
            guard fileRoots.failureIsInside(path: path) else { throw .fileOutsideRoots(location: location.url) }
            if code == ENOENT || code == ENOTDIR { throw .notFound(location: location.url, reason: nil) }
            throw ArtifactFile.failure(path, "open", code)
        }
        defer { close(source) }
        guard fileRoots.admits(descriptor: source) else { throw .fileOutsideRoots(location: location.url) }
        var opened = stat()
        guard fstat(source, &opened) == 0 else { throw ArtifactFile.failure(path, "stat") }
        guard ArtifactFile.isRegular(opened) else { throw .notARegularFile(location: location.url, path: path) }
        try Self.checkSize(Int(opened.st_size), of: location, maxBytes: maxBytes)
        let output = try ArtifactFile.createExclusive(temporary, mode: 0o600)
        let copied: Int
        do throws(ArtifactError) {
            copied = try ArtifactFile.copy(from: source, path, to: output, temporary, limit: maxBytes > 0 ? maxBytes : nil)
        } catch {
            close(output)
            unlink(temporary)
            throw error
        }
        do throws(ArtifactError) {
            try ArtifactFile.finish(output, path: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        if maxBytes > 0, copied > maxBytes {
            // It grew after the size check: report its size now, which is at least what was read.
            unlink(temporary)
            let size = (try? ArtifactFile.size(of: source, path: path)) ?? copied
            throw .tooLarge(location: location.url, size: max(size, copied), limit: maxBytes)
        }
    }

    /// Downloads object `key` of `bucket` to `temporary`, checking the object's size from its
    /// metadata before any chunk is read.
    private func download(
        bucket: String, key: String, of location: ArtifactLocation, to temporary: String, maxBytes: Int,
        jetStreamDomain: String?, client: NATSClient?
    ) async throws(ArtifactError) {
        guard let client else {
            throw .fetchFailed(location: location.url, reason: "the node has no NATS connection to fetch it on")
        }
        let inDomain = jetStreamDomain.map { " in JetStream domain '\($0)'" } ?? ""
        do {
            let js = try client.jetStream(domain: jetStreamDomain)
            let store = try await js.objectStore(bucket)
            let info = try await store.info(key)
            try Self.checkSize(Int(clamping: info.size), of: location, maxBytes: maxBytes)
            try await store.get(key, toFile: temporary)
        } catch let error as ArtifactError {
            throw error
        } catch ObjectStoreError.bucketNotFound {
            throw .notFound(location: location.url, reason: "no object store bucket '\(bucket)'\(inDomain)")
        } catch ObjectStoreError.objectNotFound {
            throw .notFound(location: location.url, reason: "no object '\(key)' in bucket '\(bucket)'\(inDomain)")
        } catch {
            unlink(temporary)
            throw .fetchFailed(location: location.url, reason: "\(error)")
        }
    }

    /// Checks the fetched file at `temporary` (size, then SHA-256) and renames it into the cache;
    /// removes it when it does not pass.
    private func store(
        _ temporary: String, of location: ArtifactLocation, expectedSHA256 expected: String?, maxBytes: Int
    ) throws(ArtifactError) -> CachedArtifact {
        do throws(ArtifactError) {
            guard let info = ArtifactFile.linkStatus(temporary), ArtifactFile.isRegular(info) else {
                throw ArtifactFile.failure(temporary, "stat")
            }
            let size = Int(info.st_size)
            try Self.checkSize(size, of: location, maxBytes: maxBytes)
            let actual: String
            do {
                actual = try ArtifactDigest.sha256Hex(ofFile: temporary)
            } catch {
                throw ArtifactError.fileError(path: temporary, operation: "hash", reason: "\(error)")
            }
            if let expected, actual != expected {
                throw ArtifactError.hashMismatch(location: location.url, claimed: expected, actual: actual)
            }
            let path = path(forSHA256: actual)
            guard rename(temporary, path) == 0 else { throw ArtifactFile.failure(path, "rename \(temporary) to") }
            return CachedArtifact(path: path, sha256: actual, size: size, fromCache: false)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    // MARK: - Checks

    private static func checkSize(_ size: Int, of location: ArtifactLocation, maxBytes: Int) throws(ArtifactError) {
        if maxBytes > 0, size > maxBytes {
            throw .tooLarge(location: location.url, size: size, limit: maxBytes)
        }
    }

    private static func validateFileName(_ name: String) throws(ArtifactError) {
        if name.isEmpty { throw .invalidFileName(name, reason: "it is empty") }
        if name == "." || name == ".." { throw .invalidFileName(name, reason: "it names a directory") }
        if name.utf8.count > 255 {
            throw .invalidFileName(name, reason: "it is \(name.utf8.count) bytes long; the limit is 255")
        }
        if name.utf8.contains(UInt8(ascii: "/")) || name.utf8.contains(0) {
            throw .invalidFileName(name, reason: "it must be a plain file name, without '/' or NUL")
        }
    }
}
