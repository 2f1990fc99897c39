import Foundation
import Testing
import EventLog
import Projections

/// `chat-es stats` counts.
@Suite struct StatsCommandTests {
    typealias F = CLIFixture

    @Test func countsByTypeAndTotals() async throws {
        let f = try await F.make()
        let result = try CLI.run(["stats", "--data", f.dataDir])
        #expect(result.status == 0, "\(result.stderr)")
        var fields: [String: String] = [:]
        for line in result.lines {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let colon = trimmed.firstIndex(of: ":"), !trimmed.hasPrefix("20") {
                fields[String(trimmed[..<colon])] = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let messages = f.seqs { $0.type == .messageSent }.count
        #expect(fields["events"] == String(f.events.count))
        #expect(fields["users"] == "3")
        #expect(fields["conversations"] == "2")
        #expect(fields["messages"] == String(messages))
        #expect(fields["segments"] == String(f.segmentFiles.count))
        #expect(result.stdout.contains("MessageSent         \(messages)\n"))
        #expect(result.stdout.contains("UserLoggedIn        3\n"))
        #expect(result.stdout.contains("2026-01-01  \(f.events.count)\n"))
        #expect(fields["compression ratio"] != nil)
    }
}
