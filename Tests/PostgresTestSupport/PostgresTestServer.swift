import Foundation
import Logging
import PostgresNIO
import EventLog

/// The PostgreSQL server the tests use: `CHAT_ES_TEST_POSTGRES=postgres://user@host:port` when
/// set; otherwise, when Debian's postgresql is installed, a throwaway cluster this test process
/// starts with `scripts/pg-temp.sh` on first use and stops at exit. Without either, the tests
/// that need it are skipped (and say why).
public enum PostgresTestServer {
    public static let base: String? = ProcessInfo.processInfo.environment["CHAT_ES_TEST_POSTGRES"] ?? startThrowawayCluster()
    public static var available: Bool { base != nil }

    /// A new, empty database on that server, for one test.
    public static func freshDatabase() async throws -> PostgresURL {
        try PostgresURL(try await freshDatabaseAddress())
    }

    /// The `postgres://` address of a new, empty database, for a test that runs the CLI.
    public static func freshDatabaseAddress() async throws -> String {
        let base = base!
        let admin = try PostgresURL(base + "/postgres")
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20).lowercased()
        let connection = try await PostgresConnection.connect(configuration: admin.configuration, id: 1,
                                                              logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        try await connection.close()
        return base + "/" + name
    }

    private static func startThrowawayCluster() -> String? {
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard !installed.isEmpty else { return nil }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let dir = NSTemporaryDirectory() + "chat-es-test-pg-" + UUID().uuidString
        // The URL comes back in a file, not a pipe: the server the script starts would inherit
        // the pipe and keep it open, and reading it to its end would never return.
        let urlFile = dir + ".url"
        guard run(["-c", "\"$0\" start \"$1\" > \"$2\"", repo + "/scripts/pg-temp.sh", dir, urlFile]) == 0 else { return nil }
        let url = ((try? String(contentsOfFile: urlFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        try? FileManager.default.removeItem(atPath: urlFile)
        guard url.hasSuffix("/chat") else { return nil }
        clusterScript = repo + "/scripts/pg-temp.sh"
        clusterDirectory = dir
        atexit {
            _ = PostgresTestServer.run([PostgresTestServer.clusterScript, "stop", PostgresTestServer.clusterDirectory])
            try? FileManager.default.removeItem(atPath: PostgresTestServer.clusterDirectory)
        }
        return String(url.dropLast("/chat".count))
    }

    /// Runs bash with `arguments` and returns its exit status. posix_spawn and waitpid, not
    /// Foundation's Process: this runs inside a lazy static's initializer, where waiting for a
    /// Process never returned.
    private static func run(_ arguments: [String]) -> Int32 {
        let argv = (["/bin/bash"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status >> 8) & 0xff
    }

    nonisolated(unsafe) private static var clusterScript = ""
    nonisolated(unsafe) private static var clusterDirectory = ""
}
