import ArgumentParser
import Foundation

/// `chat-es bench fsync`: the disk's own latency, as a reference for the server's acks: appends
/// of `--bytes` to a file, each followed by fdatasync, at `--rate` per second (the rate of the
/// server's group commits) for `--duration` seconds, on the filesystem of `--dir`.
struct BenchFsyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsync", abstract: "Time small appends + fdatasync at a given rate (a reference for ack latency).")

    @Option(help: ArgumentHelp("Directory on the filesystem to test (a temporary file is made there).", valueName: "DIR"))
    var dir = "."

    @Option(help: ArgumentHelp("Appends (each synced) per second; 0 = back to back.", valueName: "R"))
    var rate: Double = 1000

    @Option(help: ArgumentHelp("Bytes per append.", valueName: "B"))
    var bytes = 512

    @Option(help: ArgumentHelp("Seconds.", valueName: "S"))
    var duration: Double = 10

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        try withToolExitCodes {
            guard rate >= 0, bytes > 0, duration > 0 else { throw ToolError.usage("--rate ≥ 0, --bytes > 0, --duration > 0") }
            let path = dir + "/.chat-es-bench-fsync-\(getpid())"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ToolError.io("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer {
                close(fd)
                unlink(path)
            }
            let block = [UInt8](repeating: 0x5A, count: bytes)
            var latencies: [Double] = []
            let start = BenchClock.nanos()
            let end = start + UInt64(duration * 1e9)
            var next = start
            let interval = rate > 0 ? UInt64(1e9 / rate) : 0
            while BenchClock.nanos() < end {
                if interval > 0 {
                    let now = BenchClock.nanos()
                    if next > now { usleep(UInt32((next - now) / 1000)) }
                    next += interval
                }
                let t0 = BenchClock.nanos()
                _ = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard fdatasync(fd) == 0 else { throw ToolError.io("fdatasync: \(String(cString: strerror(errno)))") }
                latencies.append(Double(BenchClock.nanos() - t0) / 1e6)
            }
            latencies.sort()
            func q(_ p: Double) -> Double { quantile(latencies, p) ?? 0 }
            let mean = latencies.reduce(0, +) / Double(max(latencies.count, 1))
            if json {
                print(String(format: "{\"syncs\":%d,\"rate\":%.1f,\"bytes\":%d,\"ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"mean\":%.3f}}",
                             latencies.count, rate, bytes, q(0.5), q(0.99), q(0.999), mean))
            } else {
                print("bench fsync: \(latencies.count) appends of \(bytes) B + fdatasync at \(rate > 0 ? String(format: "%.0f/s", rate) : "full speed") in \(dir)")
                print(String(format: "  fdatasync ms p50 %.3f  p99 %.3f  p999 %.3f  mean %.3f", q(0.5), q(0.99), q(0.999), mean))
            }
        }
    }
}
