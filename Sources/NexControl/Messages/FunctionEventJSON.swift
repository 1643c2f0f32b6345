import FoundationEssentials
import Synchronization

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
        private var json = JSONText(capacity: 384)
        private let namespace: String

        init(source: String, type: NexEventType, namespace: String, time: Date) {
            self.namespace = namespace
            raw(#"{"specversion":"1.0""#)
            field("id", Self.randomUUID())
            field("source", source)
            field("type", type.rawValue)
            field("time", NexEventTime.format(time))
            raw(#","datacontenttype":"application/json","data":{"#)
        }

        mutating func raw(_ text: String) { json.raw(text) }

        /// A version 4 UUID in lowercase, as `UUID().uuidString.lowercased()` writes one, made
        /// without a system call: event ids must be unique, not secret, and the node writes one
        /// per invocation. Each half is a bijective mix (SplitMix64) of a per-process random seed
        /// plus a counter, so ids repeat (within or across processes) about as rarely as random
        /// UUIDs do.
        static func randomUUID() -> String {
            let count = EventIDSource.counter.add(1, ordering: .relaxed).newValue
            let high = EventIDSource.mix(EventIDSource.seeds.0 &+ count)
            let low = EventIDSource.mix(EventIDSource.seeds.1 &+ count)
            var bytes = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
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
            if !first { json.raw(",") }
            string(name)
            json.raw(":")
            string(value)
        }

        private mutating func string(_ value: String) { json.string(value) }

        consuming func finish() -> [UInt8] {
            json.raw("}")
            field("namespace", namespace)
            json.raw("}")
            return json.bytes
        }
    }
}

/// Where ``FunctionEventJSON`` event ids come from.
private enum EventIDSource {
    static let counter = Atomic<UInt64>(0)
    static let seeds: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// SplitMix64's finaliser: a bijection on 64 bits that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// JSON text written by hand: for the messages a node sends per invocation or per log line,
/// where `JSONEncoder` would cost more than the rest of the work.
package struct JSONText {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// Appends `text` as it is (punctuation, numbers, constant keys).
    package mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    /// Appends a JSON string (RFC 8259): quote, backslash and control characters escaped; other
    /// characters as their UTF-8 bytes.
    package mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Names and subjects rarely need escaping: copy them whole when they do not.
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0..<0x20:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]])
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hex = Array("0123456789abcdef".utf8)
}

extension LogRecord {
    /// The record as JSON (`{"text":…,"level":…,"id":…}`), written without `JSONEncoder`: the
    /// node sends one per line of output.
    package var json: [UInt8] {
        var json = JSONText(capacity: text.utf8.count + id.utf8.count + 40)
        json.raw(#"{"text":"#)
        json.string(text)
        json.raw(#","level":"#)
        json.raw(String(level))
        json.raw(#","id":"#)
        json.string(id)
        json.raw("}")
        return json.bytes
    }
}
