/// Whether the bus reads from one connection, and why not.
///
/// NIO asks for the next read through the pipeline; the gate holds that request while any
/// reason to pause stands and releases it when the last one ends.
struct ReadGate: Sendable {
    struct Reasons: OptionSet, Sendable {
        let rawValue: UInt8
        /// The user spent its publish budget (``BusLimits/publishBytesPerSecond``).
        static let rateLimited = Reasons(rawValue: 1)
        /// A trusted connection (the node's) is not keeping up with what it is sent.
        static let trustedBackedUp = Reasons(rawValue: 2)
    }

    private(set) var reasons: Reasons = []
    private var held = false

    var isPaused: Bool { !reasons.isEmpty }

    /// NIO asks to read; true when the read should go ahead now.
    mutating func readRequested() -> Bool {
        guard isPaused else { return true }
        held = true
        return false
    }

    mutating func pause(_ reason: Reasons) {
        reasons.insert(reason)
    }

    /// Ends one reason to pause; true when a held read should be issued now.
    mutating func resume(_ reason: Reasons) -> Bool {
        reasons.remove(reason)
        guard !isPaused, held else { return false }
        held = false
        return true
    }
}
