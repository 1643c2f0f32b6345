import NexWorkloads
import FoundationEssentials

/// Finds the `nex-agent` executable the node starts.
public enum AgentExecutable {
    /// `configured` (config `agent_path`) when given; else `nex-agent` beside the running
    /// executable (`/proc/self/exe`, so symlinks and relative starts work); else on PATH.
    public static func locate(configured: String? = nil) -> String? {
        if let configured {
            return FileManager.default.isExecutableFile(atPath: configured) ? configured : nil
        }
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let beside = String(own[..<(own.lastIndex(of: "/") ?? own.startIndex)]) + "/nex-agent"
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        }
        return ExecutableLookup.find("nex-agent")
    }
}
