import NATSWire

/// The `$NEX` control subjects (Nex 0.2 compatible), built in one place for the client, the
/// server and the node. A server subscribes with wildcards in place of a token
/// (`info(namespace: "*", node: id)`).
public enum NexSubject {
    /// The prefix every control subject starts with.
    public static let prefix = "$NEX"

    /// The node's own namespace: its events (`$NEX.events.system.*`) and log lines
    /// (`$NEX.logs.system.<node>`) go there, so no workload may be deployed into it (a tenant
    /// named `system` would read, and mix its own lines into, every node's).
    public static let systemNamespace = "system"

    /// The longest namespace a node accepts.
    public static let maxNamespaceLength = 64

    /// Checks that `namespace` is one plain subject token: 1 to 64 ASCII letters, digits, `-`
    /// and `_`. Wildcards (`*`, `>`) and anything else a subject treats specially are refused,
    /// so a tenant's namespace can never match another's.
    ///
    /// - Throws: ``NexControlError/badRequest(_:)`` naming the namespace and the rule.
    public static func validateNamespace(_ namespace: String) throws(NexControlError) {
        let valid = !namespace.isEmpty && namespace.utf8.count <= maxNamespaceLength && namespace.utf8.allSatisfy(NATSSubject.isNameByte)
        guard valid else {
            let shown = namespace.count > maxNamespaceLength ? String(namespace.prefix(maxNamespaceLength)) + "…" : namespace
            throw .badRequest(
                "invalid namespace '\(shown)': use 1 to \(maxNamespaceLength) letters, digits, '-' and '_' (no wildcards)")
        }
    }

    /// `$NEX.PING` (all nodes) or `$NEX.PING.<node>` (one node).
    public static func ping(node: String? = nil) -> String {
        node.map { "\(prefix).PING.\($0)" } ?? "\(prefix).PING"
    }

    /// `$NEX.WPING.<namespace>` (every workload of the namespace) or
    /// `$NEX.WPING.<namespace>.<workload>` (one, by id or name).
    public static func workloadPing(namespace: String, workload: String? = nil) -> String {
        "\(prefix).WPING.\(namespace)" + (workload.map { ".\($0)" } ?? "")
    }

    /// `$NEX.AUCTION`: every node that matches the request's constraints answers.
    public static let auction = "\(prefix).AUCTION"

    /// `$NEX.INFO.<namespace>.<node>`.
    public static func info(namespace: String, node: String) -> String {
        "\(prefix).INFO.\(namespace).\(node)"
    }

    /// `$NEX.DEPLOY.<namespace>.<node>`.
    public static func deploy(namespace: String, node: String) -> String {
        "\(prefix).DEPLOY.\(namespace).\(node)"
    }

    /// `$NEX.STOP.<namespace>.<node>`.
    public static func stop(namespace: String, node: String) -> String {
        "\(prefix).STOP.\(namespace).\(node)"
    }

    /// `$NEX.LAMEDUCK.<node>`.
    public static func lameDuck(node: String) -> String {
        "\(prefix).LAMEDUCK.\(node)"
    }

    /// `$NEX.events.<namespace>.<type>`; `type` nil for every type (`*`).
    public static func event(namespace: String, type: NexEventType?) -> String {
        "\(prefix).events.\(namespace).\(type?.rawValue ?? "*")"
    }

    /// `$NEX.logs.system.<node>`: the node's own log lines (`--logger nats`, as Nex 0.2).
    public static func systemLogs(node: String) -> String {
        "\(prefix).logs.\(systemNamespace).\(node)"
    }

    /// `$NEX.logs.<namespace>.<node>.<workload_name>.<workload_id>`: one token order everywhere.
    public static func logs(namespace: String, node: String, workloadName: String, workloadID: String) -> String {
        "\(prefix).logs.\(namespace).\(node).\(workloadName).\(workloadID)"
    }
}
