import Foundation
import Testing
import EventLog
import Projections

/// `chat-es rebuild` against the live state the same events build in-process.
@Suite struct RebuildCommandTests {
    typealias F = CLIFixture

    /// `name value` lines (`position 56`, `users 0123…`).
    private func digests(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    private func expectSameDigests(_ text: String, as set: ProjectionSet) {
        let printed = digests(text)
        let live = set.digest()
        for name in ProjectionSet.viewNames + ["position"] {
            #expect(printed[name] == live[name], "\(name)")
        }
    }

    @Test func digestsEqualTheLiveProjections() async throws {
        let f = try await F.make()
        let result = try CLI.run(["rebuild", "--data", f.dataDir])
        #expect(result.status == 0, "\(result.stderr)")
        expectSameDigests(result.stdout, as: f.liveState())
        #expect(digests(result.stdout)["position"] == String(f.events.count))
    }

    @Test func asOfASeqOrATimeGivesTheEarlierState() async throws {
        let f = try await F.make()
        let atSeq = try CLI.run(["rebuild", "--data", f.dataDir, "--as-of", "12"])
        #expect(atSeq.status == 0, "\(atSeq.stderr)")
        expectSameDigests(atSeq.stdout, as: f.liveState(through: 12))

        let atTime = try CLI.run(["rebuild", "--data", f.dataDir, "--as-of", formatTimestamp(F.timestamp(ofSeq: 6) + 500_000)])
        expectSameDigests(atTime.stdout, as: f.liveState(through: 6))
        #expect(f.liveState(through: 6).digest() != f.liveState().digest())
    }

    /// Who was online then: presence is evaluated at the as-of time.
    @Test func printPresenceAsOfATime() async throws {
        let f = try await F.make()
        func online(asOf seq: UInt64) throws -> [Int] {
            let result = try CLI.run(["rebuild", "--data", f.dataDir, "--as-of", formatTimestamp(F.timestamp(ofSeq: seq)), "--print", "presence"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.lines.count == 1)  // the digests went to stderr
            #expect(result.stderr.contains("presence "))
            let json = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(json["position"] as? Int == Int(seq))
            let users = try #require(json["online"] as? [[String: Any]])
            return users.compactMap { $0["id"] as? Int }.sorted()
        }
        #expect(try online(asOf: 4) == [])
        #expect(try online(asOf: 6) == [1, 2])
        #expect(try online(asOf: UInt64(f.events.count)) == [1, 3])  // bob logged out at 14
    }

    @Test func printUsersHidesPasswordHashesAndWriteSnapshot() async throws {
        let f = try await F.make()
        let result = try CLI.run(["rebuild", "--data", f.dataDir, "--print", "users", "--write-snapshot"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains(F.passwordHash))
        let json = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["count"] as? Int == 3)
        #expect(result.stderr.contains("snapshot written"))
        let log = try EventLog.open(directory: f.logDir)
        let snapshot = try #require(ProjectionSet.loadNewestSnapshot(from: f.dataDir) { try? log.chainHash(at: $0) }.set)
        await log.close()
        #expect(snapshot == f.liveState())
    }
}
