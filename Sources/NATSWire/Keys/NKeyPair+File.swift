import FoundationEssentials

extension NKeyPair {
    /// Reads a seed kept in a file (surrounding whitespace ignored), as `--nkey FILE` options take it.
    ///
    /// - Throws: ``NATSError/invalidCredentials(_:)`` naming the file when it cannot be read or
    ///   does not hold a seed.
    public init(seedFile path: String) throws(NATSError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NATSError.invalidCredentials("cannot read nkey seed file \(path)")
        }
        let seed = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        do {
            try self.init(seed: seed)
        } catch {
            throw NATSError.invalidCredentials("nkey seed file \(path) does not hold a seed: \(error)")
        }
    }
}
