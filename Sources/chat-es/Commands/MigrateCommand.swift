import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es migrate`: the one-time, offline rewrite of a data directory from before personal
/// fields were encrypted. Plaintext cannot be shredded by dropping a key, so the records are
/// copied into a new directory, in order and at the same seqs and times (message ids stay what
/// clients know), with names, password hashes and texts sealed under new per-user keys; the
/// new log gets its own hash chain. The old directory is only read, and left for the operator
/// to destroy once the new one checks out.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Rewrite a data directory from before encryption into the encrypted format (offline, once).",
        discussion: """
            Stop the server first. --to must not exist or be empty. The master key of the new \
            directory is CHAT_ES_MASTER_KEY, or a new <TO>/master-key. The JWT key (<FROM>/secret) \
            is copied, so sessions and tokens stay valid; snapshots are not (they hold plaintext; \
            `serve` rebuilds its views). Afterwards the new log is verified and its views compared \
            with the old ones. Then serve --data <TO>, and destroy <FROM> (it still holds every \
            name, hash and message in clear; so do its backups). \
            Exit codes: 0 done, 1 the old log is damaged or the check failed, 2 usage or I/O error.
            """
    )

    @Option(name: .customLong("from"), help: ArgumentHelp("The data directory to read.", valueName: "DIR"))
    var from: String

    @Option(name: .customLong("to"), help: ArgumentHelp("The new data directory to write.", valueName: "DIR"))
    var to: String

    func run() async throws {
        try await withToolExitCodesAsync {
            let source = DataDirectoryOptions(path: from)
            let oldLog = try source.existingLogDirectory()
            try Self.prepareTarget(to)
            let master: MasterKey
            do {
                master = try MasterKey.load(dataDirectory: to, environment: ProcessInfo.processInfo.environment, create: true)!
            } catch {
                throw ToolError.usage("\(error)")
            }
            let keys = try KeyStore.open(dataDirectory: to, master: master)
            if let secret = FileManager.default.contents(atPath: from + "/secret"),
               !FileManager.default.createFile(atPath: to + "/secret", contents: secret, attributes: [.posixPermissions: 0o600]) {
                throw ToolError.io("cannot write \(to)/secret")
            }
            let log = try EventLog.open(directory: to + "/log", options: EventLogOptions(durability: .interval(milliseconds: 1000)))
            var rewrite = LogRewrite(keys: keys, log: log)
            let cursor = LogCursor(directory: oldLog, from: 1)
            let progress = ProgressBar(label: "migrate")
            if progress.isEnabled { progress.setTotal(LogHeadEstimate.lastSeq(logDirectory: oldLog)) }
            do {
                defer { progress.finish() }
                try cursor.poll { header, payload in
                    try rewrite.add(header, payload)
                    if header.seq & 0xFFFF == 0 { progress.update(header.seq) }
                    return true
                }
                try rewrite.flush()
            }
            await log.close()
            if let failure = log.failureReason { throw ToolError.io("writing \(to)/log failed: \(failure)") }
            guard rewrite.plaintext > 0 else {
                throw ToolError.usage("\(from)/log holds no plaintext records: it is in the encrypted format already (\(to) was left with an empty log)")
            }
            let report = try LogVerifier.verify(directory: to + "/log")
            try Self.compareViews(old: oldLog, new: to + "/log", events: report.events)
            let out = StandardOutput()
            out.appendLine("migrated:     \(report.events) events, \(rewrite.users) users, \(rewrite.messages) messages sealed")
            out.appendLine("new log:      \(to)/log, verified; head digest \(report.headSeq) \(report.headHash)")
            out.appendLine("keys:         \(keys.directory) (master key: \(master.source))")
            out.appendLine("next:         serve --data \(to); then destroy \(from) and its backups: it holds every name, password hash and message in clear")
            out.flush()
        }
    }

    static func prepareTarget(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty == true else {
                throw ToolError.usage("\(path) exists and is not an empty directory")
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ToolError.io("cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Every view but users must come out the same (sealing changes only what users hold), and
    /// the users view must hold the same ids, times and erasures.
    static func compareViews(old: String, new: String, events: UInt64) throws {
        let before = try RebuildCommand.rebuild(old, asOf: nil)
        let after = try RebuildCommand.rebuild(new, asOf: nil)
        let a = before.digest(), b = after.digest()
        for name in ProjectionSet.viewNames where name != "users" && a[name] != b[name] {
            throw ToolError.problem("the \(name) view differs after the rewrite (\(a[name] ?? "") vs \(b[name] ?? ""))")
        }
        let sameUsers = before.users.all.map { [$0.registeredAt, $0.lastLogin ?? -1, $0.lastActivity, $0.erased ? 1 : 0] }
            == after.users.all.map { [$0.registeredAt, $0.lastLogin ?? -1, $0.lastActivity, $0.erased ? 1 : 0] }
        guard sameUsers, after.plaintextRecords == 0, after.lastSeq == before.lastSeq, after.lastSeq == events else {
            throw ToolError.problem("the rewritten log does not match the old one (users, plaintext records or last seq)")
        }
    }
}

/// The rewrite of one record stream: plaintext registrations and messages are sealed, anything
/// else is copied byte for byte. Records are gathered in chunks, so the keys a chunk needs are
/// created (and synced) together, before any record sealed with them is handed to the log.
struct LogRewrite {
    let keys: KeyStore
    let log: EventLog
    private var chunk: [(RecordHeader, Event?, [UInt8])] = []
    private(set) var plaintext = 0
    private(set) var users = 0
    private(set) var messages = 0

    init(keys: KeyStore, log: EventLog) {
        self.keys = keys
        self.log = log
    }

    mutating func add(_ header: RecordHeader, _ payload: UnsafeRawBufferPointer) throws {
        let type = EventType(rawValue: header.type)
        let personal = (type == .userRegistered && header.version == 1) || (type == .messageSent && header.version < 3)
        chunk.append((header, personal ? try Event.decode(header: header, payload: payload) : nil, Array(payload)))
        if chunk.count >= 4096 { try flush() }
    }

    mutating func flush() throws {
        guard !chunk.isEmpty else { return }
        var newUsers: [UInt32] = []
        for case let (_, .userRegistered(e)?, _) in chunk { newUsers.append(e.userId) }
        _ = try keys.createKeys(for: newUsers)
        var records: [NewRecord] = []
        records.reserveCapacity(chunk.count)
        for (header, event, payload) in chunk {
            guard let event else {
                records.append(NewRecord(timestamp: header.timestamp, type: header.type, version: header.version, payload: payload))
                continue
            }
            let sealed = try seal(event, seq: header.seq)
            records.append(sealed.record(timestamp: header.timestamp))
            plaintext += 1
        }
        let seqs = try log.reserve(records)
        guard seqs.lowerBound == chunk[0].0.seq else {
            throw ToolError.problem("the new log is at seq \(seqs.lowerBound), the old one at \(chunk[0].0.seq)")
        }
        chunk.removeAll(keepingCapacity: true)
    }

    private mutating func seal(_ event: Event, seq: UInt64) throws -> Event {
        switch event {
        case .userRegistered(let e):
            guard case let .plain(username, passwordHash) = e.account, let key = keys.key(for: e.userId) else { return event }
            users += 1
            let box = try SealedBox.seal(AccountFields(username: username, passwordHash: passwordHash).bytes,
                                         field: .account, owner: e.userId, key: key)
            return .userRegistered(UserRegistered(
                userId: e.userId, account: .sealed(nameKey: keys.nameIndex.nameKey(for: username), box: box)))
        case .messageSent(var m):
            guard case let .plain(text) = m.body else { return event }
            guard let key = keys.key(for: m.senderId) else {
                throw ToolError.problem("seq \(seq): a message from user \(m.senderId), who never registered")
            }
            messages += 1
            m.body = .sealed(try SealedBox.seal(Array(text.utf8), field: .messageText, owner: m.senderId, key: key))
            return .messageSent(m)
        default:
            return event
        }
    }
}
