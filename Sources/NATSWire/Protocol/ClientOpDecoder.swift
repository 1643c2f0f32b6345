import FoundationEssentials
import NIOCore

/// Decodes the operations a NATS client sends (`CONNECT`, `PUB`, `HPUB`, `SUB`, `UNSUB`, `PING`, `PONG`).
///
/// The server side of the protocol, used by the agent-bus broker. Same contract as
/// ``ServerOpDecoder``: whole frames only, typed errors naming the offending bytes.
package struct ClientOpDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    /// The decoder yields client operations.
    package typealias InboundOut = ClientOp

    /// The longest control line accepted, in bytes (without CRLF).
    package var maxControlLine: Int
    /// The largest payload (headers included) accepted, in bytes.
    package var maxPayload: Int

    /// A decoder with these limits, in bytes.
    package init(maxControlLine: Int = 4096, maxPayload: Int = 1024 * 1024) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    private enum Parsed {
        case op(ClientOp, consumed: Int)
        case publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: Range<Int>, consumed: Int)
    }

    /// Decodes one whole frame from `buffer`, or returns nil (consuming nothing) until one is buffered.
    package mutating func decode(buffer: inout ByteBuffer) throws -> ClientOp? {
        let parsed = try buffer.withUnsafeReadableBytes { try parse($0) }
        switch parsed {
        case nil:
            return nil
        case .op(let op, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            return op
        case .publish(let subject, let replyTo, let headers, let payload, let consumed):
            let body = buffer.getSlice(at: buffer.readerIndex + payload.lowerBound, length: payload.count)!
            buffer.moveReaderIndex(forwardBy: consumed)
            return .pub(subject: subject, replyTo: replyTo, headers: headers, payload: body)
        }
    }

    /// Decodes the last frames; bytes left over at end of stream throw
    /// ``NATSProtocolError/Kind/truncatedFrame``.
    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ClientOp? {
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
        var fields = FieldRanges()

        if ControlLine.matches(bytes, opRange, "PUB") || ControlLine.matches(bytes, opRange, "HPUB") {
            let withHeaders = opEnd == 4
            guard let count = ControlLine.split(bytes, from: opEnd, to: lineEnd, into: &fields) else {
                throw NATSProtocolError(.invalidArguments, bytes: line)
            }
            let sizeFields = withHeaders ? 2 : 1
            guard count == 1 + sizeFields || count == 2 + sizeFields else {
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
            let frameEnd = consumedLine + total + 2
            guard bytes.count >= frameEnd else { return nil }
            guard bytes[frameEnd - 2] == ControlLine.cr, bytes[frameEnd - 1] == ControlLine.lf else {
                throw NATSProtocolError(.payloadNotTerminated, bytes: line)
            }
            var headers: NATSHeaders?
            if withHeaders {
                headers = try NATSHeaders(
                    parsing: UnsafeRawBufferPointer(rebasing: bytes[consumedLine..<(consumedLine + headerSize)]))
            }
            return .publish(
                subject: ControlLine.string(bytes, fields[0]),
                replyTo: count == 2 + sizeFields ? ControlLine.string(bytes, fields[1]) : nil,
                headers: headers, payload: (consumedLine + headerSize)..<(consumedLine + total), consumed: frameEnd)
        }
        if ControlLine.matches(bytes, opRange, "SUB") {
            guard let count = ControlLine.split(bytes, from: opEnd, to: lineEnd, into: &fields), count == 2 || count == 3
            else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            return .op(
                .sub(
                    subject: ControlLine.string(bytes, fields[0]),
                    queue: count == 3 ? ControlLine.string(bytes, fields[1]) : nil,
                    sid: ControlLine.string(bytes, fields[count - 1])),
                consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "UNSUB") {
            guard let count = ControlLine.split(bytes, from: opEnd, to: lineEnd, into: &fields), count == 1 || count == 2
            else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            var max: Int?
            if count == 2 {
                guard let value = ControlLine.parseCount(bytes, fields[1]) else {
                    throw NATSProtocolError(.invalidByteCount, bytes: line)
                }
                max = value
            }
            return .op(.unsub(sid: ControlLine.string(bytes, fields[0]), max: max), consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "PING") {
            guard ControlLine.isBlankOnly(bytes, from: opEnd, to: lineEnd) else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            return .op(.ping, consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "PONG") {
            guard ControlLine.isBlankOnly(bytes, from: opEnd, to: lineEnd) else { throw NATSProtocolError(.invalidArguments, bytes: line) }
            return .op(.pong, consumed: consumedLine)
        }
        if ControlLine.matches(bytes, opRange, "CONNECT") {
            let json = UnsafeRawBufferPointer(rebasing: bytes[opEnd..<lineEnd])
            do {
                return .op(.connect(try JSONDecoder().decode(ConnectInfo.self, from: Data(json))), consumed: consumedLine)
            } catch {
                throw NATSProtocolError(.invalidJSON(reason: "CONNECT: \(error)"), bytes: line)
            }
        }
        throw NATSProtocolError(.unknownOperation, bytes: line)
    }
}
