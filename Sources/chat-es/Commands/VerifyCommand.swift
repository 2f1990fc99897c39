import ArgumentParser
import EventLog
import Foundation

/// `chat-es verify`: checks every segment (frame checksums, record framing, seq
/// continuity, records hashes, the hash chain) and prints the head digest an auditor
/// can write down. Read-only through `LogVerifier`, so it runs beside the server.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every segment of the log and print the head digest.",
        discussion: """
            The head digest (seq and the hash of the last batch header) commits to every \
            record up to that seq: a later verify reaching the same seq with the same hash \
            proves nothing before it changed. Exit codes: 0 intact, 1 a fault (the message \
            names the file and byte offset), 2 usage or I/O error.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        try withToolExitCodes {
            let logDirectory = try data.existingLogDirectory()
            let progress = ProgressBar(label: "verify")
            if progress.isEnabled { progress.setTotal(LogHeadEstimate.lastSeq(logDirectory: logDirectory)) }
            let report: VerifyReport
            do {
                defer { progress.finish() }
                report = try LogVerifier.verify(directory: logDirectory) { progress.update($0) }
            }
            let ratio = report.compressedBytes > 0 ? Double(report.rawBytes) / Double(report.compressedBytes) : 0
            let out = StandardOutput()
            out.appendLine("log:              \(logDirectory)")
            out.appendLine("segments:         \(report.segments)")
            out.appendLine("batches:          \(report.batches)")
            out.appendLine("events:           \(report.events)")
            out.appendLine("bytes compressed: \(report.compressedBytes)")
            out.appendLine("bytes raw:        \(report.rawBytes)")
            out.appendLine("ratio:            \(String(format: "%.2f", ratio))")
            out.appendLine("head digest:      \(report.headSeq) \(report.headHash)")
            out.flush()
        }
    }
}
