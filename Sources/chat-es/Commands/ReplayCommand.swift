import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es replay`: the history as one JSON object (or table row) per event, filtered,
/// optionally following new durable events. Reads segments through `LogCursor`, so it
/// never writes to the log and runs safely beside the server.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Print the event history, one JSON object per event.",
        discussion: """
            Filters combine with AND; repeated --type or --user values combine with OR. \
            --user takes a user id (a number) or a username (case-insensitive); a user's \
            session events (refresh, revoke, logout) match through the sessions they opened. \
            --conversation takes the public id (c_…) or the conversation number. \
            TIME is RFC 3339, e.g. 2026-01-31T12:00:00Z. Password hashes and refresh-token \
            ids are printed as "<redacted>" unless --include-secrets. Usernames, password \
            hashes and message texts are stored encrypted: they print as null with \
            "sealed": true, or with "erased": true once the account is deleted; \
            --include-secrets opens those that still have a key, with the key store in \
            <DIR>/keys and the master key (CHAT_ES_MASTER_KEY or <DIR>/master-key), which \
            --user NAME needs too. Logs from before encryption print their plaintext. \
            With --follow, new events are printed as they become durable until SIGINT/SIGTERM. \
            Exit codes: 0 ok, 1 corrupt log or undecodable record, 2 usage or I/O error.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    @Option(help: ArgumentHelp("First seq to print.", valueName: "SEQ"))
    var from: UInt64?

    @Option(help: ArgumentHelp("Last seq to print.", valueName: "SEQ"))
    var to: UInt64?

    @Option(help: ArgumentHelp("Only events at or after this time.", valueName: "TIME"))
    var since: String?

    @Option(help: ArgumentHelp("Only events at or before this time.", valueName: "TIME"))
    var until: String?

    @Option(name: .customLong("type"), help: ArgumentHelp("Only this event type (e.g. MessageSent); repeatable or comma-separated.", valueName: "T"))
    var types: [String] = []

    @Option(name: .customLong("user"), help: ArgumentHelp("Only events about this user; repeatable.", valueName: "NAME|ID"))
    var users: [String] = []

    @Option(help: ArgumentHelp("Only events of this conversation.", valueName: "ID"))
    var conversation: String?

    @Flag(help: "Keep printing new events as they become durable, until interrupted.")
    var follow = false

    @Option(help: ArgumentHelp("Output format: jsonl or table.", valueName: "FORMAT"))
    var format: ReplayFormat = .jsonl

    @Flag(name: .customLong("include-secrets"), help: "Print password hashes, refresh-token ids and, where keys remain, sealed fields in clear.")
    var includeSecrets = false

    func run() throws {
        try withToolExitCodes {
            let logDirectory = try data.existingLogDirectory()
            let access = try PersonalAccess(data: data, openFields: includeSecrets,
                                            resolveNames: users.contains { UInt32($0) == nil })
            var filter = try ReplayFilter(
                from: from, to: to, since: since, until: until, types: types, users: users,
                conversation: conversation, format: format, includeSecrets: includeSecrets, access: access)
            let stop = follow ? StopSignal.install() : nil
            let out = StandardOutput()
            defer { out.flush() }
            if format == .table { out.appendLine(ReplayTable.heading) }
            try replay(logDirectory, filter: &filter, out: out, stop: stop)
            out.flush()
            for name in filter.unknownUserNames {
                StandardError.write("chat-es: note: no user named \(name) in the log\n")
            }
        }
    }

    private func replay(_ logDirectory: String, filter: inout ReplayFilter, out: StandardOutput, stop: StopSignal?) throws {
        let cursor = LogCursor(directory: logDirectory, from: filter.scanStart)
        // The bar shares the terminal with the output: show it only when stdout goes elsewhere.
        let progress = ProgressBar(label: "replay", enabled: ProgressBar.stderrIsTerminal && isatty(1) == 0)
        if progress.isEnabled {
            progress.setTotal(LogHeadEstimate.lastSeq(logDirectory: logDirectory).map { min($0, filter.lastSeq) })
        }
        var seen: UInt64 = 0
        while true {
            try cursor.poll(through: filter.lastSeq) { header, payload in
                if let line = try filter.render(header, payload) { out.appendLine(line) }
                seen &+= 1
                if seen & 0xFFF == 0 {
                    progress.update(header.seq)
                    if stop?.isSet == true { return false }
                }
                return true
            }
            progress.finish()
            guard let stop, cursor.nextSeq <= filter.lastSeq, !stop.isSet else { return }
            out.flush()
            // New batches become visible once the writer has written them whole.
            stop.wait(seconds: 0.2)
            if stop.isSet { return }
        }
    }
}

/// `--format`.
enum ReplayFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl
    case table
}

/// Set by SIGINT/SIGTERM so `--follow` can flush and exit 0 instead of dying mid-line.
final class StopSignal: @unchecked Sendable {
    private let condition = NSCondition()
    private var set = false
    private var sources: [DispatchSourceSignal] = []

    static func install() -> StopSignal {
        let stop = StopSignal()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.raise() }
            source.resume()
            stop.sources.append(source)
        }
        return stop
    }

    var isSet: Bool {
        condition.lock()
        defer { condition.unlock() }
        return set
    }

    func raise() {
        condition.lock()
        set = true
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps up to `seconds`, waking early when a signal arrives.
    func wait(seconds: Double) {
        condition.lock()
        if !set { _ = condition.wait(until: Date().addingTimeInterval(seconds)) }
        condition.unlock()
    }
}

/// The replay filters, and the state they need: the ids behind requested usernames and
/// the sessions of requested users (refresh/revoke/logout events name only the session).
struct ReplayFilter {
    let firstSeq: UInt64
    let lastSeq: UInt64
    let since: Int64
    let until: Int64
    /// Type ids to keep; nil keeps every type.
    let types: Set<UInt16>?
    let conversation: UInt32?
    let format: ReplayFormat
    let includeSecrets: Bool
    let access: PersonalAccess

    private let filtersUsers: Bool
    private var userIds: Set<UInt32> = []
    private var wantedNames: [String: String] = [:]
    /// The same names by `NameKey`, for sealed registrations (needs the key store).
    private var wantedKeys: [NameKey: String] = [:]
    private var sessions: Set<TokenID> = []
    /// A fold of registrations only, so names resolve exactly as the server resolves them.
    private var directory = UsersView()

    init(from: UInt64?, to: UInt64?, since: String?, until: String?, types: [String], users: [String],
         conversation: String?, format: ReplayFormat, includeSecrets: Bool, access: PersonalAccess) throws {
        firstSeq = max(from ?? 1, 1)
        lastSeq = to ?? .max
        self.since = try since.map(Self.time(option: "--since")) ?? .min
        self.until = try until.map(Self.time(option: "--until")) ?? .max
        if types.isEmpty {
            self.types = nil
        } else {
            self.types = Set(try types.flatMap { $0.split(separator: ",") }.map { name -> UInt16 in
                guard let id = Event.typeId(named: String(name)) else {
                    let known = EventType.allCases.map(\.name).joined(separator: ", ")
                    throw ToolError.usage("unknown event type \(name) (known: \(known))")
                }
                return id
            })
        }
        if let conversation {
            guard let number = parseConversationId(conversation) ?? UInt32(conversation), number > 0 else {
                throw ToolError.usage("--conversation wants a public id like c_0123456789abcdef or a number, not \(conversation)")
            }
            self.conversation = number
        } else {
            self.conversation = nil
        }
        filtersUsers = !users.isEmpty
        for user in users {
            if let id = UInt32(user) { userIds.insert(id) } else { wantedNames[user.lowercased()] = user }
        }
        self.format = format
        self.includeSecrets = includeSecrets
        self.access = access
        for (key, name) in wantedNames {
            if let nameKey = access.nameKey(for: name) { wantedKeys[nameKey] = key }
        }
    }

    private static func time(option: String) -> (String) throws -> Int64 {
        { text in
            guard let t = parseTimestamp(text) else {
                throw ToolError.usage("\(option) wants an RFC 3339 time like 2026-01-31T12:00:00Z, not \(text)")
            }
            return t
        }
    }

    /// Where the cursor starts: at 1 when users are filtered, because their registration
    /// and logins may lie before `--from`.
    var scanStart: UInt64 { filtersUsers ? 1 : firstSeq }

    /// Requested names that no registration matched.
    var unknownUserNames: [String] { wantedNames.values.sorted() }

    /// The line to print for a record, or nil when the filters drop it.
    mutating func render(_ header: RecordHeader, _ payload: UnsafeRawBufferPointer) throws -> String? {
        if filtersUsers { try track(header, payload) }
        guard header.seq >= firstSeq, header.timestamp >= since, header.timestamp <= until else { return nil }
        if let types, !types.contains(header.type) { return nil }
        if conversation != nil, header.type != EventType.chatStarted.rawValue, header.type != EventType.messageSent.rawValue {
            return nil
        }
        let event = try Event.decode(header: header, payload: payload)
        if let conversation, conversationNumber(of: event) != conversation { return nil }
        if filtersUsers, !involvesWantedUser(event) { return nil }
        switch format {
        case .jsonl:
            return event.auditJSON(seq: header.seq, timestamp: header.timestamp,
                                   includeSecrets: includeSecrets, recordVersion: header.version, reader: access.reader)
        case .table:
            return ReplayTable.row(event, header: header, includeSecrets: includeSecrets, reader: access.reader)
        }
    }

    /// Learns ids of requested usernames and the sessions of requested users.
    private mutating func track(_ header: RecordHeader, _ payload: UnsafeRawBufferPointer) throws {
        if header.type == EventType.userRegistered.rawValue, !wantedNames.isEmpty,
           case .userRegistered(let e) = try Event.decode(header: header, payload: payload) {
            directory.apply(.userRegistered(e), seq: header.seq, timestamp: header.timestamp)
            switch e.account {
            case let .plain(username, _):
                let key = username.lowercased()
                if wantedNames[key] != nil, directory.userId(named: username) == e.userId {
                    userIds.insert(e.userId)
                    wantedNames[key] = nil
                }
            case let .sealed(nameKey, _):
                if let key = wantedKeys[nameKey], directory.userId(nameKey: nameKey) == e.userId {
                    userIds.insert(e.userId)
                    wantedNames[key] = nil
                    wantedKeys[nameKey] = nil
                }
            }
        } else if header.type == EventType.userLoggedIn.rawValue,
                  case .userLoggedIn(let e) = try Event.decode(header: header, payload: payload),
                  userIds.contains(e.userId) {
            sessions.insert(e.sessionId)
        }
    }

    private func conversationNumber(of event: Event) -> UInt32? {
        switch event {
        case .chatStarted(let e): e.conversation
        case .messageSent(let e): e.conversation
        default: nil
        }
    }

    private func involvesWantedUser(_ event: Event) -> Bool {
        switch event {
        case .userRegistered(let e): userIds.contains(e.userId)
        case .userLoggedIn(let e): userIds.contains(e.userId)
        case .tokenRefreshed(let e): sessions.contains(e.sessionId)
        case .sessionRevoked(let e): sessions.contains(e.sessionId)
        case .userLoggedOut(let e): sessions.contains(e.sessionId)
        case .socketConnected(let e): userIds.contains(e.userId)
        case .socketDisconnected(let e): userIds.contains(e.userId)
        case .serverStarted, .nodeLeft: false
        case .chatStarted(let e): userIds.contains(e.userA) || userIds.contains(e.userB)
        case .messageSent(let e): userIds.contains(e.senderId) || userIds.contains(e.receiverId)
        case .userErased(let e): userIds.contains(e.userId)
        }
    }
}

/// `--format table`: aligned columns for people; the details column is `key=value` pairs.
enum ReplayTable {
    static let heading = pad("SEQ", 10, right: true) + "  " + pad("TIME", 27) + "  " + pad("TYPE", 18) + "  DETAILS"

    static func row(_ event: Event, header: RecordHeader, includeSecrets: Bool, reader: SealedFieldReader) -> String {
        pad(String(header.seq), 10, right: true) + "  " + formatTimestamp(header.timestamp) + "  "
            + pad(event.typeName + (header.version == event.version ? "" : " v\(header.version)"), 18) + "  "
            + details(event, includeSecrets: includeSecrets, reader: reader)
    }

    /// A sealed field as the table shows it: its text, `<sealed>` or `<erased>`.
    private static func sealed(_ opened: OpenedField, _ show: ([UInt8]) -> String?) -> String {
        switch opened {
        case .clear(let bytes): show(bytes) ?? "<sealed>"
        case .hidden: "<sealed>"
        case .erased: "<erased>"
        }
    }

    private static func details(_ event: Event, includeSecrets: Bool, reader: SealedFieldReader) -> String {
        func secret(_ value: String) -> String { includeSecrets ? value : "<redacted>" }
        switch event {
        case .userRegistered(let e):
            switch e.account {
            case let .plain(username, passwordHash):
                return "user=\(e.userId) username=\(jsonQuoted(username)) password_hash=\(secret(passwordHash))"
            case let .sealed(_, box):
                let opened = reader.read(box, field: .account, owner: e.userId)
                let name = sealed(opened) { (try? AccountFields(bytes: $0)).map { jsonQuoted($0.username) } }
                let hash = sealed(opened) { (try? AccountFields(bytes: $0)).map { secret($0.passwordHash) } }
                return "user=\(e.userId) username=\(name) password_hash=\(hash)"
            }
        case .userLoggedIn(let e):
            return "user=\(e.userId) session=\(e.sessionId.hex) refresh_jti=\(secret(e.refreshJti.hex)) expires=\(formatTimestamp(e.expiresAt))"
        case .tokenRefreshed(let e):
            return "session=\(e.sessionId.hex) retired_jti=\(secret(e.retiredJti.hex)) new_jti=\(secret(e.newJti.hex)) expires=\(formatTimestamp(e.expiresAt))"
        case .sessionRevoked(let e):
            return "session=\(e.sessionId.hex) reused_jti=\(secret(e.retiredJti.hex))"
        case .userLoggedOut(let e):
            return "session=\(e.sessionId.hex)"
        case .socketConnected(let e):
            return "user=\(e.userId) socket=\(e.socketId)"
        case .socketDisconnected(let e):
            return "user=\(e.userId) socket=\(e.socketId)"
        case .serverStarted(let e):
            return "epoch=\(e.epoch)\(e.shared ? " shared" : "")"
        case .nodeLeft(let e):
            return "epoch=\(e.epoch)"
        case .chatStarted(let e):
            return "conversation=\(publicConversationId(e.conversation)) users=\(e.userA),\(e.userB)"
        case .messageSent(let e):
            let client = e.clientId.map { " client_id=\(jsonQuoted($0))" } ?? ""
            let text: String = switch e.body {
            case .plain(let text): jsonQuoted(text)
            case .sealed(let box):
                sealed(reader.read(box, field: .messageText, owner: e.senderId)) { jsonQuoted(String(decoding: $0, as: UTF8.self)) }
            }
            return "conversation=\(publicConversationId(e.conversation)) \(e.senderId)->\(e.receiverId)\(client) text=\(text)"
        case .userErased(let e):
            return "user=\(e.userId)"
        }
    }

    private static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        guard s.count < width else { return s }
        let fill = String(repeating: " ", count: width - s.count)
        return right ? fill + s : s + fill
    }
}
