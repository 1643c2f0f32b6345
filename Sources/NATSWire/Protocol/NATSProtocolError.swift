import NIOCore

/// A violation of the NATS wire protocol found while decoding bytes from a peer.
///
/// Every case carries a short, printable summary of the offending bytes so that logs
/// and errors say what arrived, without dumping megabytes or control characters.
public struct NATSProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Hashable {
        /// The first token of a control line is not an operation this side accepts.
        case unknownOperation
        /// A control line is longer than the configured maximum.
        case controlLineTooLong(limit: Int)
        /// An operation has the wrong number of arguments, or an argument is malformed.
        case invalidArguments
        /// A byte count is negative, not a number, or beyond what fits.
        case invalidByteCount
        /// A payload is larger than the maximum the connection allows.
        case payloadTooLarge(size: Int, limit: Int)
        /// The bytes after a payload are not the `CRLF` that must end it (it is longer than announced).
        case payloadNotTerminated
        /// A header block is malformed (bad version line, bad field, bad sizes, invalid UTF-8).
        case invalidHeaders(reason: String)
        /// A JSON body (`INFO`, `CONNECT`) does not decode.
        case invalidJSON(reason: String)
        /// The peer closed the stream in the middle of a frame.
        case truncatedFrame
    }

    /// What went wrong.
    public var kind: Kind
    /// A printable summary of the offending bytes (at most ~64 characters, escaped).
    public var offendingBytes: String

    /// An error of `kind`, with `offending` as the printable summary of the bytes.
    package init(_ kind: Kind, offending: String) {
        self.kind = kind
        self.offendingBytes = offending
    }

    init(_ kind: Kind, bytes: UnsafeRawBufferPointer) {
        self.init(kind, offending: NATSProtocolError.summarize(bytes))
    }

    init(_ kind: Kind, buffer: ByteBuffer) {
        self.init(kind, offending: buffer.withUnsafeReadableBytes { NATSProtocolError.summarize($0) })
    }

    /// What went wrong, with the summary of the offending bytes.
    public var description: String {
        let what: String
        switch kind {
        case .unknownOperation: what = "unknown protocol operation"
        case .controlLineTooLong(let limit): what = "control line longer than \(limit) bytes"
        case .invalidArguments: what = "malformed operation arguments"
        case .invalidByteCount: what = "invalid byte count"
        case .payloadTooLarge(let size, let limit): what = "payload of \(size) bytes exceeds the maximum of \(limit)"
        case .payloadNotTerminated: what = "payload is not followed by CRLF (longer than announced)"
        case .invalidHeaders(let reason): what = "invalid headers: \(reason)"
        case .invalidJSON(let reason): what = "invalid JSON: \(reason)"
        case .truncatedFrame: what = "stream ended in the middle of a frame"
        }
        return "NATS protocol error: \(what), near \"\(offendingBytes)\""
    }

    /// Escapes up to 64 bytes for display: printable ASCII as is, the rest as `\xNN`, `\r`, `\n`, `\t`.
    static func summarize(_ bytes: UnsafeRawBufferPointer, limit: Int = 64) -> String {
        var out = ""
        for byte in bytes.prefix(limit) {
            switch byte {
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\t"): out += "\\t"
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        if bytes.count > limit { out += "…(\(bytes.count) bytes)" }
        return out
    }
}
