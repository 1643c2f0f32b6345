/// Where a consumer starts in its stream.
public enum DeliverPolicy: Sendable, Equatable {
    /// Every message, from the first.
    case all
    /// Only the last message.
    case last
    /// Only messages stored from now on.
    case new
    /// The last message of each subject, then new ones (key-value watchers).
    case lastPerSubject
    /// From this stream sequence on.
    case byStartSequence(UInt64)

    var wireName: String {
        switch self {
        case .all: "all"
        case .last: "last"
        case .new: "new"
        case .lastPerSubject: "last_per_subject"
        case .byStartSequence: "by_start_sequence"
        }
    }

    var startSequence: UInt64? {
        if case .byStartSequence(let sequence) = self { return sequence }
        return nil
    }
}
