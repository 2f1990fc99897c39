import Foundation
import PostgresTestSupport
import Testing

/// `copy` between a data directory and PostgreSQL, and the audit tools with `--postgres`: the
/// same chain and head digest on both stores, a copy that carries on after a prefix, and a
/// refusal (exit 1) to mix two logs.
@Suite(.enabled(if: PostgresTestServer.available, "needs PostgreSQL (CHAT_ES_TEST_POSTGRES or Debian's postgresql)"))
struct CopyCommandTests {
    typealias F = CLIFixture

    static func headDigest(_ result: CLI.Result) -> String? {
        result.lines.first { $0.hasPrefix("head digest:") }.map { String($0.dropFirst("head digest:".count)).trimmingCharacters(in: .whitespaces) }
    }

    @Test func theToolsNeverEditTheCacheOfARunningServer() async throws {
        let f = try await F.make()
        let url = try await PostgresTestServer.freshDatabaseAddress()
        #expect(try CLI.run(["copy", "--from", f.dataDir, "--to", url]).status == 0)
        // A server holds its directory's lock for as long as it runs.
        let cache = f.dir.path + "/served"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let fd = open(cache + "/lock", O_RDWR | O_CREAT, 0o644)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let refused = try CLI.run(["verify", "--data", cache, "--postgres", url])
        #expect(refused.status == 2 && refused.stderr.contains("another chat-es process serves"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cache + "/log"), "nothing was fetched into it")
        let copyBack = try CLI.run(["copy", "--from", url, "--to", cache])
        #expect(copyBack.status == 2, "\(copyBack.stderr)")
        close(fd)
        #expect(try CLI.run(["verify", "--data", cache, "--postgres", url]).status == 0)
    }

    @Test func aLogGoesIntoPostgresAndBackWithTheSameChain() async throws {
        let f = try await F.make()
        let url = try await PostgresTestServer.freshDatabaseAddress()
        let local = try CLI.run(["verify", "--data", f.dataDir])
        let digest = try #require(Self.headDigest(local))

        let into = try CLI.run(["copy", "--from", f.dataDir, "--to", url])
        #expect(into.status == 0, "\(into.stderr)")
        #expect(into.lines.contains("heads match"))
        #expect(into.lines.contains("target head digest: " + digest))
        let again = try CLI.run(["copy", "--from", f.dataDir, "--to", url])
        #expect(again.status == 0 && again.lines.contains("heads match"), "a second copy has nothing left to move")

        let cache = f.dir.path + "/cache"
        let remote = try CLI.run(["verify", "--data", cache, "--postgres", url])
        #expect(remote.status == 0, "\(remote.stderr)")
        #expect(Self.headDigest(remote) == digest)
        let replayLocal = try CLI.run(["replay", "--data", f.dataDir])
        let replayRemote = try CLI.run(["replay", "--data", cache, "--postgres", url])
        #expect(replayRemote.status == 0 && replayRemote.stdout == replayLocal.stdout)

        let back = f.dir.path + "/back"
        let out = try CLI.run(["copy", "--from", url, "--to", back])
        #expect(out.status == 0 && out.lines.contains("heads match"), "\(out.stderr)")
        #expect(Self.headDigest(try CLI.run(["verify", "--data", back])) == digest)
    }

    @Test func copyRefusesToMixTwoLogs() async throws {
        let f = try await F.make()
        let other = try await F.make(extraMessages: 3)
        let url = try await PostgresTestServer.freshDatabaseAddress()
        #expect(try CLI.run(["copy", "--from", f.dataDir, "--to", url]).status == 0)
        let mixed = try CLI.run(["copy", "--from", other.dataDir, "--to", url])
        #expect(mixed.status == 1, "\(mixed.stdout) \(mixed.stderr)")
        let cacheOfFileLog = try CLI.run(["verify", "--data", other.dataDir, "--postgres", url])
        #expect(cacheOfFileLog.status == 2 && cacheOfFileLog.stderr.contains("holds a file log"))
    }
}
