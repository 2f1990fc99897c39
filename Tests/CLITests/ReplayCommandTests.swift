import Foundation
import Testing
import EventLog
import Projections

/// `chat-es replay` run as a process over a log the test wrote.
@Suite struct ReplayCommandTests {
    typealias F = CLIFixture

    private func involves(_ user: UInt32, session: TokenID?) -> (Event) -> Bool {
        { event in
            switch event {
            case .userRegistered(let e): e.userId == user
            case .userLoggedIn(let e): e.userId == user
            case .tokenRefreshed(let e): e.sessionId == session
            case .sessionRevoked(let e): e.sessionId == session
            case .userLoggedOut(let e): e.sessionId == session
            case .socketConnected(let e): e.userId == user
            case .socketDisconnected(let e): e.userId == user
            case .serverStarted, .nodeLeft: false
            case .chatStarted(let e): e.userA == user || e.userB == user
            case .messageSent(let e): e.senderId == user || e.receiverId == user
            case .userErased(let e): e.userId == user
            }
        }
    }

    @Test func everyEventOnceInOrderAsJSON() async throws {
        let f = try await F.make()
        let result = try CLI.run(["replay", "--data", f.dataDir])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try CLI.seqs(result) == Array(1...UInt64(f.events.count)))
        let first = try CLI.objects(result.lines)[8]
        #expect(first["type"] as? String == "MessageSent")
        #expect(first["text"] as? String == "hello bob")
        #expect(first["conversation_id"] as? String == publicConversationId(1))
        #expect(first["time"] as? String == formatTimestamp(F.timestamp(ofSeq: 9)))
    }

    @Test func filtersByTypeSeqAndTime() async throws {
        let f = try await F.make()
        let messages = try CLI.run(["replay", "--data", f.dataDir, "--type", "MessageSent"])
        #expect(try CLI.seqs(messages) == f.seqs { $0.type == .messageSent })

        let two = try CLI.run(["replay", "--data", f.dataDir, "--type", "chatstarted", "--type", "UserLoggedOut"])
        #expect(try CLI.seqs(two) == [8, 12, 14])

        let range = try CLI.run(["replay", "--data", f.dataDir, "--from", "5", "--to", "9"])
        #expect(try CLI.seqs(range) == [5, 6, 7, 8, 9])

        let since = formatTimestamp(F.timestamp(ofSeq: 20))
        let until = formatTimestamp(F.timestamp(ofSeq: 23))
        let window = try CLI.run(["replay", "--data", f.dataDir, "--since", since, "--until", until])
        #expect(try CLI.seqs(window) == [20, 21, 22, 23])

        let table = try CLI.run(["replay", "--data", f.dataDir, "--to", "3", "--format", "table"])
        #expect(table.status == 0)
        #expect(table.lines.count == 4)
        #expect(table.lines[0].contains("SEQ") && table.lines[2].contains("Bob"))
    }

    @Test func filtersByUserNameOrIdIncludingTheirSessionEvents() async throws {
        let f = try await F.make()
        let alice = f.seqs(where: involves(F.alice, session: F.s1))
        #expect(alice.contains(11))  // the refresh names only the session
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--user", "alice"])) == alice)
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--user", "1"])) == alice)
        // A session opened before --from still counts.
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--user", "ALICE", "--from", "10"])) == alice.filter { $0 >= 10 })

        let bob = f.seqs(where: involves(F.bob, session: F.s2))
        #expect(bob.contains(14))
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--user", "bob"])) == bob)

        let both = Set(f.seqs(where: involves(F.carol, session: F.s3))).union(alice).sorted()
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--user", "carol", "--user", "1"])) == both)

        let nobody = try CLI.run(["replay", "--data", f.dataDir, "--user", "mallory"])
        #expect(nobody.status == 0 && nobody.stdout.isEmpty && nobody.stderr.contains("mallory"))
    }

    @Test func filtersByConversation() async throws {
        let f = try await F.make()
        let expected = f.seqs { event in
            switch event {
            case .chatStarted(let e): e.conversation == 2
            case .messageSent(let e): e.conversation == 2
            default: false
            }
        }
        let result = try CLI.run(["replay", "--data", f.dataDir, "--conversation", publicConversationId(2)])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try CLI.seqs(result) == expected)
        #expect(try CLI.seqs(CLI.run(["replay", "--data", f.dataDir, "--conversation", "2", "--type", "ChatStarted"])) == [12])
        #expect(try CLI.run(["replay", "--data", f.dataDir, "--conversation", "c_nothex"]).status == 2)
    }

    @Test func secretsOnlyWithIncludeSecrets() async throws {
        let f = try await F.make()
        let secrets = [F.passwordHash, F.j1.hex, F.j2.hex, F.j3.hex, F.j4.hex]
        for format in ["jsonl", "table"] {
            let plain = try CLI.run(["replay", "--data", f.dataDir, "--format", format])
            #expect(plain.status == 0)
            for secret in secrets { #expect(!plain.stdout.contains(secret), "\(format) leaks \(secret)") }
            #expect(plain.stdout.contains("<redacted>"))
            #expect(plain.stdout.contains(F.s1.hex))  // session ids are not secrets

            let open = try CLI.run(["replay", "--data", f.dataDir, "--format", format, "--include-secrets"])
            for secret in secrets { #expect(open.stdout.contains(secret), "\(format) hides \(secret)") }
        }
    }

    @Test func followPicksUpANewAppend() async throws {
        let f = try await F.make()
        let last = UInt64(f.events.count)
        let child = try RunningCLI(["replay", "--data", f.dataDir, "--follow", "--type", "MessageSent"])
        let caughtUp = await child.waitForLine { $0.contains("\"seq\":\(last),") }
        #expect(caughtUp != nil, "replay --follow did not print the existing events")

        let writer = try EventLog.open(directory: f.logDir)
        let event = Event.messageSent(MessageSent(conversation: 1, senderId: F.bob, receiverId: F.alice, text: "late news"))
        let seq = try await writer.append(event.record(timestamp: F.timestamp(ofSeq: last + 1)))
        await writer.close()
        #expect(seq == last + 1)

        let line = await child.waitForLine { $0.contains("\"seq\":\(seq),") }
        #expect(line?.contains("late news") == true, "the new append never showed up")
        #expect(await child.interruptAndWait() == 0)
    }

    @Test func anUndecodableRecordIsExit1NamingTheSeq() async throws {
        let f = try await F.make(extraMessages: 0)
        let log = try EventLog.open(directory: f.logDir)
        let bad = try await log.append(NewRecord(timestamp: F.timestamp(ofSeq: 17), type: 999, version: 1, payload: [1, 2, 3]))
        await log.close()
        for command in ["replay", "rebuild"] {
            let result = try CLI.run([command, "--data", f.dataDir])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("seq \(bad)"), "\(command): \(result.stderr)")
        }
    }

    @Test func usageAndIOErrorsAreExit2() async throws {
        let f = try await F.make(extraMessages: 0)
        let missing = f.dir.path + "/nowhere"
        for command in ["replay", "verify", "rebuild", "stats"] {
            let result = try CLI.run([command, "--data", missing])
            #expect(result.status == 2, "\(command) on a missing data dir")
            #expect(result.stderr.contains(missing))
        }
        #expect(try CLI.run(["replay", "--data", f.dataDir, "--no-such-flag"]).status == 2)
        #expect(try CLI.run(["replay", "--data", f.dataDir, "--type", "Nope"]).status == 2)
        #expect(try CLI.run(["replay", "--data", f.dataDir, "--since", "yesterday"]).status == 2)
        #expect(try CLI.run(["rebuild", "--data", f.dataDir, "--as-of", "later"]).status == 2)
        #expect(try CLI.run(["rebuild", "--data", f.dataDir, "--print", "nope"]).status == 2)
    }
}
