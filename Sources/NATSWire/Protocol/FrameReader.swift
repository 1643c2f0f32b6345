import NIOCore

/// Feeds socket reads to a single-step decoder, keeping the bytes of a frame that spans reads.
///
/// Decoded messages keep slices of the read buffer (no copy); only the unfinished tail of a
/// read is copied, so a split frame never forces a copy of the whole read.
package struct FrameReader<Decoder: NIOSingleStepByteToMessageDecoder> {
    /// The decoder; its limits may be changed between reads.
    package var decoder: Decoder
    private var tail: ByteBuffer?

    /// A reader feeding `decoder`.
    package init(_ decoder: Decoder) {
        self.decoder = decoder
    }

    /// Bytes received but not yet decoded.
    package var bufferedBytes: Int { tail?.readableBytes ?? 0 }

    /// Decodes every whole frame available after appending `bytes`.
    package mutating func read(_ bytes: ByteBuffer, _ receive: (Decoder.InboundOut) throws -> Void) throws {
        var buffer = bytes
        if var pending = tail {
            // Complete the frame left over from the last read by appending the new bytes in
            // growing chunks (not the whole read). Once it decodes, whatever of the appended
            // bytes it did not use is still in `buffer`: rewind to it and go on zero-copy.
            tail = nil
            while true {
                let chunk = min(buffer.readableBytes, max(pending.readableBytes, 4096))
                var piece = buffer.readSlice(length: chunk)!
                pending.writeBuffer(&piece)
                if let frame = try decoder.decode(buffer: &pending) {
                    buffer.moveReaderIndex(to: buffer.readerIndex - pending.readableBytes)
                    try receive(frame)
                    break
                }
                if buffer.readableBytes == 0 {
                    tail = pending
                    return
                }
            }
        }
        var decodedAny = false
        while let frame = try decoder.decode(buffer: &buffer) {
            decodedAny = true
            try receive(frame)
        }
        if buffer.readableBytes > 0 && !decodedAny {
            // No frame holds a slice of it: keep growing it in place.
            tail = buffer
        } else if buffer.readableBytes > 0 {
            var copy = ByteBufferAllocator().buffer(capacity: max(buffer.readableBytes * 2, 4096))
            copy.writeBuffer(&buffer)
            tail = copy
        }
    }

    /// Called when the stream ends: a partial frame left over is an error.
    package mutating func finish(_ receive: (Decoder.InboundOut) throws -> Void) throws {
        guard var buffer = tail else { return }
        tail = nil
        while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
            try receive(frame)
        }
    }
}
