/// The kinds of workload a node can run.
///
/// Encoded as its name (`native`, `wasm`, `javascript`, `v8`), decoded in any letter case.
public enum WorkloadType: String, Sendable, CaseIterable {
    /// A long-running Linux executable (a service).
    case native
    /// A WebAssembly function (WASI preview 1).
    case wasm
    /// A JavaScript function whose host services return promises.
    case javascript
    /// A JavaScript function with Nex 0.2's semantics: host services answer synchronously
    /// (`hostServices.kv.get(key)` returns the bytes), so 0.2's `v8` functions run unchanged.
    case v8

    /// Parses a workload type name. Case-insensitive.
    public init?(name: String) {
        switch name.lowercased() {
        case "native": self = .native
        case "wasm": self = .wasm
        case "javascript": self = .javascript
        case "v8": self = .v8
        default: return nil
        }
    }

    /// Functions run per message on trigger subjects; services run until stopped.
    public var isFunction: Bool { self != .native }

    /// Both JavaScript types (``javascript`` and ``v8``) run on the same engine.
    public var isJavaScript: Bool { self == .javascript || self == .v8 }
}

extension WorkloadType: Codable {
    /// Decodes a type name with ``init(name:)``; an unknown name is a `DecodingError` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let type = WorkloadType(name: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown workload type '\(name)' (expected native, wasm, javascript or v8)")
        }
        self = type
    }

    /// Encodes the type as its name (`native`, `wasm`, `javascript`, `v8`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
