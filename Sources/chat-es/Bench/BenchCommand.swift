import ArgumentParser
import Foundation

/// `chat-es bench`: throughput benchmarks of the log (`log`) and of the projection
/// rebuild (`replay`). They report figures against the targets; they assert nothing.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the event log and the projection rebuild.",
        subcommands: [BenchLogCommand.self, BenchReplayCommand.self, BenchCryptoCommand.self, BenchFsyncCommand.self]
    )
}

/// The directory a benchmark writes its log into: a fresh temporary one, or `<DIR>/log`
/// when `--data` is given (which must not hold a log already: a benchmark never appends
/// to real data).
struct BenchDirectory {
    let root: String
    let createdRoot: Bool
    var logDirectory: String { root + "/log" }

    static func make(data: String?) throws -> BenchDirectory {
        let fm = FileManager.default
        let root = data ?? (NSTemporaryDirectory() + "chat-es-bench-" + UUID().uuidString)
        let created = !fm.fileExists(atPath: root)
        let log = root + "/log"
        if fm.fileExists(atPath: log), let existing = try? SegmentFiles.list(log), !existing.isEmpty {
            throw ToolError.usage("refusing to benchmark into \(log): it already holds a log")
        }
        do {
            try fm.createDirectory(atPath: log, withIntermediateDirectories: true)
        } catch {
            throw ToolError.io("cannot create \(log): \(error.localizedDescription)")
        }
        return BenchDirectory(root: root, createdRoot: created)
    }

    func cleanUp(keep: Bool) {
        if keep {
            print("kept: \(logDirectory)")
            return
        }
        try? FileManager.default.removeItem(atPath: createdRoot ? root : logDirectory)
    }
}

/// Monotonic time for benchmarks.
enum BenchClock {
    static func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    static func seconds(since start: UInt64) -> Double { Double(nanos() - start) / 1e9 }

    /// Wall-clock microseconds, the log's timestamp unit.
    static func wallMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}

/// Figures formatted for the benchmark reports.
enum BenchFormat {
    static func rate(_ count: Double, _ seconds: Double) -> String {
        seconds > 0 ? groupedCount(Int((count / seconds).rounded())) : "n/a"
    }

    static func mbps(_ bytes: Int, _ seconds: Double) -> String {
        seconds > 0 ? String(format: "%.1f MB/s", Double(bytes) / seconds / 1e6) : "n/a"
    }

    static func millis(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

    static func micros(_ nanos: UInt64) -> String { String(format: "%.1f µs", Double(nanos) / 1000) }

    static func percent(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }

    static func target(_ met: Bool) -> String { met ? "met" : "NOT met" }
}

/// Where a benchmark writes its log and whether it is kept: shared by `bench log` and `bench replay`.
struct BenchOutputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write the log into <DIR>/log (must not hold a log) instead of a temporary directory.", valueName: "DIR"))
    var data: String?

    @Flag(help: "Keep the benchmark log afterwards.")
    var keep = false
}

/// The `p` quantile (nearest rank) of `sorted`, which ascends; nil when it is empty.
func quantile<T>(_ sorted: [T], _ p: Double) -> T? {
    sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}
