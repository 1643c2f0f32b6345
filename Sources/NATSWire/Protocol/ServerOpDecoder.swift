import FoundationEssentials
import NIOCore

/// Decodes the operations a NATS server sends (`INFO`, `MSG`, `HMSG`, `PING`, `PONG`, `+OK`, `-ERR`).
///
/// A single-step decoder over `ByteBuffer`: it returns `nil` until a whole frame is buffered
/// (frames may be split at any byte), never consumes a partial frame, and throws a
/// ``NATSProtocolError`` naming the offending bytes for anything that is not NATS.
package struct ServerOpDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    /// The decoder yields server operations.
    package typealias InboundOut = ServerOp

    /// The longest control line accepted, in bytes (without CRLF).
    package var maxControlLine: Int
    /// The largest payload (headers included) accepted, in bytes; set from the server's `max_payload`.
    package var maxPayload: Int

    /// A decoder with these limits, in bytes.
    package init(maxControlLine: Int = 4096, maxPayload: Int = 64 * 1024 * 1024) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    private enum Parsed {
        case op(ServerOp, consumed: Int)
        case message(
            subject: String, sid: Int, replyTo: String?, headers: Result<NATSHeaders?, NATSProtocolError>,
            payload: Range<Int>, consumed: Int)
    }

    /// Decodes one whole frame from `buffer`, or returns nil (consuming nothing) until one is buffered.
    package mutating func decode(buffer: inout ByteBuffer) throws -> ServerOp? {
        let parsed = try buffer.withUnsafeReadableBytes { try parse($0) }
        switch parsed {
        case nil:
            return nil
        case .op(let op, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            return op
        case .message(let subject, let sid, let replyTo, let headers, let payload, let consumed):
            let body = buffer.getSlice(at: buffer.readerIndex + payload.lowerBound, length: payload.count)!
            buffer.moveReaderIndex(forwardBy: consumed)
            switch headers {
            case .success(let headers):
                return .msg(NATSMessage(subject: subject, sid: sid, replyTo: replyTo, headers: headers, payload: body))
            case .failure(let error):
                return .malformedMessage(sid: sid, subject: subject, error: error)
            }
        }
    }

    /// Decodes the last frames; bytes left over at end of stream throw
    /// ``NATSProtocolError/Kind/truncatedFrame``.
    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ServerOp? {
        if let op = try decode(buffer: &buffer) { return op }
        if seenEOF, buffer.readableBytes > 0 {
            throw NATSProtocolError(.truncatedFrame, buffer: buffer)
        }
        return nil
    }

    private func parse(_ bytes: UnsafeRawBufferPointer) throws -> Parsed? {
        guard let lf = ControlLine.lineFeedIndex(in: bytes, limit: maxControlLine) else {
            if bytes.count > maxControlLine + 1 {
                throw NATSProtocolError(.controlLineTooLong(limit: maxControlLine), bytes: bytes)
            }
            return nil
        }
        let lineEnd = lf > 0 && bytes[lf - 1] == ControlLine.cr ? lf - 1 : lf
        guard lineEnd <= maxControlLine else {
            throw NATSProtocolError(.controlLineTooLong(limit: maxControlLine), bytes: bytes)
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<lineEnd])
        var opEnd = 0
        while opEnd < lineEnd, !ControlLine.isBlank(bytes[opEnd]) { opEnd += 1 }
        let opRange = 0..<opEnd
        let consumedLine = lf + 1

        if ControlLine.matches(bytes, opRange, "MSG") {
            return try parseMessage(bytes, line: line, argsFrom: opEnd, lineEnd: lineEnd, bodyStart: consumedLine, withHeaders: false)
        }
        if ControlLine.matches(bytes, opRange, "HMSG") {
            return try parseMessage(bytes, line: line, argsFrom: opEnd, lineEnd: lineEnd, bodyStart: consumedLine, withHeaders: true)
        }
        if ControlLine.matches(bytes, opRange, "PING") {
            guard ControlLine.isBlankOnly(bytes, from: opEnd, to: lineEnd) else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            return .op(.ping, consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "PONG") {
            guard ControlLine.isBlankOnly(bytes, from: opEnd, to: lineEnd) else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            return .op(.pong, consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "+OK") {
            return .op(.ok, consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "-ERR") {
            return .op(.err(Self.errorText(bytes, from: opEnd, to: lineEnd)), consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "INFO") {
            let json = UnsafeRawBufferPointer(rebasing: bytes[opEnd..<lineEnd])
            do {
                let info = try JSONDecoder().decode(ServerInfo.self, from: Data(json))
                return .op(.info(info), consumed: consumedLine)
            } catch {
                throw NATSProtocolError(.invalidJSON(reason: "INFO: \(error)"), bytes: line)
            }
        }
        throw NATSProtocolError(.unknownOperation, bytes: line)
    }

    /// `MSG <subject> <sid> [reply-to] <#bytes>` or `HMSG <subject> <sid> [reply-to] <#hdr> <#total>`.
    private func parseMessage(
        _ bytes: UnsafeRawBufferPointer, line: UnsafeRawBufferPointer, argsFrom: Int, lineEnd: Int, bodyStart: Int,
        withHeaders: Bool
    ) throws -> Parsed? {
        var fields = FieldRanges()
        guard let count = ControlLine.split(bytes, from: argsFrom, to: lineEnd, into: &fields) else {
            throw NATSProtocolError(.invalidArguments, bytes: line)
        }
        let sizeFields = withHeaders ? 2 : 1
        guard count == 2 + sizeFields || count == 3 + sizeFields else {
            throw NATSProtocolError(.invalidArguments, bytes: line)
        }
        guard let sid = ControlLine.parseCount(bytes, fields[1]) else {
            throw NATSProtocolError(.invalidArguments, bytes: line)
        }
        guard let total = ControlLine.parseCount(bytes, fields[count - 1]) else {
            throw NATSProtocolError(.invalidByteCount, bytes: line)
        }
        var headerSize = 0
        if withHeaders {
            guard let size = ControlLine.parseCount(bytes, fields[count - 2]), size <= total else {
                throw NATSProtocolError(.invalidByteCount, bytes: line)
            }
            headerSize = size
        }
        guard total <= maxPayload else {
            throw NATSProtocolError(.payloadTooLarge(size: total, limit: maxPayload), bytes: line)
        }
        let frameEnd = bodyStart + total + 2
        guard bytes.count >= frameEnd else { return nil }
        guard bytes[frameEnd - 2] == ControlLine.cr, bytes[frameEnd - 1] == ControlLine.lf else {
            throw NATSProtocolError(.payloadNotTerminated, bytes: line)
        }
        let subject = ControlLine.string(bytes, fields[0])
        let replyTo = count == 3 + sizeFields ? ControlLine.string(bytes, fields[2]) : nil
        var headers: Result<NATSHeaders?, NATSProtocolError> = .success(nil)
        if withHeaders {
            let block = UnsafeRawBufferPointer(rebasing: bytes[bodyStart..<(bodyStart + headerSize)])
            headers = Result { () throws(NATSProtocolError) in try NATSHeaders(parsing: block) }
        }
        return .message(
            subject: subject, sid: sid, replyTo: replyTo, headers: headers,
            payload: (bodyStart + headerSize)..<(bodyStart + total), consumed: frameEnd)
    }

    /// The text of `-ERR 'message'`, without blanks and quotes around it.
    static func errorText(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> String {
        var lower = start, upper = end
        while lower < upper, ControlLine.isBlank(bytes[lower]) { lower += 1 }
        while upper > lower, ControlLine.isBlank(bytes[upper - 1]) { upper -= 1 }
        if upper - lower >= 2, bytes[lower] == UInt8(ascii: "'"), bytes[upper - 1] == UInt8(ascii: "'") {
            lower += 1
            upper -= 1
        }
        return ControlLine.string(bytes, lower..<upper)
    }
}
