import Foundation

/// The stock `lz4` command line tool as the yardstick for decompression speed: it reads
/// the same segment files (skipping the batch-header frames) and writes to /dev/null.
enum LZ4Reference {
    /// The fastest of `runs` timings of `lz4 -dcm <files> > /dev/null`, in seconds;
    /// nil when `lz4` is not installed. Process start-up is included, as a user would see it.
    static func decompressSeconds(_ files: [String], runs: Int = 3) throws -> Double? {
        guard let tool = executable("lz4") else { return nil }
        var best = Double.infinity
        for _ in 0..<max(1, runs) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            // -m: several input files; with -c they all go to stdout, in order.
            process.arguments = ["-dcm"] + files
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            let start = BenchClock.nanos()
            try process.run()
            process.waitUntilExit()
            let seconds = BenchClock.seconds(since: start)
            guard process.terminationStatus == 0 else {
                throw ToolError.io("lz4 -dcm exited with status \(process.terminationStatus)")
            }
            best = min(best, seconds)
        }
        return best
    }

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static let missingNote = "lz4 not installed (apt-get install -y lz4): ratio not measured"
}
