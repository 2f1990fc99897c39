import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es stats`: counts by event type, users, conversations, messages, log size,
/// compression ratio and events per UTC day, from one header-only pass over the log.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarise the log: counts by type, users, conversations, messages, size, events per day.",
        discussion: """
            Users, conversations and messages count the UserRegistered, ChatStarted and \
            MessageSent records. Exit codes: 0 ok, 1 corrupt log, 2 usage or I/O error.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        try withToolExitCodes {
            let logDirectory = try data.existingLogDirectory()
            let segments = try SegmentFiles.list(logDirectory)
            let counts = try LogCounts.count(logDirectory)
            let out = StandardOutput()
            out.append(counts.report(segments: segments))
            out.append(Self.snapshotReport(data.path))
            if let address = data.postgres { out.append(try Self.nodesReport(address)) }
            out.flush()
        }
    }
}

extension StatsCommand {
    /// The nodes serving the database: epoch, address and heartbeat age.
    static func nodesReport(_ address: String) throws -> String {
        let url = try PostgresURL(address)
        let nodes = try runBlocking { try await withPostgresLog(url) { try await $0.liveNodes() } }
        var s = "\nnodes serving \(url) (a node without a heartbeat for 5 s is taken for dead):\n"
        if nodes.isEmpty { return s + "  none\n" }
        for node in nodes {
            s += "  epoch \(node.epoch)  \(node.address)  heartbeat \(String(format: "%.1f", node.age)) s ago\n"
        }
        return s
    }

    /// The snapshots under the data directory: seq, age, size, and whether this build can
    /// start from them (same view versions).
    static func snapshotReport(_ dataDirectory: String) -> String {
        let files = ProjectionSet.snapshotFiles(in: dataDirectory)
        var s = "\nsnapshots (views of this build: \(ProjectionSet.schemaFingerprint)):\n"
        if files.isEmpty { return s + "  none\n" }
        let now = Date().timeIntervalSince1970
        for file in files.reversed() {
            let seq = groupedCount(file.seq)
            s += "  seq " + String(repeating: " ", count: max(0, 14 - seq.count)) + seq
                + "  age " + formatAge(now - file.modified).padding(toLength: 8, withPad: " ", startingAt: 0)
                + "  " + String(repeating: " ", count: max(0, 13 - groupedCount(file.size).count)) + groupedCount(file.size) + " B"
                + "  " + (file.fingerprint == ProjectionSet.schemaFingerprint ? "usable" : "other views (\(file.fingerprint))") + "\n"
        }
        return s
    }

    static func formatAge(_ seconds: Double) -> String {
        let s = Int(max(seconds, 0))
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86_400) d"
    }
}

/// What one pass over the record headers learns; no payload is decoded.
struct LogCounts {
    var events: UInt64 = 0
    var byType: [UInt16: UInt64] = [:]
    var eventsPerDay: [Int64: UInt64] = [:]
    var rawBytes = 0
    var firstTimestamp: Int64?
    var lastTimestamp: Int64?
    var lastSeq: UInt64 = 0

    static func count(_ logDirectory: String) throws -> LogCounts {
        var counts = LogCounts()
        let cursor = LogCursor(directory: logDirectory, from: 1)
        let progress = ProgressBar(label: "stats")
        if progress.isEnabled { progress.setTotal(LogHeadEstimate.lastSeq(logDirectory: logDirectory)) }
        defer { progress.finish() }
        // Counting into a flat array keeps the per-record work to a few adds.
        var perType = [UInt64](repeating: 0, count: Int(UInt16.max) + 1)
        var day: Int64 = .min
        var dayCount: UInt64 = 0
        try cursor.poll { header, _ in
            perType[Int(header.type)] += 1
            let d = floorDiv(header.timestamp, 86_400_000_000)
            if d != day {
                if dayCount > 0 { counts.eventsPerDay[day, default: 0] += dayCount }
                day = d
                dayCount = 0
            }
            dayCount += 1
            if counts.firstTimestamp == nil { counts.firstTimestamp = header.timestamp }
            counts.lastTimestamp = header.timestamp
            counts.lastSeq = header.seq
            counts.events += 1
            if counts.events & 0xFFFF == 0 { progress.update(header.seq) }
            return true
        }
        if dayCount > 0 { counts.eventsPerDay[day, default: 0] += dayCount }
        for (type, n) in perType.enumerated() where n > 0 { counts.byType[UInt16(type)] = n }
        counts.rawBytes = cursor.rawBytesRead
        return counts
    }

    func count(of type: EventType) -> UInt64 { byType[type.rawValue] ?? 0 }

    func report(segments: [(path: String, size: Int)]) -> String {
        let compressed = segments.reduce(0) { $0 + $1.size }
        let ratio = compressed > 0 ? Double(rawBytes) / Double(compressed) : 0
        var s = ""
        func line(_ key: String, _ value: String) {
            s += key + ":" + String(repeating: " ", count: max(1, 20 - key.count)) + value + "\n"
        }
        line("events", groupedCount(events))
        line("last seq", String(lastSeq))
        if let first = firstTimestamp, let last = lastTimestamp {
            line("first event", formatTimestamp(first))
            line("last event", formatTimestamp(last))
        }
        line("users", groupedCount(count(of: .userRegistered)))
        line("conversations", groupedCount(count(of: .chatStarted)))
        line("messages", groupedCount(count(of: .messageSent)))
        line("segments", String(segments.count))
        line("log bytes", "\(groupedCount(compressed)) on disk, \(groupedCount(rawBytes)) raw")
        line("compression ratio", String(format: "%.2f", ratio))
        s += "\nevents by type:\n"
        for type in byType.keys.sorted() {
            let name = Event.typeName(for: type) ?? "unknown type \(type)"
            s += "  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + groupedCount(byType[type] ?? 0) + "\n"
        }
        s += "\nevents per day (UTC):\n"
        for day in eventsPerDay.keys.sorted() {
            let date = formatTimestamp(day * 86_400_000_000).prefix(10)
            s += "  \(date)  \(groupedCount(eventsPerDay[day] ?? 0))\n"
        }
        return s
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
