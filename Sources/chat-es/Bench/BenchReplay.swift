import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es bench replay`: writes a realistic mixed log through `EventLog`, then times
/// the full rebuild of all projections and the memory it keeps.
struct BenchReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Benchmark the rebuild of all projections from a realistic log.",
        discussion: """
            The log: --users registrations first, then 10% session and socket events \
            (login, refresh, logout, socket connect/disconnect), 5% chat starts and 85% \
            MessageSent of 20–400 characters (--client-ids percent of them with a client \
            id, as the API's idempotent sends carry) between users who \
            started a chat; names, password hashes and texts sealed under per-user keys as the \
            server seals them; written with fsync never. The rebuild runs on one thread. \
            Memory is resident-set growth over the rebuild (/proc/self/statm, each \
            reading after malloc_trim), with the rebuilt state still held. Targets (reported, not \
            asserted): ≥ 1,000,000 events/s; ≤ 48 B per stored message + ≤ 1 KiB per user.
            """
    )

    @Option(help: ArgumentHelp("Events to write, registrations included.", valueName: "N"))
    var events = 1_000_000

    @Option(help: ArgumentHelp("Users registered before the mixed traffic.", valueName: "N"))
    var users = 10_000

    @Option(name: .customLong("client-ids"), help: ArgumentHelp("Percent of messages that carry a client id (idempotency key).", valueName: "PERCENT"))
    var clientIdPercent = 100

    @OptionGroup var output: BenchOutputOptions

    func run() async throws {
        try await withToolExitCodesAsync {
            guard events > 0, users > 1, (0...100).contains(clientIdPercent) else {
                throw ToolError.usage("--events must be positive, --users at least 2, --client-ids 0…100")
            }
            let dir = try BenchDirectory.make(data: output.data)
            defer { dir.cleanUp(keep: output.keep) }
            print("bench replay: \(groupedCount(events)) events, \(groupedCount(users)) users, client ids on \(clientIdPercent)% of messages")
            let writeStart = BenchClock.nanos()
            let written = try await MixedLogWriter.write(
                directory: dir.logDirectory, keys: try Self.keyStore(in: dir.root), events: events, users: users,
                clientIdPercent: clientIdPercent)
            print("written:  \(BenchFormat.millis(BenchClock.seconds(since: writeStart))) — \(written.summary)")
            let onDisk = try SegmentFiles.list(dir.logDirectory).reduce(0) { $0 + $1.size }
            print("on disk:  \(groupedCount(onDisk)) B, \(String(format: "%.1f", Double(onDisk) / Double(events))) B per event")
            try measureRebuild(dir.logDirectory, events: events)
        }
    }

    /// A key store with a new master key in `<root>/master-key`: the log is written sealed, as
    /// the server writes it (the rebuild never opens a box), and `serve --data <root>` can
    /// start on a kept bench directory.
    static func keyStore(in root: String) throws -> KeyStore {
        do {
            let master = try MasterKey.load(dataDirectory: root, environment: [:], create: true)!
            return try KeyStore.open(dataDirectory: root, master: master)
        } catch {
            throw ToolError.io("cannot create the bench key store: \(error)")
        }
    }

    private func measureRebuild(_ directory: String, events: Int) throws {
        // Cursor alone first: what reading and decompressing costs without the fold.
        let bare = LogCursor(directory: directory, from: 1)
        let bareStart = BenchClock.nanos()
        try bare.poll { _, _ in true }
        let bareSeconds = BenchClock.seconds(since: bareStart)

        trimHeap()
        let before = residentBytes()
        let (set, seconds, rawBytes) = try timedRebuild(directory)
        // Freed read buffers may stay in the heap: only the state still held should count.
        trimHeap()
        let after = residentBytes()
        let rate = Double(set.lastSeq) / seconds
        print("rebuild:  \(BenchFormat.rate(Double(set.lastSeq), seconds)) events/s  \(BenchFormat.mbps(rawBytes, seconds)) decompressed  "
            + "(\(BenchFormat.millis(seconds)), one thread; target ≥ 1,000,000 events/s: \(BenchFormat.target(rate >= 1_000_000)))")
        print("cursor alone (no projections): \(BenchFormat.rate(Double(events), bareSeconds)) events/s  "
            + "\(BenchFormat.mbps(rawBytes, bareSeconds))")
        withExtendedLifetime(set) {}
        let (parallel, parallelSeconds) = try timedParallelRebuild(directory)
        print("rebuild on two threads (start-up, rebuild): \(BenchFormat.rate(Double(parallel.lastSeq), parallelSeconds)) events/s  "
            + "\(BenchFormat.mbps(rawBytes, parallelSeconds))  (\(BenchFormat.millis(parallelSeconds)); "
            + "\(String(format: "%.2f", seconds / parallelSeconds))× one thread; same state: \(parallel == set ? "yes" : "NO"))")
        try BenchLogReplay.compareWithLZ4(directory: directory, rawBytes: rawBytes, replaySeconds: parallelSeconds)
        reportMemory(growth: after - before, set: set)
        withExtendedLifetime(set) {}
    }

    private func timedParallelRebuild(_ directory: String) throws -> (ProjectionSet, Double) {
        let start = BenchClock.nanos()
        let set = try ProjectionSet.rebuildInParallel(scan: { body in _ = try LogCursor(directory: directory, from: 1).poll(body) })
        return (set, BenchClock.seconds(since: start))
    }

    private func timedRebuild(_ directory: String) throws -> (ProjectionSet, Double, Int) {
        let cursor = LogCursor(directory: directory, from: 1)
        let start = BenchClock.nanos()
        let set = try ProjectionSet.rebuild(scan: { body in _ = try cursor.poll(body) })
        return (set, BenchClock.seconds(since: start), cursor.rawBytesRead)
    }

    private func reportMemory(growth: Int, set: ProjectionSet) {
        let messages = set.conversations.messageCount
        let users = set.users.count
        let budget = 48 * messages + 1024 * users
        print("state:    \(groupedCount(users)) users, \(groupedCount(set.sessions.count)) sessions, "
            + "\(groupedCount(set.conversations.conversationCount)) conversations, \(groupedCount(messages)) messages")
        print("memory:   resident growth \(String(format: "%.1f", Double(growth) / 1_048_576)) MiB = "
            + "\(String(format: "%.1f", Double(growth) / Double(max(messages, 1)))) B per message if all charged to messages, "
            + "\(String(format: "%.0f", Double(growth) / Double(max(users, 1)))) B per user if all charged to users")
        print("memory target 48 B × messages + 1 KiB × users = \(String(format: "%.1f", Double(budget) / 1_048_576)) MiB: "
            + "\(BenchFormat.target(growth <= budget)) (\(BenchFormat.percent(Double(growth) / Double(max(budget, 1)))) of budget)")
    }

    /// Hands freed heap pages back to the kernel so the baseline is not inflated by the
    /// write phase and the growth is not hidden by reusing its freed memory.
    private func trimHeap() {
        // glibc's malloc_trim is not in the Glibc module (malloc.h is not imported): look it up.
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
    }

    /// Resident set size from `/proc/self/statm` (pages × page size); 0 where it is missing.
    private func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Generates and appends the realistic mixed log of `bench replay`: every event is valid
/// (sessions refreshed or ended are open, messages flow between a chat's participants),
/// so the rebuild does the same work live traffic would cause.
struct MixedLogWriter {
    private var rng = SplitMix64(seed: 7)
    /// 2026-01-01T00:00:00Z; each event comes 0–2 ms after the previous one.
    private var time: Int64 = 1_767_225_600_000_000
    private let users: Int
    private let clientIdPercent: Int
    private let keys: KeyStore
    private var openSessions: [(session: TokenID, jti: TokenID)] = []
    private var openSockets: [(user: UInt32, socket: UInt64)] = []
    private var nextSocket: UInt64 = 1
    private var pairs: Set<UInt64> = []
    private var conversations: [(a: UInt32, b: UInt32)] = []
    private var counts = [Int](repeating: 0, count: EventType.allCases.count + 1)

    private init(users: Int, clientIdPercent: Int, keys: KeyStore) {
        self.users = users
        self.clientIdPercent = clientIdPercent
        self.keys = keys
    }

    static func write(directory: String, keys: KeyStore, events: Int, users: Int, clientIdPercent: Int) async throws -> MixedLogWriter {
        let log = try EventLog.open(directory: directory, options: EventLogOptions(durability: .never))
        var gen = MixedLogWriter(users: users, clientIdPercent: clientIdPercent, keys: keys)
        _ = try keys.createKeys(for: (1...UInt32(min(users, events))).map { $0 })
        var batch: [NewRecord] = []
        batch.reserveCapacity(1024)
        do {
            for i in 0..<events {
                let event = i < users ? try gen.registration(UInt32(i + 1)) : try gen.mixed()
                gen.counts[Int(event.typeId)] += 1
                gen.time += Int64(gen.rng.below(2000))
                batch.append(event.record(timestamp: gen.time))
                if batch.count == 1024 {
                    try await log.append(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            if !batch.isEmpty { try await log.append(batch) }
        } catch {
            await log.close()
            throw error
        }
        await log.close()
        return gen
    }

    var summary: String {
        EventType.allCases.compactMap { t in
            counts[Int(t.rawValue)] > 0 ? "\(t.name) \(groupedCount(counts[Int(t.rawValue)]))" : nil
        }.joined(separator: ", ")
    }

    private mutating func registration(_ id: UInt32) throws -> Event {
        let hash = "pbkdf2_sha256$870000$" + String(randomHex().prefix(22)) + "$" + randomHex() + String(randomHex().prefix(12))
        let name = "user\(id)"
        let box = try SealedBox.seal(AccountFields(username: name, passwordHash: hash).bytes, field: .account, owner: id,
                                     key: keys.key(for: id)!)
        return .userRegistered(UserRegistered(userId: id, account: .sealed(nameKey: keys.nameIndex.nameKey(for: name), box: box)))
    }

    private mutating func mixed() throws -> Event {
        let r = rng.below(100)
        if r < 10 { return sessionOrSocket() }
        if r < 15 || conversations.isEmpty { return chatStart() }
        return try message()
    }

    private mutating func randomUser() -> UInt32 { UInt32(rng.below(users) + 1) }

    private mutating func randomToken() -> TokenID { TokenID(hi: rng.next(), lo: rng.next()) }

    private mutating func randomHex() -> String { randomToken().hex }

    private mutating func sessionOrSocket() -> Event {
        let week: Int64 = 7 * 86_400_000_000
        let s = rng.below(100)
        if s >= 30, s < 55, !openSessions.isEmpty {
            let k = rng.below(openSessions.count)
            let next = randomToken()
            let old = openSessions[k]
            openSessions[k].jti = next
            return .tokenRefreshed(TokenRefreshed(sessionId: old.session, retiredJti: old.jti, newJti: next, expiresAt: time + week))
        }
        if s >= 55, s < 70, !openSessions.isEmpty {
            let k = rng.below(openSessions.count)
            openSessions.swapAt(k, openSessions.count - 1)
            let ended = openSessions.removeLast()
            return .userLoggedOut(UserLoggedOut(sessionId: ended.session))
        }
        if s >= 90, !openSockets.isEmpty {
            let k = rng.below(openSockets.count)
            openSockets.swapAt(k, openSockets.count - 1)
            let closed = openSockets.removeLast()
            return .socketDisconnected(SocketDisconnected(userId: closed.user, socketId: closed.socket))
        }
        if s >= 70 {
            let user = randomUser()
            openSockets.append((user, nextSocket))
            nextSocket += 1
            return .socketConnected(SocketConnected(userId: user, socketId: nextSocket - 1))
        }
        let session = randomToken()
        let jti = randomToken()
        openSessions.append((session, jti))
        return .userLoggedIn(UserLoggedIn(userId: randomUser(), sessionId: session, refreshJti: jti, expiresAt: time + week))
    }

    private mutating func chatStart() -> Event {
        while true {
            let a = randomUser()
            let b = randomUser()
            let key = UInt64(min(a, b)) << 32 | UInt64(max(a, b))
            guard a != b, pairs.insert(key).inserted else { continue }
            conversations.append((a, b))
            return .chatStarted(ChatStarted(conversation: UInt32(conversations.count), userA: a, userB: b))
        }
    }

    private mutating func message() throws -> Event {
        let k = rng.below(conversations.count)
        let (a, b) = conversations[k]
        let fromA = rng.next() & 1 == 0
        let length = 20 + rng.below(381)
        var text: [UInt8] = []
        text.reserveCapacity(length + 16)
        while text.count < length {
            text.append(contentsOf: sampleWords[rng.below(sampleWords.count)])
            text.append(UInt8(ascii: " "))
        }
        text.removeLast(text.count - length)
        let clientId = rng.below(100) < clientIdPercent ? randomHex() : nil
        let sender = fromA ? a : b
        let box = try SealedBox.seal(text, field: .messageText, owner: sender, key: keys.key(for: sender)!)
        return .messageSent(MessageSent(
            conversation: UInt32(k + 1), senderId: sender, receiverId: fromA ? b : a, body: .sealed(box), clientId: clientId))
    }
}
