/// `hostint.<agent>.rpc.<namespace>.<workload>.<service>.<method>`, taken apart.
struct HostServiceSubject: Sendable, Equatable {
    /// What the server subscribes to: every agent's RPC subjects.
    static let subscription = "hostint.*.rpc.>"

    var agentID: String
    var namespace: String
    var workloadName: String
    var service: String
    var method: String

    init(agentID: String, namespace: String, workloadName: String, service: String, method: String) {
        self.agentID = agentID
        self.namespace = namespace
        self.workloadName = workloadName
        self.service = service
        self.method = method
    }

    /// Parses a subject; throws a 400 naming the subject when it has another shape.
    init(parsing subject: String) throws(HostServiceFailure) {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count == 7, tokens[0] == "hostint", tokens[2] == "rpc", !tokens.contains(where: \.isEmpty) else {
            throw .badRequest(
                "malformed host services subject '\(subject)': expected hostint.<agent>.rpc.<namespace>.<workload>.<service>.<method>")
        }
        self.init(
            agentID: String(tokens[1]), namespace: String(tokens[3]), workloadName: String(tokens[4]),
            service: String(tokens[5]), method: String(tokens[6]))
    }

    var text: String { "hostint.\(agentID).rpc.\(namespace).\(workloadName).\(service).\(method)" }
}
