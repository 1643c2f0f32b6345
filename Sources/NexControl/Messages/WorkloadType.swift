/// The kinds of workload a node can run.
///
/// Encoded as its name (`native`, `wasm`, `javascript`); decoding also accepts Nex's `v8`
/// for ``javascript`` and any letter case.
public enum WorkloadType: String, Sendable, CaseIterable {
    /// A long-running Linux executable (a service).
    case native
    /// A WebAssembly function (WASI preview 1).
    case wasm
    /// A JavaScript function; Nex's name `v8` is accepted as an alias.
    case javascript

    /// Parses a workload type name, accepting Nex's `v8` for ``javascript``. Case-insensitive.
    public init?(name: String) {
        switch name.lowercased() {
        case "native": self = .native
        case "wasm": self = .wasm
        case "javascript", "v8": self = .javascript
        default: return nil
        }
    }

    /// Functions run per message on trigger subjects; services run until stopped.
    public var isFunction: Bool { self != .native }
}

extension WorkloadType: Codable {
    /// Decodes a type name with ``init(name:)``; an unknown name is a `DecodingError` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let type = WorkloadType(name: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown workload type '\(name)' (expected native, wasm or javascript)")
        }
        self = type
    }

    /// Encodes the type as its name (`native`, `wasm`, `javascript`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
