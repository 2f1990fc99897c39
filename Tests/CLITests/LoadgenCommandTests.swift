import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `chat-es loadgen` against a live `chat-es serve`: the load generator is how the load
/// targets are measured, so its counting must be right, paced and unpaced, with padding,
/// and when the server rate-limits it.
@Suite(.serialized) struct LoadgenCommandTests {
    /// A server on a free port over a fresh data directory, stopped when dropped.
    final class Server {
        let dir = TempDir()
        let port = Int.random(in: 20_000...29_000)
        let process: RunningCLI

        init(_ extra: [String] = []) async throws {
            process = try RunningCLI(["serve", "--data", dir.path + "/data", "--port", "\(port)",
                                      "--password-iterations", "1000"] + extra)
            for _ in 0..<300 {
                if let (_, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/healthz")!),
                   (response as? HTTPURLResponse)?.statusCode == 200 { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("server did not become healthy")
        }

        func loadgen(_ arguments: [String]) throws -> [String: Any] {
            let result = try CLI.run(["loadgen", "--url", "http://127.0.0.1:\(port)", "--json"] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(CLI.objects(result.lines).last)
        }

        deinit { process.process.terminate() }
    }

    static func int(_ object: [String: Any], _ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }

    @Test func unpacedAndPacedRunsCountEveryMessageOnce() async throws {
        let server = try await Server()
        defer { _ = server }
        for arguments in [["--rate", "0"], ["--rate", "300", "--message-bytes", "300", "--fanout", "2"]] {
            let report = try server.loadgen(["--users", "6", "--senders", "3", "--duration", "1"] + arguments)
            let sent = Self.int(report, "sent")
            #expect(sent > 50, "\(arguments): \(report)")
            #expect(Self.int(report, "acked") == sent, "\(arguments)")
            #expect(Self.int(report, "delivered") == sent, "\(arguments): each send has one receiver")
            #expect(Self.int(report, "errors") == 0, "\(arguments): \(report)")
            #expect(Self.int(report, "unacked") == 0 && Self.int(report, "undelivered") == 0)
            #expect((report["delivered_per_s"] as? NSNumber)?.doubleValue ?? 0 > 0)
        }
        // Paced: 300 msg/s for 1 s is about 300 sends, not as many as the window allows.
        let paced = try server.loadgen(["--users", "6", "--senders", "3", "--duration", "1", "--rate", "300"])
        #expect((200...400).contains(Self.int(paced, "sent")), "\(paced)")
    }

    @Test func rateLimitedSendsAreRetriedUntilStoredOnce() async throws {
        let server = try await Server(["--socket-rate", "20"])
        defer { _ = server }
        let report = try server.loadgen(["--users", "2", "--senders", "1", "--duration", "2", "--drain", "10"])
        #expect(Self.int(report, "rate_limited") > 0, "\(report)")
        #expect(Self.int(report, "retries") > 0)
        #expect(Self.int(report, "errors") == 0, "\(report)")
        let sent = Self.int(report, "sent")
        #expect(Self.int(report, "acked") == sent && Self.int(report, "delivered") == sent, "\(report)")
    }
}
