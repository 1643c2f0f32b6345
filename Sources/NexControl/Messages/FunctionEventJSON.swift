import FoundationEssentials

/// The per-invocation function events as JSON, written without `JSONEncoder`.
///
/// A node publishes one ``FunctionExecSucceededEvent`` or ``FunctionExecFailedEvent`` per
/// invocation; encoding it with `JSONEncoder` cost more CPU than the invocation's hops. The
/// bytes are the same document `JSONEncoder` makes of ``NexEvent`` (field for field; tests
/// decode them with it).
package enum FunctionEventJSON {
    package static func succeeded(source: String, _ data: FunctionExecSucceededEvent, time: Date = Date()) -> [UInt8] {
        var json = Writer(source: source, type: .functionExecSucceeded, namespace: data.namespace, time: time)
        json.field("workload_name", data.workloadName, first: true)
        json.field("trigger_subject", data.triggerSubject)
        json.raw(#","elapsed_nanos":"#)
        json.raw(String(data.elapsedNanos))
        json.field("namespace", data.namespace)
        return json.finish()
    }

    package static func failed(source: String, _ data: FunctionExecFailedEvent, time: Date = Date()) -> [UInt8] {
        var json = Writer(source: source, type: .functionExecFailed, namespace: data.namespace, time: time)
        json.field("workload_name", data.workloadName, first: true)
        json.field("trigger_subject", data.triggerSubject)
        json.field("namespace", data.namespace)
        json.field("error", data.error)
        return json.finish()
    }

    /// The CloudEvents envelope around a `data` object the caller writes.
    private struct Writer {
        private var bytes: [UInt8] = []
        private let namespace: String

        init(source: String, type: NexEventType, namespace: String, time: Date) {
            self.namespace = namespace
            bytes.reserveCapacity(384)
            raw(#"{"specversion":"1.0""#)
            field("id", Self.randomUUID())
            field("source", source)
            field("type", type.rawValue)
            field("time", NexEventTime.format(time))
            raw(#","datacontenttype":"application/json","data":{"#)
        }

        mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

        /// A random (version 4) UUID in lowercase, as `UUID().uuidString.lowercased()` gives,
        /// without the two string conversions.
        static func randomUUID() -> String {
            var generator = SystemRandomNumberGenerator()
            var bytes = (0..<2).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
            bytes[6] = bytes[6] & 0x0F | 0x40
            bytes[8] = bytes[8] & 0x3F | 0x80
            let hex = Array("0123456789abcdef".utf8)
            var text = [UInt8]()
            text.reserveCapacity(36)
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
                text.append(hex[Int(byte >> 4)])
                text.append(hex[Int(byte & 0x0F)])
            }
            return String(decoding: text, as: UTF8.self)
        }

        mutating func field(_ name: String, _ value: String, first: Bool = false) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            string(name)
            bytes.append(UInt8(ascii: ":"))
            string(value)
        }

        /// A JSON string (RFC 8259): quote, backslash and control characters escaped; other
        /// characters as their UTF-8 bytes.
        private mutating func string(_ value: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: Array(#"\u00"#.utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0xF)])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }

        consuming func finish() -> [UInt8] {
            bytes.append(UInt8(ascii: "}"))
            field("namespace", namespace)
            bytes.append(UInt8(ascii: "}"))
            return bytes
        }
    }
}
