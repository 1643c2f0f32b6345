/// Why an agent cannot run; each case names the variable or process involved.
public enum AgentServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A variable the node must set is missing or empty.
    case missingEnvironment(name: String)
    /// A variable is set to something unusable.
    case invalidEnvironment(name: String, value: String, reason: String)
    /// The agent's parent is not the node that started it (the node is gone).
    case parentMismatch(expected: Int32, actual: Int32)

    public var description: String {
        switch self {
        case .missingEnvironment(let name): return "environment variable \(name) is not set (the node sets it when it starts nex-agent)"
        case .invalidEnvironment(let name, let value, let reason): return "environment variable \(name)='\(value)' is invalid: \(reason)"
        case .parentMismatch(let expected, let actual):
            return "the agent's parent is pid \(actual), not the node (pid \(expected)): the node is gone"
        }
    }
}
