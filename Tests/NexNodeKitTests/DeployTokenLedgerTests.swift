import Foundation
import NATSTestSupport
import Testing
@testable import NexNodeKit
import NexWorkloads

@Suite struct DeployTokenLedgerTests {
    @Test func tokensAreRememberedAcrossReloadsUntilTheyExpire() throws {
        let state = try TemporaryDirectory(prefix: "ledger-test-")
        let now = Date()
        var ledger = try DeployTokenLedger(stateDirectory: state.path, now: now)
        #expect(ledger.count == 0 && !ledger.contains("A"))
        try ledger.record("A", expires: Int64(now.timeIntervalSince1970) + 60, now: now)
        try ledger.record("B", expires: nil, now: now)
        #expect(ledger.contains("A") && ledger.contains("B"))

        let attributes = try FileManager.default.attributesOfItem(atPath: ledger.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let reloaded = try DeployTokenLedger(stateDirectory: state.path, now: now)
        #expect(reloaded.contains("A") && reloaded.contains("B") && reloaded.count == 2)
        // Once A has expired it is forgotten; B has no expiry and stays.
        let later = try DeployTokenLedger(stateDirectory: state.path, now: now.addingTimeInterval(61))
        #expect(!later.contains("A") && later.contains("B"))
    }

    @Test func aCorruptLedgerStopsTheStartWithItsPathNamed() throws {
        let state = try TemporaryDirectory(prefix: "ledger-test-")
        let path = try state.write("{not json", to: "deploy-tokens.json")
        #expect(throws: NodeStartError.self) { try DeployTokenLedger(stateDirectory: state.path) }
        do {
            _ = try DeployTokenLedger(stateDirectory: state.path)
        } catch {
            #expect("\(error)".contains(path), "\(error)")
        }
    }
}
