@_spi(WASIPlatform) import WASI

/// The guest's standard output or error (fd 1, 2): every write is appended, so the reply is
/// the whole of stdout (Nex 0.2 kept only the last write).
///
/// Beyond `limit` bytes a stream either fails the write with `EFBIG` and remembers it
/// (stdout: the invocation then fails, since its reply would be cut) or quietly drops the
/// rest (stderr, kept only for error messages).
///
/// Used only by the thread running the invocation, hence `@unchecked Sendable`.
final class WasmOutputStream: WASIFile, @unchecked Sendable {
    /// What was written.
    private(set) var bytes: [UInt8] = []
    /// Whether a write was refused for going over the limit.
    private(set) var overflowed = false
    let limit: Int
    private let failsWhenFull: Bool

    init(limit: Int, failsWhenFull: Bool) {
        self.limit = limit
        self.failsWhenFull = failsWhenFull
    }

    /// Empties the stream for the next call (it stays the one the WASI bridge holds).
    func reset() {
        bytes = []
        overflowed = false
    }

    /// Hands the written bytes over (without copying), leaving the stream empty.
    func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }

    var isBorrowed: Bool { true }
    var hostFileDescriptor: CInt? { nil }

    func attributes() throws -> WASIAbi.Filestat {
        WASIAbi.Filestat(dev: 0, ino: 0, filetype: .CHARACTER_DEVICE, nlink: 0, size: 0, atim: 0, mtim: 0, ctim: 0)
    }

    func fileType() throws -> WASIAbi.FileType { .CHARACTER_DEVICE }
    func status() throws -> WASIAbi.Fdflags { [.APPEND] }
    func setTimes(atim: WASIAbi.Timestamp, mtim: WASIAbi.Timestamp, fstFlags: WASIAbi.FstFlags) throws {
        throw WASIAbi.Errno.ENOTSUP
    }
    func advise(offset: WASIAbi.FileSize, length: WASIAbi.FileSize, advice: WASIAbi.Advice) throws {}
    func close() throws {}

    func fdStat() throws -> WASIAbi.FdStat {
        WASIAbi.FdStat(fsFileType: .CHARACTER_DEVICE, fsFlags: [.APPEND], fsRightsBase: [.FD_WRITE], fsRightsInheriting: [])
    }
    func setFdStatFlags(_ flags: WASIAbi.Fdflags) throws {}
    func setFilestatSize(_ size: WASIAbi.FileSize) throws { throw WASIAbi.Errno.EINVAL }
    func sync() throws {}
    func datasync() throws {}
    func tell() throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }
    func seek(offset: WASIAbi.FileDelta, whence: WASIAbi.Whence) throws -> WASIAbi.FileSize {
        throw WASIAbi.Errno.ESPIPE
    }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size {
        var total = 0
        for index in 0..<buffers.count {
            total += try buffers.withHostBuffer(at: index) { source in
                let room = limit - bytes.count
                guard source.count <= room else {
                    if failsWhenFull {
                        overflowed = true
                        throw WASIAbi.Errno.EFBIG
                    }
                    if room > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: source[..<room])) }
                    // Report everything as written: stderr is best effort.
                    return source.count
                }
                bytes.append(contentsOf: UnsafeRawBufferPointer(source))
                return source.count
            }
        }
        return WASIAbi.Size(total)
    }

    func pwrite(vectored buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.ESPIPE
    }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size { throw WASIAbi.Errno.EBADF }
    func pread(into buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.EBADF
    }
}
