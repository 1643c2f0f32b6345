import COpenSSL

/// Message digests from the system OpenSSL (no hand-written hashing).
enum Digest {
    /// SHA-256, 32 bytes.
    static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        digest(bytes, EVP_sha256())
    }

    /// SHA-512/256 (FIPS 180-4), 32 bytes: what the Go JWT library hashes claims with for `jti`.
    static func sha512_256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        digest(bytes, EVP_sha512_256())
    }

    private static func digest(_ bytes: some Collection<UInt8>, _ type: OpaquePointer?) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = withContiguousBytes(bytes) { pointer, count in
            EVP_Digest(pointer, count, &output, &length, type, nil)
        }
        precondition(ok == 1, "OpenSSL EVP_Digest failed")
        return Array(output.prefix(Int(length)))
    }
}
