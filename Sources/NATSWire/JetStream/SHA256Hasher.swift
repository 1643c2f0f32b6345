import COpenSSL

/// Incremental SHA-256 on the system OpenSSL (no hand-written hashing): object store digests,
/// artifact hashes.
///
/// ```swift
/// let hasher = SHA256Hasher()
/// bytes.withUnsafeBytes { hasher.update($0) }
/// let digest = hasher.finalize()  // 32 bytes
/// ```
///
/// Not thread-safe: one hasher per stream.
package final class SHA256Hasher {
    private let context: OpaquePointer

    /// A hasher with nothing hashed yet.
    package init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("OpenSSL EVP_MD_CTX_new failed") }
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "OpenSSL EVP_DigestInit_ex failed")
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Adds `bytes` to the digest.
    package func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(EVP_DigestUpdate(context, base, bytes.count) == 1, "OpenSSL EVP_DigestUpdate failed")
    }

    /// The digest of everything added so far (32 bytes). Call once.
    package func finalize() -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &output, &length) == 1, "OpenSSL EVP_DigestFinal_ex failed")
        return Array(output.prefix(Int(length)))
    }
}
