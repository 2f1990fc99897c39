import ArgumentParser
import EventLog
import Foundation
import Projections

/// `chat-es rebuild`: folds the log into every projection from scratch (or, with
/// `--from-snapshot`, from the newest usable snapshot) on two threads and prints each view's
/// digest, so two rebuilds, or a rebuild and a live server at the same position, can be
/// compared; `--as-of` stops at a seq or a time.
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
            state under <DIR>/snapshots (the only thing this command ever writes), safely \
            beside a running server: run the new version's rebuild --write-snapshot before \
            restarting into it, and the restart replays only the tail. --from-snapshot \
            starts from the newest usable snapshot, exactly as serve starts; its digests \
            must equal those of a full rebuild. \
            Exit codes: 0 ok, 1 corrupt log or undecodable record, 2 usage or I/O error.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    @Option(name: .customLong("as-of"), help: ArgumentHelp("Stop after this seq or time.", valueName: "SEQ|TIME"))
    var asOf: String?

    @Flag(name: .customLong("write-snapshot"), help: "Write the rebuilt state as a snapshot.")
    var writeSnapshot = false

    @Flag(name: .customLong("from-snapshot"), help: "Start from the newest usable snapshot, as serve does, then fold the rest of the log.")
    var fromSnapshot = false

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
            if fromSnapshot && limit != nil { throw ToolError.usage("--from-snapshot folds to the end of the log: no --as-of") }
            var start = ProjectionSet()
            if fromSnapshot {
                let loaded = ProjectionSet.loadNewestSnapshot(from: data.path) { try? LogChain.hash(directory: logDirectory, at: $0) }
                for (file, why) in loaded.skipped { StandardError.write("snapshot \(file.name) skipped: \(why)\n") }
                StandardError.write(loaded.file.map { "starting from snapshot \($0.name)\n" } ?? "no usable snapshot: full replay\n")
                start = loaded.set ?? start
            }
            let (set, chain) = try Self.rebuildWithChain(logDirectory, asOf: limit, from: start)
            let now: Int64 = switch limit {
            case .time(let t): t
            case .seq: set.lastTimestamp
            case nil: currentMicros()
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
                guard chain.end == set.lastSeq else {
                    throw ToolError.usage("a snapshot is taken where a batch ends (seq \(chain.end) here), not at seq \(set.lastSeq): choose that --as-of")
                }
                do {
                    let file = try set.writeSnapshot(to: data.path, chainHash: chain.hash)
                    ProjectionSet.pruneSnapshots(in: data.path, keep: 3)
                    StandardError.write("snapshot written: \(file.path) (views \(ProjectionSet.schemaFingerprint))\n")
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
        try rebuildWithChain(logDirectory, asOf: asOf).set
    }

    /// `rebuild`, with the last batch it read to the end: its last seq and header hash (where
    /// a snapshot of the result may be taken).
    static func rebuildWithChain(_ logDirectory: String, asOf: AsOf?, from start: ProjectionSet = ProjectionSet()) throws
        -> (set: ProjectionSet, chain: (end: UInt64, hash: String)) {
        let cursor = SharedCursor(LogCursor(directory: logDirectory, from: start.lastSeq + 1))
        let progress = ProgressBar(label: "rebuild")
        if progress.isEnabled {
            var total = LogHeadEstimate.lastSeq(logDirectory: logDirectory)
            if case .seq(let last)? = asOf, let t = total { total = min(t, last) }
            progress.setTotal(total)
        }
        defer { progress.finish() }
        var set = start
        try set.replayInParallel(scan: { body in _ = try cursor.cursor.poll(body) }, asOf: asOf) { progress.update($0) }
        // The reader thread is done with the cursor once the fold returns. With nothing after
        // the snapshot to read, the chain's tip is the snapshot's own position.
        if cursor.cursor.lastBatchEnd == 0, set.lastSeq > 0, let hash = try LogChain.hash(directory: logDirectory, at: set.lastSeq) {
            return (set, (set.lastSeq, hash))
        }
        return (set, (cursor.cursor.lastBatchEnd, cursor.cursor.lastBatchHash))
    }
}

/// A cursor handed to the replay's reader thread; read again only after that thread is done.
final class SharedCursor: @unchecked Sendable {
    let cursor: LogCursor

    init(_ cursor: LogCursor) { self.cursor = cursor }
}
