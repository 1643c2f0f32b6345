@_spi(WASIPlatform) import WASI

/// The guest's standard input (fd 0): the trigger payload, read once from the start.
///
/// Used only by the thread running the invocation, hence `@unchecked Sendable` (WASI asks
/// for `Sendable` entries).
final class WasmInputStream: WASIFile, @unchecked Sendable {
    private var bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Starts over with the next call's payload (the stream stays the one the WASI bridge holds).
    func reset(_ payload: [UInt8]) {
        bytes = payload
        position = 0
    }

    var isBorrowed: Bool { true }
    var hostFileDescriptor: CInt? { nil }

    func attributes() throws -> WASIAbi.Filestat {
        WASIAbi.Filestat(dev: 0, ino: 0, filetype: .CHARACTER_DEVICE, nlink: 0, size: 0, atim: 0, mtim: 0, ctim: 0)
    }

    func fileType() throws -> WASIAbi.FileType { .CHARACTER_DEVICE }
    func status() throws -> WASIAbi.Fdflags { [] }
    func setTimes(atim: WASIAbi.Timestamp, mtim: WASIAbi.Timestamp, fstFlags: WASIAbi.FstFlags) throws {
        throw WASIAbi.Errno.ENOTSUP
    }
    func advise(offset: WASIAbi.FileSize, length: WASIAbi.FileSize, advice: WASIAbi.Advice) throws {}
    func close() throws {}

    func fdStat() throws -> WASIAbi.FdStat {
        WASIAbi.FdStat(fsFileType: .CHARACTER_DEVICE, fsFlags: [], fsRightsBase: [.FD_READ], fsRightsInheriting: [])
    }
    func setFdStatFlags(_ flags: WASIAbi.Fdflags) throws {}
    func setFilestatSize(_ size: WASIAbi.FileSize) throws { throw WASIAbi.Errno.EINVAL }
    func sync() throws {}
    func datasync() throws {}
    func tell() throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }
    func seek(offset: WASIAbi.FileDelta, whence: WASIAbi.Whence) throws -> WASIAbi.FileSize {
        throw WASIAbi.Errno.ESPIPE
    }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size { throw WASIAbi.Errno.EBADF }
    func pwrite(vectored buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.EBADF
    }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size {
        var total = 0
        for index in 0..<buffers.count where position < bytes.count {
            let copied = try buffers.withHostBuffer(at: index) { destination in
                let count = min(destination.count, bytes.count - position)
                guard count > 0, let base = destination.baseAddress else { return 0 }
                bytes.withUnsafeBytes { source in
                    base.copyMemory(from: source.baseAddress! + position, byteCount: count)
                }
                return count
            }
            position += copied
            total += copied
        }
        return WASIAbi.Size(total)
    }

    func pread(into buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size {
        throw WASIAbi.Errno.ESPIPE
    }
}
