#if canImport(Glibc)
import Glibc
#endif

extension Sandbox {
    /// Top-level system directories a program needs to run, shown read-only (those the host
    /// has; `/bin`, `/lib`... of a merged-/usr system are bound from where they point).
    public static let systemDirectories = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]

    /// What of `/etc` a workload may read: name service, TLS trust, time zone and linker
    /// configuration. Not all of `/etc`: the node's own configuration lives there.
    public static let systemConfiguration = [
        "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf",
        "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/localtime", "/etc/timezone", "/etc/ld.so.cache",
        "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/alternatives",
        "/etc/mime.types", "/etc/os-release",
    ]

    /// Read-only binds of ``systemDirectories`` and ``systemConfiguration`` that exist on
    /// this host, each from its resolved path.
    public static func systemBinds() -> [Bind] {
        (systemDirectories + systemConfiguration).compactMap { path in
            resolve(path).map { Bind(source: $0, target: path) }
        }
    }

    /// `path` with every symlink resolved, or nil when it does not exist.
    public static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
