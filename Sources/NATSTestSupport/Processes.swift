import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether `pid` is a live process: it exists and is neither a zombie nor dead (Linux
/// `/proc/<pid>/stat`), so a child that exited but was not reaped yet counts as gone.
public func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// Deterministic pseudo-random bytes (a 64-bit LCG): the same `seed` gives the same bytes.
public func pseudoRandomBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1
    var bytes = [UInt8](repeating: 0, count: count)
    for index in bytes.indices {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return bytes
}
