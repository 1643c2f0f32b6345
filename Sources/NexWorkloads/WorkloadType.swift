/// The kinds of workload a node can run.
public enum WorkloadType: String, Sendable, Codable, CaseIterable {
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
