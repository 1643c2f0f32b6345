import NexWorkloads
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The deploy tokens (`<issuer>.<jti>` of workload JWTs) a node has accepted, kept in its state directory
/// (`<state>/deploy-tokens.json`, mode 0600) until each token expires, so that the same deploy
/// request sent again (or after a restart) does not start its workload a second time.
///
/// A token without `exp` is remembered for good. Only tokens of accepted deploys are written,
/// so the file grows with the work trusted issuers asked for, not with what anyone sends.
/// Not thread-safe: the ``WorkloadManager`` actor owns it.
struct DeployTokenLedger {
    /// jti → expiry (Unix seconds), nil when the token does not expire.
    private var tokens: [String: Int64?]
    let path: String

    /// Reads the ledger in `stateDirectory`, dropping expired tokens; a missing file is empty.
    ///
    /// - Throws: ``NodeStartError`` naming the file when it exists but cannot be read as a ledger.
    init(stateDirectory: String, now: Date = Date()) throws {
        path = stateDirectory.hasSuffix("/") ? stateDirectory + "deploy-tokens.json" : stateDirectory + "/deploy-tokens.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            tokens = [:]
            return
        }
        let stored: [String: Int64?]
        do {
            stored = try JSONDecoder().decode([String: Int64?].self, from: data)
        } catch {
            throw NodeStartError("\(path) is not a deploy token ledger (delete it to forget every token): \(error)")
        }
        let seconds = Int64(now.timeIntervalSince1970)
        tokens = stored.filter { $0.value.map { $0 > seconds } ?? true }
    }

    /// Whether the token `jti` was accepted before.
    func contains(_ jti: String) -> Bool { tokens[jti] != nil }

    var count: Int { tokens.count }

    /// Remembers `jti` until `expires` and writes the ledger (replacing the file atomically).
    mutating func record(_ jti: String, expires: Int64?, now: Date = Date()) throws {
        let seconds = Int64(now.timeIntervalSince1970)
        tokens = tokens.filter { $0.value.map { $0 > seconds } ?? true }
        tokens[jti] = .some(expires)
        let data = try JSONEncoder().encode(tokens)
        let temporary = path + ".partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw NodeStartError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw NodeStartError("cannot write \(path): \(reason)")
        }
    }
}
