import NIOCore

/// NATS message headers (ADR-4): an optional status line, then `Name: value` fields.
///
/// Field names keep their case and may repeat, in the order they were added or received.
/// Lookups by name ignore case.
public struct NATSHeaders: Sendable, Hashable, Sequence {
    /// One `Name: value` header field.
    public struct Field: Sendable, Hashable {
        /// The field name, as sent.
        public var name: String
        /// The field value.
        public var value: String

        /// A `name: value` field.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The 3-digit status from the `NATS/1.0 <status>` line (503 no responders, 404, 408, 409, 100...).
    public var status: Int?
    /// The text after the status code on the version line, if any.
    public var statusDescription: String?
    /// The fields, in order, names as sent.
    public private(set) var fields: [Field] = []

    /// Empty headers.
    public init() {}

    /// Headers with a status line, as servers send (`NATS/1.0 503`).
    public init(status: Int?, statusDescription: String? = nil) {
        self.status = status
        self.statusDescription = statusDescription
    }


    /// Headers with these fields, in order; repeated names are kept.
    public init(_ pairs: KeyValuePairs<String, String>) {
        for (name, value) in pairs { append(name, value) }
    }

    /// Adds a field, keeping any earlier fields with the same name.
    public mutating func append(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every field named `name` (ignoring case) with one field, or removes them when `value` is nil.
    public subscript(name: String) -> String? {
        get { fields.first { $0.name.caseInsensitiveEquals(name) }?.value }
        set {
            fields.removeAll { $0.name.caseInsensitiveEquals(name) }
            if let newValue { append(name, newValue) }
        }
    }

    /// Every value of the fields named `name` (ignoring case), in order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// True when there is neither a status nor a field.
    public var isEmpty: Bool { fields.isEmpty && status == nil }

    /// Iterates over the fields, in order.
    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    /// Checks that names and values can travel on the wire: names are non-empty printable
    /// ASCII without `:` or blanks, values hold no CR or LF.
    public func validate() throws(NATSError) {
        for field in fields {
            guard !field.name.isEmpty,
                  field.name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") })
            else { throw NATSError.invalidHeader(name: field.name, reason: "a name must be printable ASCII without ':' or blanks") }
            guard !field.value.utf8.contains(where: { $0 == ControlLine.cr || $0 == ControlLine.lf }) else {
                throw NATSError.invalidHeader(name: field.name, reason: "a value must not contain CR or LF")
            }
        }
    }
}

extension NATSHeaders: ExpressibleByDictionaryLiteral {
    /// Headers from a literal, in order: `["Trace-Id": "42", "Tenant": "acme"]`.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(status: nil)
        for (name, value) in elements { append(name, value) }
    }
}

extension NATSHeaders {
    static let versionLine: StaticString = "NATS/1.0"

    /// The encoded size: version line, fields, and the blank line that ends the block.
    package var encodedSize: Int {
        var size = 8 + 2 + 2
        if let status {
            size += 1 + String(status).utf8.count
            // write(into:) writes the description only after a status.
            if let statusDescription { size += 1 + statusDescription.utf8.count }
        }
        for field in fields { size += field.name.utf8.count + 2 + field.value.utf8.count + 2 }
        return size
    }

    /// Parses a complete header block, including its final blank line.
    init(parsing bytes: UnsafeRawBufferPointer) throws(NATSProtocolError) {
        func fail(_ reason: String) -> NATSProtocolError {
            NATSProtocolError(.invalidHeaders(reason: reason), bytes: bytes)
        }
        guard bytes.count >= 12, bytes[bytes.count - 4] == ControlLine.cr, bytes[bytes.count - 3] == ControlLine.lf,
              bytes[bytes.count - 2] == ControlLine.cr, bytes[bytes.count - 1] == ControlLine.lf
        else { throw fail("the block must end with an empty line") }
        guard let firstEnd = ControlLine.lineFeedIndex(in: bytes, limit: bytes.count), firstEnd > 0,
              bytes[firstEnd - 1] == ControlLine.cr
        else { throw fail("missing version line") }
        guard firstEnd - 1 >= 8, ControlLine.matches(bytes, 0..<8, NATSHeaders.versionLine) else {
            throw fail("the version line must start with NATS/1.0")
        }
        self.init(status: nil)
        // Status line: "NATS/1.0", "NATS/1.0 503", "NATS/1.0 408 Request Timeout".
        var i = 8
        let lineEnd = firstEnd - 1
        if i < lineEnd {
            guard ControlLine.isBlank(bytes[i]) else { throw fail("malformed version line") }
            while i < lineEnd, ControlLine.isBlank(bytes[i]) { i += 1 }
            let codeStart = i
            while i < lineEnd, !ControlLine.isBlank(bytes[i]) { i += 1 }
            if codeStart < i {
                guard i - codeStart == 3, let code = ControlLine.parseCount(bytes, codeStart..<i) else {
                    throw fail("the status must be 3 digits")
                }
                status = code
            }
            while i < lineEnd, ControlLine.isBlank(bytes[i]) { i += 1 }
            if i < lineEnd {
                statusDescription = try Self.text(bytes, i..<lineEnd, fail)
            }
        }
        // Fields until the final empty line.
        var lineStart = firstEnd + 1
        let blockEnd = bytes.count - 2
        while lineStart < blockEnd {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<bytes.count])
            guard let lf = ControlLine.lineFeedIndex(in: rest, limit: rest.count), lf > 0,
                  rest[lf - 1] == ControlLine.cr
            else { throw fail("a field line must end with CRLF") }
            let end = lineStart + lf - 1
            guard let colon = bytes[lineStart..<end].firstIndex(of: UInt8(ascii: ":")), colon > lineStart else {
                throw fail("a field line must be 'Name: value'")
            }
            let name = try Self.text(bytes, lineStart..<colon, fail)
            var valueStart = colon + 1
            while valueStart < end, ControlLine.isBlank(bytes[valueStart]) { valueStart += 1 }
            var valueEnd = end
            while valueEnd > valueStart, ControlLine.isBlank(bytes[valueEnd - 1]) { valueEnd -= 1 }
            append(name, try Self.text(bytes, valueStart..<valueEnd, fail))
            lineStart = end + 2
        }
    }

    private static func text(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ fail: (String) -> NATSProtocolError
    ) throws(NATSProtocolError) -> String {
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
            throw fail("invalid UTF-8")
        }
        return text
    }

    /// Writes the header block (version line, fields, blank line).
    func write(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(Self.versionLine)
        if let status {
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeDecimal(status)
            if let statusDescription {
                buffer.writeInteger(UInt8(ascii: " "))
                buffer.writeString(statusDescription)
            }
        }
        buffer.writeStaticString("\r\n")
        for field in fields {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
