import NexWorkloads
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The POSIX file operations of the artifact cache: exclusive creation, kernel-side copies,
/// atomic renames. Each failure is an ``ArtifactError/fileError(path:operation:reason:)`` naming
/// the path.
enum ArtifactFile {
    /// Bytes moved per `sendfile` call, and the size of the fallback read/write buffer.
    static let chunkSize = 1 << 20

    /// The text of the current `errno`, with its number.
    static func errnoText(_ code: Int32 = errno) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    static func failure(_ path: String, _ operation: String, _ code: Int32 = errno) -> ArtifactError {
        .fileError(path: path, operation: operation, reason: errnoText(code))
    }

    /// A name no other fetch or placement uses: 16 random hex digits.
    static func uniqueSuffix() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `lstat` of `path`, nil with `errno` set when it fails.
    static func linkStatus(_ path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    static func isRegular(_ info: stat) -> Bool { info.st_mode & S_IFMT == S_IFREG }
    static func isDirectory(_ info: stat) -> Bool { info.st_mode & S_IFMT == S_IFDIR }

    /// Opens `path` for reading. `O_NONBLOCK` keeps a FIFO swapped in for a file from hanging
    /// the open; regular files ignore it.
    static func openForReading(_ path: String) throws(ArtifactError) -> Int32 {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { throw failure(path, "open") }
        return descriptor
    }

    /// Creates `path`, which must not exist (a symbolic link there is not followed), with `mode`
    /// exactly (whatever the umask).
    static func createExclusive(_ path: String, mode: mode_t) throws(ArtifactError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure(path, "create") }
        guard fchmod(descriptor, mode) == 0 else {
            let code = errno
            close(descriptor)
            unlink(path)
            throw failure(path, "set the mode of", code)
        }
        return descriptor
    }

    /// The size of an open file.
    static func size(of descriptor: Int32, path: String) throws(ArtifactError) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw failure(path, "stat") }
        return Int(info.st_size)
    }

    /// Flushes `descriptor` to disk and closes it (also when flushing fails).
    static func finish(_ descriptor: Int32, path: String) throws(ArtifactError) {
        if fsync(descriptor) != 0 {
            let code = errno
            close(descriptor)
            throw failure(path, "flush", code)
        }
        guard close(descriptor) == 0 else { throw failure(path, "close") }
    }

    /// Flushes and closes `descriptor`, then renames `temporary` to `destination` (atomically
    /// replacing it). Removes `temporary` when anything fails.
    static func commit(_ descriptor: Int32, temporary: String, to destination: String) throws(ArtifactError) {
        do throws(ArtifactError) {
            try finish(descriptor, path: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, destination) == 0 else {
            let code = errno
            unlink(temporary)
            throw failure(destination, "rename \(temporary) to", code)
        }
    }

    /// Copies from the current offset of `source` to `destination` until end of file: in the
    /// kernel with `sendfile` (which Linux allows between regular files), else through a 1 MiB
    /// buffer when the file systems refuse it.
    ///
    /// With a `limit`, stops after `limit + 1` bytes, so a caller sees that the source is over
    /// the limit without copying all of it. Returns the number of bytes copied.
    static func copy(
        from source: Int32, _ sourcePath: String, to destination: Int32, _ destinationPath: String, limit: Int? = nil
    ) throws(ArtifactError) -> Int {
        let stopAt = limit.map { $0 + 1 } ?? Int.max
        var copied = 0
        var kernelCopy = true
        while kernelCopy && copied < stopAt {
            let count = sendfile(destination, source, nil, min(chunkSize, stopAt - copied))
            if count > 0 {
                copied += count
            } else if count == 0 {
                // End of file; but some file systems (procfs...) report 0 for files they cannot
                // copy in the kernel, so confirm with read(2) when nothing was copied at all.
                if copied > 0 { return copied }
                kernelCopy = false
            } else {
                switch errno {
                case EINTR: continue
                case ENOSYS, EINVAL, EOPNOTSUPP: kernelCopy = false
                default: throw failure(sourcePath, "copy to \(destinationPath)")
                }
            }
        }
        guard copied < stopAt else { return copied }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while copied < stopAt {
            let count = read(source, buffer.baseAddress, min(buffer.count, stopAt - copied))
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(sourcePath, "read")
            }
            var written = 0
            while written < count {
                let result = write(destination, buffer.baseAddress! + written, count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw failure(destinationPath, "write")
                }
                written += result
            }
            copied += count
        }
        return copied
    }
}
