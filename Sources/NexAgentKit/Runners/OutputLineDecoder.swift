import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Splits a workload's output stream into lines, without their `\n`, delivered as one batch
/// per read: every complete line of what was read together, so a chatty workload's lines
/// travel on in batches and a quiet one's at once.
///
/// A line longer than `maximumLineLength` is cut into pieces of that length; an unfinished
/// last line is delivered at end of stream. Lines are slices of the bytes read (no copy).
struct OutputLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = [ByteBuffer]

    let maximumLineLength: Int

    init(maximumLineLength: Int) {
        precondition(maximumLineLength > 0, "maximumLineLength must be positive")
        self.maximumLineLength = maximumLineLength
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var lines: [ByteBuffer] = []
        while let line = nextLine(&buffer) { lines.append(line) }
        if !lines.isEmpty { context.fireChannelRead(wrapInboundOut(lines)) }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        var lines: [ByteBuffer] = []
        while let line = nextLine(&buffer) { lines.append(line) }
        if buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) { lines.append(rest) }
        if !lines.isEmpty { context.fireChannelRead(wrapInboundOut(lines)) }
        return .needMoreData
    }

    /// The next complete line (or a full-length piece of a long one), consumed from `buffer`.
    func nextLine(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        let searched = min(buffer.readableBytes, maximumLineLength + 1)
        guard searched > 0 else { return nil }
        let newline: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard let found = memchr(bytes.baseAddress!, Int32(UInt8(ascii: "\n")), searched) else { return nil }
            return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
        }
        if let newline {
            let line = buffer.readSlice(length: newline)
            buffer.moveReaderIndex(forwardBy: 1)
            return line
        }
        guard buffer.readableBytes >= maximumLineLength else { return nil }
        return buffer.readSlice(length: maximumLineLength)
    }
}
