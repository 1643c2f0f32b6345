import FoundationEssentials
import NATSWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The keys a workload publisher keeps in `~/.nex` (or `$NEX_HOME`), as the Nex CLI does:
/// `issuer.nk`, an account seed that signs workload JWTs, and `publisher.xk`, a curve seed that
/// seals deploy environments. Each is created on first use: the directory with mode 0700, the
/// files with mode 0600, never overwriting an existing file.
///
/// ```swift
/// let store = NexKeyStore(directory: NexKeyStore.defaultDirectory())
/// let issuer = try store.issuer()       // creates issuer.nk if absent
/// let sender = try store.publisher()    // creates publisher.xk if absent
/// ```
public struct NexKeyStore: Sendable {
    /// The directory holding the keys.
    public let directory: String

    /// A store in `directory`; nothing is read or created until a key is asked for.
    public init(directory: String) {
        self.directory = directory
    }

    /// `$NEX_HOME` when set and not empty, else `$HOME/.nex`.
    public static func defaultDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let home = environment["NEX_HOME"], !home.isEmpty { return home }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? FileManager.default.homeDirectoryForCurrentUser.path
        return (home.hasSuffix("/") ? String(home.dropLast()) : home) + "/.nex"
    }

    /// `<directory>/issuer.nk`.
    public var issuerPath: String { directory + "/issuer.nk" }
    /// `<directory>/publisher.xk`.
    public var publisherPath: String { directory + "/publisher.xk" }

    /// The issuer (account) key pair, created on first use.
    public func issuer() throws(NexKeyStoreError) -> NKeyPair {
        try loadOrCreate(issuerPath, read: Self.readNKey, create: { () throws(NexKeyStoreError) -> (NKeyPair, String) in
            let pair = try Self.generateIssuer()
            return (pair, pair.seed)
        })
    }

    /// The publisher curve key pair, created on first use.
    public func publisher() throws(NexKeyStoreError) -> XKeyPair {
        try loadOrCreate(publisherPath, read: Self.readXKey, create: { () throws(NexKeyStoreError) -> (XKeyPair, String) in
            let pair = try Self.generateXKey()
            return (pair, pair.seed)
        })
    }

    private func loadOrCreate<Key>(
        _ path: String, read: (String) throws(NexKeyStoreError) -> Key,
        create: () throws(NexKeyStoreError) -> (Key, String)
    ) throws(NexKeyStoreError) -> Key {
        if FileManager.default.fileExists(atPath: path) { return try read(path) }
        try Self.makeDirectory(directory)
        let (key, seed) = try create()
        do {
            try Self.writeSeed(seed, to: path)
        } catch let error where error.code == .fileExists {
            return try read(path)  // another process created it first: use theirs
        }
        return key
    }

    // MARK: Seed files

    /// A fresh account key pair (`A...`), the role the Nex CLI signs workload JWTs with.
    package static func generateIssuer() throws(NexKeyStoreError) -> NKeyPair {
        do { return try NKeyPair.generate(.account) } catch { throw .generationFailed(reason: "\(error)") }
    }

    /// A fresh curve key pair (`X...`).
    package static func generateXKey() throws(NexKeyStoreError) -> XKeyPair {
        do { return try XKeyPair.generate() } catch { throw .generationFailed(reason: "\(error)") }
    }

    /// Reads an nkey seed file (surrounding whitespace ignored).
    public static func readNKey(_ path: String) throws(NexKeyStoreError) -> NKeyPair {
        let seed = try readSeedText(path)
        do { return try NKeyPair(seed: seed) } catch { throw .notASeed(path: path, reason: "\(error)") }
    }

    /// Reads a curve (`SX...`) seed file (surrounding whitespace ignored).
    public static func readXKey(_ path: String) throws(NexKeyStoreError) -> XKeyPair {
        let seed = try readSeedText(path)
        do { return try XKeyPair(seed: seed) } catch { throw .notASeed(path: path, reason: "\(error)") }
    }

    private static func readSeedText(_ path: String) throws(NexKeyStoreError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
    }

    /// Writes `seed` (and a newline) to a new file at `path` with mode 0600. The file appears
    /// complete or not at all, and an existing file is never replaced.
    ///
    /// - Throws: ``NexKeyStoreError/fileExists(path:)`` when `path` exists, or
    ///   ``NexKeyStoreError/cannotWrite(path:reason:)``.
    package static func writeSeed(_ seed: String, to path: String) throws(NexKeyStoreError) {
        if FileManager.default.fileExists(atPath: path) { throw .fileExists(path: path) }
        let temporary = "\(path).\(getpid()).\(UInt32.random(in: .min ... .max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { unlink(temporary) }
        let bytes = Array((seed + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw .cannotWrite(path: path, reason: reason)
            }
            written += count
        }
        // Mode 0600 whatever the umask; then publish under the real name without replacing one.
        fchmod(descriptor, 0o600)
        let synced = fsync(descriptor)
        close(descriptor)
        if synced != 0 { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        if link(temporary, path) != 0 {
            if errno == EEXIST { throw .fileExists(path: path) }
            throw .cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Creates `path` (and its parents) with mode 0700 when it does not exist.
    static func makeDirectory(_ path: String) throws(NexKeyStoreError) {
        var isDirectory = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory else { throw .cannotWrite(path: path, reason: "exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .cannotWrite(path: path, reason: "cannot create the directory: \(error)")
        }
        chmod(path, 0o700)
    }
}
