import NATSWire
import NexControl

/// The keys nexctl keeps in `$NEX_HOME` (default `~/.nex`), created on first use.
enum NexHome {
    static var store: NexKeyStore { NexKeyStore(directory: NexKeyStore.defaultDirectory()) }

    /// The issuer seed in `file`, else `issuer.nk` in the store (created if absent).
    static func issuer(seedFile file: String?) throws -> NKeyPair {
        if let file { return try NexKeyStore.readNKey(file) }
        return try store.issuer()
    }

    /// The curve seed in `file`, else `publisher.xk` in the store (created if absent).
    static func sender(xkeyFile file: String?) throws -> XKeyPair {
        if let file { return try NexKeyStore.readXKey(file) }
        return try store.publisher()
    }
}
