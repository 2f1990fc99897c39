import Foundation
import Logging
import PostgresNIO
@testable import EventLog

/// The PostgreSQL server the tests may use: `CHAT_ES_TEST_POSTGRES=postgres://user@host:port`
/// (CI starts one with `scripts/pg-temp.sh`). Tests that need it are skipped without it.
enum PostgresTestServer {
    static let base = ProcessInfo.processInfo.environment["CHAT_ES_TEST_POSTGRES"]
    static var available: Bool { base != nil }

    /// A new, empty database on that server, for one test.
    static func freshDatabase() async throws -> PostgresURL {
        let base = base!
        let admin = try PostgresURL(base + "/postgres")
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20).lowercased()
        let connection = try await PostgresConnection.connect(configuration: admin.configuration, id: 1,
                                                              logger: Logger(label: "test"))
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        try await connection.close()
        return try PostgresURL(base + "/" + name)
    }
}
