#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A local file read or written in chunks with POSIX calls (objects are streamed, never loaded whole).
final class ObjectFile {
    let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { _ = close(descriptor) }
    }

    static func openForReading(_ path: String) throws(ObjectStoreError) -> ObjectFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(path, "open", errno) }
        return ObjectFile(path: path, descriptor: descriptor)
    }

    /// Creates (or truncates) a file for writing, readable by its owner and group.
    static func create(_ path: String) throws(ObjectStoreError) -> ObjectFile {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure(path, "create", errno) }
        return ObjectFile(path: path, descriptor: descriptor)
    }

    /// Fills `buffer` unless the file ends first; returns the bytes read (0 at the end).
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(ObjectStoreError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure(path, "read", errno)
            }
            filled += count
        }
        return filled
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(ObjectStoreError) {
        var written = 0
        while written < bytes.count {
            let count = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure(path, "write", errno)
            }
            written += count
        }
    }

    func finish() throws(ObjectStoreError) {
        guard descriptor >= 0 else { return }
        let result = close(descriptor)
        descriptor = -1
        if result != 0 { throw Self.failure(path, "close", errno) }
    }

    static func move(_ from: String, to: String) throws(ObjectStoreError) {
        guard rename(from, to) == 0 else { throw failure(to, "rename \(from) to", errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    private static func failure(_ path: String, _ operation: String, _ code: Int32) -> ObjectStoreError {
        .fileError(path: path, operation: operation, reason: "\(String(cString: strerror(code))) (errno \(code))")
    }
}
