/// Why a native workload could not be started. Each case names the artifact's path.
public enum NativeRunnerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing exists at the path.
    case artifactMissing(path: String)
    /// The path is a directory, device, socket...
    case notRegularFile(path: String)
    /// The file lacks execute permission, or its file system forbids exec (`EACCES`).
    case notExecutable(path: String)
    /// The kernel does not know the file's format (`ENOEXEC`): not ELF, no `#!` line.
    case notExecutableFormat(path: String)
    /// The output pipes could not be set up.
    case outputSetupFailed(path: String, reason: String)
    /// Any other failure of the spawn: the reason names the step and errno.
    case startFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .artifactMissing(let path): return "workload artifact \(path) does not exist"
        case .notRegularFile(let path): return "workload artifact \(path) is not a regular file"
        case .notExecutable(let path): return "workload artifact \(path) is not executable (exec: permission denied)"
        case .notExecutableFormat(let path):
            return "workload artifact \(path) is not in a format the kernel can execute (exec: ENOEXEC)"
        case .outputSetupFailed(let path, let reason): return "cannot capture the output of \(path): \(reason)"
        case .startFailed(_, let reason): return reason
        }
    }
}
