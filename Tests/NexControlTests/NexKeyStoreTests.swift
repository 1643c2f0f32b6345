import Foundation
import NATSTestSupport
import NATSWire
import Testing
@testable import NexControl

@Suite struct NexKeyStoreTests {
    @Test func defaultDirectoryHonoursNexHome() {
        #expect(NexKeyStore.defaultDirectory(environment: ["NEX_HOME": "/srv/nex", "HOME": "/home/a"]) == "/srv/nex")
        #expect(NexKeyStore.defaultDirectory(environment: ["NEX_HOME": "", "HOME": "/home/a/"]) == "/home/a/.nex")
        #expect(NexKeyStore.defaultDirectory(environment: ["HOME": "/home/a"]) == "/home/a/.nex")
    }

    @Test func keysAreCreatedOnFirstUseWithPrivateModes() throws {
        let root = try TemporaryDirectory()
        let store = NexKeyStore(directory: root.appending("home/.nex"))
        let issuer = try store.issuer()
        #expect(issuer.type == .account)
        #expect(try mode(store.directory) == 0o700)
        #expect(try mode(store.issuerPath) == 0o600)
        #expect(try store.issuer().publicKey == issuer.publicKey)

        let publisher = try store.publisher()
        #expect(publisher.publicKey.hasPrefix("X"))
        #expect(try mode(store.publisherPath) == 0o600)
        #expect(try store.publisher().publicKey == publisher.publicKey)
        let text = try String(contentsOfFile: store.publisherPath, encoding: .utf8)
        #expect(text == publisher.seed + "\n")
        // Only the two key files: no temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted() == ["issuer.nk", "publisher.xk"])
    }

    @Test func existingKeysAreRead() throws {
        let root = try TemporaryDirectory()
        let seed = try NKeyPair.generate(.account)
        _ = try root.write("  \(seed.seed)\n\n", to: "issuer.nk")
        #expect(try NexKeyStore(directory: root.path).issuer().publicKey == seed.publicKey)
        _ = try root.write("not a seed", to: "publisher.xk")
        #expect(throws: NexKeyStoreError.self) { try NexKeyStore(directory: root.path).publisher() }
        // An nkey seed is not a curve seed.
        #expect(throws: NexKeyStoreError.self) { try NexKeyStore.readXKey(root.appending("issuer.nk")) }
        #expect(throws: NexKeyStoreError.unreadable(path: root.appending("none"), reason: "no such file")) {
            try NexKeyStore.readNKey(root.appending("none"))
        }
    }

    @Test func writeSeedNeverOverwrites() throws {
        let root = try TemporaryDirectory()
        let path = root.appending("seed")
        try NexKeyStore.writeSeed("SAFIRST", to: path)
        #expect(try mode(path) == 0o600)
        #expect(throws: NexKeyStoreError.fileExists(path: path)) { try NexKeyStore.writeSeed("SASECOND", to: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "SAFIRST\n")
        #expect(throws: NexKeyStoreError.self) { try NexKeyStore.writeSeed("S", to: root.appending("no/such/dir/seed")) }
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}
