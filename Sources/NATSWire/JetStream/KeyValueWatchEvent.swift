/// What a ``KeyValueWatcher`` delivers.
public enum KeyValueWatchEvent: Sendable, Equatable {
    /// A revision of a key: a value, a delete or a purge.
    case entry(KeyValueEntry)
    /// Every value that existed when the watch began has been delivered; what follows are live
    /// updates. Sent exactly once, right away when the bucket held nothing to deliver.
    case initialValuesDone

    /// The entry, for `.entry`.
    public var entry: KeyValueEntry? {
        if case .entry(let entry) = self { return entry }
        return nil
    }
}
