import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es rebuild`: folds the log into every projection from scratch (snapshots are
/// ignored) and prints each view's digest, so two rebuilds, or a rebuild and a live
/// server at the same position, can be compared; `--as-of` stops at a seq or a time.
struct RebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild all projections from the log and print their digests.",
        discussion: """
            --as-of takes a seq (a number) or an RFC 3339 time; time-dependent answers \
            (who was online, which sessions were open) are evaluated at that time, or at \
            the last folded event's time for a seq, or now without --as-of. With --print, \
            stdout carries only the view JSON (one line per view) and the digests go to \
            stderr, so the output can be piped to jq. --write-snapshot stores the rebuilt \
            state under <DIR>/snapshots (the only thing this command ever writes). \
            Exit codes: 0 ok, 1 corrupt log or undecodable record, 2 usage or I/O error.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    @Option(name: .customLong("as-of"), help: ArgumentHelp("Stop after this seq or time.", valueName: "SEQ|TIME"))
    var asOf: String?

    @Flag(name: .customLong("write-snapshot"), help: "Write the rebuilt state as a snapshot.")
    var writeSnapshot = false

    @Option(name: .customLong("print"), help: ArgumentHelp(
        "Print a view as JSON: users, sessions, presence, friendship or conversations; repeatable.",
        valueName: "VIEW"))
    var views: [String] = []

    func run() throws {
        try withToolExitCodes {
            let logDirectory = try data.existingLogDirectory()
            let limit = try asOf.map(Self.parseAsOf)
            for view in views where !ProjectionSet.viewNames.contains(view) {
                throw ToolError.usage("unknown view \(view) (known: \(ProjectionSet.viewNames.joined(separator: ", ")))")
            }
            let set = try Self.rebuild(logDirectory, asOf: limit)
            let now: Int64 = switch limit {
            case .time(let t): t
            case .seq: set.lastTimestamp
            case nil: Int64(Date().timeIntervalSince1970 * 1_000_000)
            }
            let out = StandardOutput()
            var summary = "position \(set.lastSeq)\n"
            if set.lastSeq > 0 { summary += "time \(formatTimestamp(set.lastTimestamp))\n" }
            let digest = set.digest()
            for name in ProjectionSet.viewNames { summary += "\(name) \(digest[name] ?? "")\n" }
            if views.isEmpty {
                out.append(summary)
            } else {
                StandardError.write(summary)
                for view in views { out.appendLine(set.viewJSON(view, now: now) ?? "{}") }
            }
            out.flush()
            if writeSnapshot {
                do {
                    let path = try set.writeSnapshot(to: data.path)
                    StandardError.write("snapshot written: \(path)\n")
                } catch {
                    throw ToolError.io("cannot write snapshot: \(error)")
                }
            }
        }
    }

    static func parseAsOf(_ text: String) throws -> AsOf {
        if let seq = UInt64(text) { return .seq(seq) }
        if let time = parseTimestamp(text) { return .time(time) }
        throw ToolError.usage("--as-of wants a seq or an RFC 3339 time like 2026-01-31T12:00:00Z, not \(text)")
    }

    /// The fold, over the records on disk when it starts reading (a running server may
    /// append more meanwhile; those are left for the next rebuild).
    static func rebuild(_ logDirectory: String, asOf: AsOf?) throws -> ProjectionSet {
        let cursor = LogCursor(directory: logDirectory, from: 1)
        let progress = ProgressBar(label: "rebuild")
        if progress.isEnabled {
            var total = LogHeadEstimate.lastSeq(logDirectory: logDirectory)
            if case .seq(let last)? = asOf, let t = total { total = min(t, last) }
            progress.setTotal(total)
        }
        defer { progress.finish() }
        return try ProjectionSet.rebuild(scan: { body in try cursor.poll(body) }, asOf: asOf) { progress.update($0) }
    }
}
