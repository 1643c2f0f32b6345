import Foundation
import NATSTestSupport
import Testing
@testable import NexNodeKit

@Suite struct SandboxIdentityTests {
    @Test func subidFilesAreReadByNameOrNumberAndBadLinesAreSkipped() {
        let text = """
            alice:100000:65536
            nex:notanumber:65536
            nex:200000:0
            4242:300000:65536
            nex:400000:65536
            """
        #expect(SubordinateIDRange.parse(text, user: "nex", uid: 999) == SubordinateIDRange(start: 400_000, count: 65_536))
        #expect(SubordinateIDRange.parse(text, user: "bob", uid: 4242) == SubordinateIDRange(start: 300_000, count: 65_536))
        #expect(SubordinateIDRange.parse(text, user: "carol", uid: 7) == nil)
        #expect(SubordinateIDRange.parse("nex:4294967295:2", user: "nex", uid: 1) == nil, "past the last uid")
    }

    @Test func initGivesAFreeRangeOnceAndKeepsExistingOnes() throws {
        let directory = try TemporaryDirectory(prefix: "subid-")
        let files = (uid: directory.appending("subuid"), gid: directory.appending("subgid"))
        try "alice:100000:65536\nbob:196608:65536".write(toFile: files.uid, atomically: true, encoding: .utf8)
        try "alice:100000:65536\n".write(toFile: files.gid, atomically: true, encoding: .utf8)
        let first = try SubordinateIDRange.ensure(user: "nex", files: files)
        // Above every range given out (and above the root node's default), the same in both files.
        #expect(first.uids == SubordinateIDRange(start: 262_144, count: 65_536))
        #expect(first.gids == first.uids)
        let again = try SubordinateIDRange.ensure(user: "nex", files: files)
        #expect(again.uids == first.uids && again.gids == first.gids)
        let uidText = try String(contentsOfFile: files.uid, encoding: .utf8)
        #expect(uidText == "alice:100000:65536\nbob:196608:65536\nnex:262144:65536\n", "\(uidText)")
        #expect(throws: SubordinateIDError.self) { try SubordinateIDRange.ensure(user: "a:b", files: files) }
    }

    /// Two nodes of one user share a range (the test suite runs many): they never hand out
    /// the same id, and an id comes back when released.
    @Test func twoNodesNeverHandOutTheSameID() throws {
        let start = UInt32.random(in: 3_000_000...4_000_000_000)
        let range = SubordinateIDRange(start: start, count: 3)
        let locks = try TemporaryDirectory(prefix: "sandbox-ids-")
        chmod(locks.path, 0o700)
        let one = try SandboxIdentities(uids: range, gids: range, lockDirectory: locks.path)
        let two = try SandboxIdentities(uids: range, gids: range, lockDirectory: locks.path)
        let a = try #require(one.acquire()), b = try #require(two.acquire()), c = try #require(one.acquire())
        #expect(Set([a.uid, b.uid, c.uid]).count == 3)
        #expect([a, b, c].allSatisfy { range.contains($0.uid) && $0.gid == $0.uid })
        #expect(two.acquire() == nil, "the range is used up")
        two.release(b)
        #expect(one.acquire() == b)
    }

    /// The lock directory must be the node user's own and closed to others: one planted by
    /// someone else (to hold every id, or to read the locks) is refused.
    @Test func aLockDirectoryThatIsNotPrivateIsRefused() throws {
        let range = SubordinateIDRange(start: 5_000_000, count: 2)
        let open = try TemporaryDirectory(prefix: "sandbox-ids-")
        chmod(open.path, 0o777)
        #expect(throws: SandboxIDError.self) { try SandboxIdentities(uids: range, gids: range, lockDirectory: open.path) }
        let parent = try TemporaryDirectory(prefix: "sandbox-ids-")
        let link = parent.appending("link")
        symlink(open.path, link)
        #expect(throws: SandboxIDError.self) { try SandboxIdentities(uids: range, gids: range, lockDirectory: link) }
    }

    @Test func aRootNodeAvoidsTheRangesUsersWereGiven() throws {
        let directory = try TemporaryDirectory(prefix: "subid-")
        let files = (uid: directory.appending("subuid"), gid: directory.appending("subgid"))
        try "".write(toFile: files.uid, atomically: true, encoding: .utf8)
        try "".write(toFile: files.gid, atomically: true, encoding: .utf8)
        #expect(SubordinateIDRange.forRoot(files: files) == .rootDefault)
        try "alice:100000:65536\n".write(toFile: files.uid, atomically: true, encoding: .utf8)
        let moved = SubordinateIDRange.forRoot(files: files)
        #expect(moved.start >= 165_536 && moved.count == 65_536, "\(moved)")
    }
}
