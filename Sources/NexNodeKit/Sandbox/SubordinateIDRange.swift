#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

/// A range of host ids the node hands to its sandboxes: from `/etc/subuid` and
/// `/etc/subgid` (`name:start:count`), or a default range for a node that runs as root.
public struct SubordinateIDRange: Sendable, Equatable, CustomStringConvertible {
    public var start: UInt32
    public var count: UInt32

    public init(start: UInt32, count: UInt32) {
        self.start = start
        self.count = count
    }

    /// The range a root node prefers when `/etc/subuid` gives root none: 100000–165535.
    public static let rootDefault = SubordinateIDRange(start: 100_000, count: 65_536)

    /// The range of a root node without an entry of its own: ``rootDefault`` unless a range of
    /// `/etc/subuid` or `/etc/subgid` overlaps it, else the first free one above them all.
    static func forRoot(files: (uid: String, gid: String) = ("/etc/subuid", "/etc/subgid")) -> SubordinateIDRange {
        let taken = [files.uid, files.gid].flatMap { all(in: (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "") }
        return taken.contains(where: rootDefault.overlaps)
            ? free(after: taken, floor: rootDefault.start, count: rootDefault.count) : rootDefault
    }

    public var description: String { "\(start)-\(UInt64(start) + UInt64(count) - 1)" }

    public func contains(_ id: UInt32) -> Bool { id >= start && UInt64(id) < end }

    /// One past the last id.
    var end: UInt64 { UInt64(start) + UInt64(count) }

    /// Whether the two ranges share an id.
    func overlaps(_ other: SubordinateIDRange) -> Bool { UInt64(start) < other.end && UInt64(other.start) < end }

    /// The first entry for `user` (by name or by number) in a subid file's text.
    public static func parse(_ text: String, user: String, uid: UInt32) -> SubordinateIDRange? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == user || fields[0] == "\(uid)",
                  let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0,
                  UInt64(start) + UInt64(count) <= UInt64(UInt32.max) else { continue }
            return SubordinateIDRange(start: start, count: count)
        }
        return nil
    }

    /// The entry for `user` in `file` (`/etc/subuid` or `/etc/subgid`), nil when there is none.
    public static func read(_ file: String, user: String, uid: UInt32) -> SubordinateIDRange? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        return parse(text, user: user, uid: uid)
    }

    /// Every range a subid file's text gives anyone.
    static func all(in text: String) -> [SubordinateIDRange] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { return nil }
            return SubordinateIDRange(start: start, count: count)
        }
    }

    /// A range of `count` ids that starts at `floor` or above and overlaps none of `taken`.
    static func free(after taken: [SubordinateIDRange], floor: UInt32, count: UInt32) -> SubordinateIDRange {
        var start = UInt64(floor)
        for range in taken.sorted(by: { $0.start < $1.start }) {
            if UInt64(range.start) < start + UInt64(count) && range.end > start { start = range.end }
        }
        // Round up to a multiple of the count, as useradd does.
        start = (start + UInt64(count) - 1) / UInt64(count) * UInt64(count)
        return SubordinateIDRange(start: UInt32(start), count: count)
    }
}

/// The user name of `uid` from the password database, or its number.
func userName(of uid: uid_t) -> String {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let result else { return String(uid) }
    return String(cString: result.pointee.pw_name)
}

extension SubordinateIDRange {
    /// Gives `user` a range of `count` ids in `/etc/subuid` and `/etc/subgid` where it has
    /// none (`nex-node preflight --init`; root only): the same start in both files, above
    /// every range given out and above the root node's default range. Returns the ranges.
    public static func ensure(user: String, count: UInt32 = 65_536, files: (uid: String, gid: String) = ("/etc/subuid", "/etc/subgid"))
        throws -> (uids: SubordinateIDRange, gids: SubordinateIDRange)
    {
        guard !user.isEmpty, !user.contains(":"), !user.contains("\n") else {
            throw SubordinateIDError(file: files.uid, reason: "'\(user)' is not a user name")
        }
        let uidText = (try? String(contentsOfFile: files.uid, encoding: .utf8)) ?? ""
        let gidText = (try? String(contentsOfFile: files.gid, encoding: .utf8)) ?? ""
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let uid = getpwnam_r(user, &entry, &buffer, buffer.count, &found) == 0 && found != nil ? UInt32(entry.pw_uid) : UInt32.max
        let existingUIDs = parse(uidText, user: user, uid: uid), existingGIDs = parse(gidText, user: user, uid: uid)
        let range = free(after: all(in: uidText) + all(in: gidText) + [rootDefault], floor: 200_000, count: count)
        for (file, text, existing) in [(files.uid, uidText, existingUIDs), (files.gid, gidText, existingGIDs)] where existing == nil {
            let line = "\(user):\(range.start):\(range.count)\n"
            let updated = text.isEmpty || text.hasSuffix("\n") ? text + line : text + "\n" + line
            do {
                try updated.write(toFile: file, atomically: true, encoding: .utf8)
                chmod(file, 0o644)
            } catch {
                throw SubordinateIDError(file: file, reason: "\(error)")
            }
        }
        return (existingUIDs ?? range, existingGIDs ?? range)
    }
}

/// `/etc/subuid` or `/etc/subgid` could not be updated.
public struct SubordinateIDError: Error, CustomStringConvertible {
    public var file: String
    public var reason: String
    public var description: String { "cannot add a subordinate id range to \(file): \(reason)" }
}
