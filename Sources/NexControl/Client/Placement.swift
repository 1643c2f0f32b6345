/// Choosing nodes for a workload's copies from the bids of an auction (`$NEX.AUCTION`).
///
/// Each copy goes to a node of its own, the nodes running the fewest workloads first; nodes
/// running as many are taken in random order, so that clients placing at once spread out.
public enum Placement {
    /// `replicas` distinct bidders (a node that answered twice counts once), the fewest
    /// workloads first.
    ///
    /// - Throws: ``WorkloadSubmissionError/noNodeAvailable(reason:)`` when fewer nodes bid, naming
    ///   how many did and `asked` (what the auction asked for).
    public static func choose(
        _ replicas: Int, from bids: [PingResponse], asked: String
    ) throws(WorkloadSubmissionError) -> [PingResponse] {
        var seen = Set<String>()
        let distinct = bids.shuffled().filter { seen.insert($0.nodeID).inserted }
        guard replicas > 0, distinct.count >= replicas else {
            let bidders = distinct.isEmpty ? "no node bid" : "only \(distinct.count) node\(distinct.count == 1 ? "" : "s") bid"
            throw .noNodeAvailable(reason: "\(bidders) for \(asked), and \(replicas) \(replicas == 1 ? "is" : "are") needed")
        }
        // Sorting is not stable in general: sort by workloads and the shuffled position.
        let ranked = distinct.enumerated().sorted {
            ($0.element.runningMachines, $0.offset) < ($1.element.runningMachines, $1.offset)
        }
        return ranked.prefix(replicas).map(\.element)
    }
}

extension NexClient {
    /// Holds an auction for `request` (bids collected for `window`, or until `expecting` are in)
    /// and chooses `replicas` distinct nodes, the fewest workloads first
    /// (``Placement/choose(_:from:asked:)``).
    public func place(_ request: AuctionRequest, replicas: Int = 1, window: Duration = .seconds(1),
                      expecting: Int? = nil) async throws -> [PingResponse]
    {
        let bids = try await auction(request, window: window, expecting: expecting)
        return try Placement.choose(replicas, from: bids, asked: request.summary)
    }
}

extension AuctionRequest {
    /// What the auction asks for, in words: `a wasm workload (linux/amd64, tags zone=a)`.
    public var summary: String {
        let types = (workloadTypes ?? []).joined(separator: "/")
        var wants: [String] = []
        let platform = [os, arch].compactMap { $0 }.joined(separator: "/")
        if !platform.isEmpty { wants.append(platform) }
        if let sandboxed { wants.append(sandboxed ? "sandboxed" : "not sandboxed") }
        if let tags, !tags.isEmpty {
            wants.append("tags " + tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))
        }
        return (types.isEmpty ? "a workload" : "a \(types) workload") + (wants.isEmpty ? "" : " (\(wants.joined(separator: ", ")))")
    }
}
