import NexWorkloads
import NATSWire
import NexAgentBus
import NIOCore

/// A function's host-service calls, as an agent makes them: requests to
/// `hostint.<agent>.rpc.<ns>.<workload>.<service>.<method>` on the agent bus, the reply coded in
/// `x-nex-hs-code` / `x-nex-hs-msg`.
public struct AgentHostServices: HostServiceCaller {
    let client: NATSClient
    let prefix: String
    let timeout: Duration

    public init(client: NATSClient, agentID: String, namespace: String, workloadName: String,
                timeout: Duration = .seconds(5)) {
        self.client = client
        self.prefix = "\(AgentBusSubject.toHost(agentID, AgentVerb.rpc)).\(namespace).\(workloadName)."
        self.timeout = timeout
    }

    public func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws
        -> HostServiceReply
    {
        guard Self.isToken(service), Self.isToken(method) else {
            return HostServiceReply(code: 400, message: "invalid host service or method name '\(service).\(method)'")
        }
        var requestHeaders: NATSHeaders?
        if !headers.isEmpty {
            var built = NATSHeaders()
            // The runtimes put the invocation's own `traceparent` under this exact name; any
            // other spelling came from the function and is dropped, so it cannot pick a trace.
            for (name, value) in headers where name == "traceparent" || name.lowercased() != "traceparent" {
                built[name] = value
            }
            requestHeaders = built
        }
        let reply: NATSMessage
        do {
            reply = try await client.request(ByteBuffer(bytes: body), to: prefix + service + "." + method,
                                             headers: requestHeaders, timeout: timeout)
        } catch NATSError.Code.noResponders {
            return HostServiceReply(code: 503, message: "the node serves no host services")
        }
        return HostServiceReply(reply)
    }

    /// One subject token: no dots, wildcards or blanks.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 > 32 && $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: ">") && $0 < 127 }
    }
}
