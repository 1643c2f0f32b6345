import NexWorkloads
import NATSWire

/// Checks a function's trigger subjects at deploy.
public enum TriggerSubjects {
    /// Always refused, whatever the configuration: the system, JetStream (and its KV, object
    /// store and consumer subjects), services and MQTT internals, Nex's own API, and reply
    /// inboxes (a trigger there would read other clients' replies).
    public static let alwaysDenied = ["$SYS.>", "$JS.>", "$NEX.>", "$KV.>", "$O.>", "$JSC.>", "$SRV.>", "$MQTT.>",
                                      "_INBOX.>", "_R_.>"]

    /// Throws a message naming the first subject that is invalid or collides with `denied`
    /// (besides ``alwaysDenied``).
    public static func check(_ subjects: [String], denied: [String]) throws(TriggerSubjectError) {
        guard !subjects.isEmpty else { throw .none }
        for subject in subjects {
            do {
                try NATSSubject.validateSubscribe(subject)
            } catch {
                throw .invalid(subject, reason: "\(error)")
            }
            for deny in alwaysDenied + denied where collide(subject, deny) {
                throw .denied(subject, by: deny)
            }
        }
    }

    /// Whether some subject matches both patterns (`*` one token, `>` one or more at the end).
    public static func collide(_ a: String, _ b: String) -> Bool {
        let left = a.split(separator: ".", omittingEmptySubsequences: false)
        let right = b.split(separator: ".", omittingEmptySubsequences: false)
        var index = 0
        while index < left.count && index < right.count {
            let x = left[index], y = right[index]
            if x == ">" || y == ">" { return true }
            if x != "*" && y != "*" && x != y { return false }
            index += 1
        }
        return left.count == right.count
    }
}

/// A trigger subject the node will not subscribe to.
public enum TriggerSubjectError: Error, Sendable, Equatable, CustomStringConvertible {
    case none
    case invalid(String, reason: String)
    case denied(String, by: String)

    public var description: String {
        switch self {
        case .none: "a function needs at least one trigger subject (trigger_subjects)"
        case .invalid(let subject, let reason): "trigger subject '\(subject)' is not valid: \(reason)"
        case .denied(let subject, let deny): "trigger subject '\(subject)' is not allowed on this node: it overlaps '\(deny)'"
        }
    }
}
