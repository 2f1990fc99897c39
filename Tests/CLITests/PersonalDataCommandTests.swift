import Foundation
import Testing
import EventLog
import Projections

/// `migrate` (a log from before encryption into the sealed format), `serve` refusing such a
/// log, and what `replay` shows of sealed and erased fields.
@Suite struct PersonalDataCommandTests {
    typealias F = CLIFixture

    /// Every record payload of a log, concatenated (what `lz4 -dc` of its segments would show).
    static func rawPayloads(_ logDir: String) throws -> [UInt8] {
        var all: [UInt8] = []
        let cursor = LogCursor(directory: logDir, from: 1)
        _ = try cursor.poll { _, payload in
            all.append(contentsOf: payload)
            return true
        }
        return all
    }

    static func contains(_ haystack: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// The fixture's story migrated into `<tmp>/sealed`.
    static func migrated() async throws -> (fixture: CLIFixture, dir: String) {
        let f = try await F.make()
        let dir = f.dir.path + "/sealed"
        let result = try CLI.run(["migrate", "--from", f.dataDir, "--to", dir])
        #expect(result.status == 0, "\(result.stderr)")
        return (f, dir)
    }

    @Test func migrateSealsEveryNameHashAndTextAndKeepsSeqsTimesAndViews() async throws {
        let (f, dir) = try await Self.migrated()
        defer { withExtendedLifetime(f) {} }
        let raw = try Self.rawPayloads(dir + "/log")
        for secret in ["hello bob", "hey carol", "lorem ipsum", "alice", "carol", F.passwordHash] {
            #expect(Self.contains(try Self.rawPayloads(f.logDir), secret), "the old log holds \(secret) in clear")
            #expect(!Self.contains(raw, secret), "the new log holds no \(secret)")
        }
        #expect(try CLI.run(["verify", "--data", dir]).status == 0)
        let old = try CLI.run(["rebuild", "--data", f.dataDir]).lines
        let new = try CLI.run(["rebuild", "--data", dir]).lines
        #expect(old.count == new.count && old.count > 5)
        for (a, b) in zip(old, new) where !a.hasPrefix("users ") { #expect(a == b, "same position, time and views") }
        let opened = try CLI.objects(try CLI.run(["replay", "--data", dir, "--include-secrets"]).lines)
        #expect(opened.count == f.events.count)
        #expect(opened[8]["text"] as? String == "hello bob" && opened[8]["time"] as? String == formatTimestamp(F.timestamp(ofSeq: 9)))
        #expect(opened[1]["username"] as? String == "Bob" && opened[1]["password_hash"] as? String == F.passwordHash)
        // Not twice, and never into a directory that holds something.
        let again = try CLI.run(["migrate", "--from", dir, "--to", f.dir.path + "/twice"])
        #expect(again.status == 2 && again.stderr.contains("encrypted format already"))
        #expect(try CLI.run(["migrate", "--from", f.dataDir, "--to", dir]).status == 2)
    }

    @Test func serveRefusesALogFromBeforeEncryptionAndNamesTheMigration() async throws {
        let f = try await F.make()
        let result = try CLI.run(["serve", "--data", f.dataDir, "--port", "0"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("chat-es migrate --from \(f.dataDir)"), "\(result.stderr)")
    }

    @Test func replayShowsSealedAndErasedFieldsAsNullAndOpensTheRestWithTheMasterKey() async throws {
        let (fixture, dir) = try await Self.migrated()
        defer { withExtendedLifetime(fixture) {} }  // its temporary directory holds `dir`
        // carol deletes her account: the erasure event, then her key is destroyed.
        let log = try EventLog.open(directory: dir + "/log")
        try await log.append(Event.userErased(UserErased(userId: F.carol)).record(timestamp: F.timestamp(ofSeq: 1_000)))
        await log.close()
        let master = try #require(try MasterKey.load(dataDirectory: dir, environment: [:], create: false))
        try KeyStore.open(dataDirectory: dir, master: master).destroy([F.carol])

        let sealed = try CLI.objects(try CLI.run(["replay", "--data", dir, "--type", "MessageSent"]).lines)
        let fromCarol = sealed.filter { $0["sender_id"] as? Int == Int(F.carol) }
        let fromAlice = sealed.filter { $0["sender_id"] as? Int == Int(F.alice) }
        #expect(!fromCarol.isEmpty && fromCarol.allSatisfy { $0["text"] is NSNull && $0["erased"] as? Bool == true })
        #expect(!fromAlice.isEmpty && fromAlice.allSatisfy { $0["text"] is NSNull && $0["erased"] as? Bool == false && $0["sealed"] as? Bool == true })

        let opened = try CLI.objects(try CLI.run(["replay", "--data", dir, "--type", "MessageSent", "--include-secrets"]).lines)
        #expect(opened.filter { $0["sender_id"] as? Int == Int(F.alice) }.allSatisfy { ($0["text"] as? String)?.isEmpty == false })
        #expect(opened.filter { $0["sender_id"] as? Int == Int(F.carol) }.allSatisfy { $0["text"] is NSNull && $0["erased"] as? Bool == true })

        let byName = try CLI.run(["replay", "--data", dir, "--user", "CAROL", "--type", "UserErased,UserRegistered"])
        #expect(try CLI.objects(byName.lines).map { $0["type"] as? String } == ["UserRegistered", "UserErased"])
        let table = try CLI.run(["replay", "--data", dir, "--format", "table", "--type", "UserRegistered", "--include-secrets"])
        #expect(table.stdout.contains("username=\"alice\"") && table.stdout.contains("username=<erased>"))
        #expect(try CLI.run(["verify", "--data", dir]).status == 0, "erasure leaves the chain intact")
        #expect(try CLI.run(["stats", "--data", dir]).stdout.contains("UserErased"))

        try FileManager.default.removeItem(atPath: dir + "/master-key")
        let noKey = try CLI.run(["replay", "--data", dir, "--include-secrets"])
        #expect(noKey.status == 2 && noKey.stderr.contains("CHAT_ES_MASTER_KEY"))
    }
}
