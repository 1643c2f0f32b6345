import CSodium

/// A fixed-size heap buffer for secret key material that is wiped with
/// `sodium_memzero` when the last reference goes away.
///
/// The contents are written once, inside the initializer, and only read
/// afterwards, which is what makes sharing it across concurrency domains safe.
final class SecretBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// Allocates `count` zeroed bytes and lets `fill` write them.
    init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        self.count = count
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        } catch {
            sodium_memzero(storage.baseAddress, storage.count)
            storage.deallocate()
            throw error
        }
    }

    /// Copies `bytes` into a new secret buffer.
    convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// The number of secret bytes.
    let count: Int

    /// Gives read access to the secret bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Gives typed read access to the secret bytes.
    func withUnsafeUInt8Pointer<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafePointer(storage.baseAddress!.assumingMemoryBound(to: UInt8.self)))
    }

    deinit {
        sodium_memzero(storage.baseAddress, storage.count)
        storage.deallocate()
    }
}

/// Overwrites an array's bytes with zeros using `sodium_memzero`.
func secureWipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress {
            sodium_memzero(base, buffer.count)
        }
    }
}
