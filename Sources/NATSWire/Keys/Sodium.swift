import CSodium

/// Small internal helpers around libsodium.
enum Sodium {
    /// `sodium_init` runs once, lazily and thread-safely, on first use.
    static let isInitialized: Bool = sodium_init() >= 0

    /// Makes sure libsodium is initialised.
    static func ensureInitialized() throws {
        guard isInitialized else {
            throw NKeyError.sodiumFailure(operation: "sodium_init")
        }
    }

    /// `count` bytes from libsodium's CSPRNG.
    static func randomBytes(_ count: Int) throws -> [UInt8] {
        try ensureInitialized()
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { buffer in
            randombytes_buf(buffer.baseAddress!, buffer.count)
        }
        return bytes
    }
}

/// Calls `body` with a pointer to `bytes` laid out contiguously, and their count.
///
/// The pointer is never null, even for an empty collection, so it can be
/// handed to C functions that do not accept `NULL` buffers.
func withContiguousBytes<R>(
    _ bytes: some Collection<UInt8>,
    _ body: (UnsafePointer<UInt8>, Int) throws -> R
) rethrows -> R {
    if let result = try bytes.withContiguousStorageIfAvailable({ buffer -> R in
        if let base = buffer.baseAddress, buffer.count > 0 {
            return try body(base, buffer.count)
        }
        var empty: UInt8 = 0
        return try body(&empty, 0)
    }) {
        return result
    }
    let copy = Array(bytes)
    return try copy.withUnsafeBufferPointer { buffer in
        if let base = buffer.baseAddress, buffer.count > 0 {
            return try body(base, buffer.count)
        }
        var empty: UInt8 = 0
        return try body(&empty, 0)
    }
}
