import Foundation
import Testing
import EventLog
import Projections

/// Runs the `chat-es` executable built beside the test bundle.
enum CLI {
    /// `<directory of the test bundle>/chat-es`: SwiftPM puts the xctest bundle and the
    /// executable in the same `.build/<config>` folder and builds both for `swift test`.
    static let binary: String? = {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append((exe as NSString).deletingLastPathComponent)
        }
        candidates.append((CommandLine.arguments[0] as NSString).deletingLastPathComponent)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        for dir in candidates {
            // On Linux the bundle is a file in the build folder; elsewhere a directory in it.
            for base in [dir, (dir as NSString).deletingLastPathComponent] {
                let path = base + "/chat-es"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
        }
        return nil
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String

        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    /// Runs to completion; output goes through temporary files so big outputs cannot block on a full pipe.
    static func run(_ arguments: [String]) throws -> Result {
        let binary = try #require(binary, "chat-es executable not found next to the test bundle; run `swift build` first")
        let tmp = NSTemporaryDirectory() + "chat-es-cli-" + UUID().uuidString
        _ = FileManager.default.createFile(atPath: tmp + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: tmp + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: tmp + ".out")
            try? FileManager.default.removeItem(atPath: tmp + ".err")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: tmp + ".out")
        process.standardError = FileHandle(forWritingAtPath: tmp + ".err")
        try process.run()
        process.waitUntilExit()
        let out = try String(contentsOfFile: tmp + ".out", encoding: .utf8)
        let err = try String(contentsOfFile: tmp + ".err", encoding: .utf8)
        return Result(status: process.terminationStatus, stdout: out, stderr: err)
    }

    /// Parses JSON lines into objects.
    static func objects(_ lines: [String]) throws -> [[String: Any]] {
        try lines.map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    static func seqs(_ result: Result) throws -> [UInt64] {
        try objects(result.lines).map { try #require(($0["seq"] as? NSNumber)?.uint64Value) }
    }
}

/// A child process whose stdout is collected in the background, for `replay --follow`.
final class RunningCLI: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    init(_ arguments: [String]) throws {
        let binary = try #require(CLI.binary, "chat-es executable not found next to the test bundle")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.collected.append(data)
            self.lock.unlock()
        }
        try process.run()
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Waits up to `timeout` seconds for a line that satisfies `match`.
    func waitForLine(timeout: Double = 15, _ match: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: match) { return line }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return nil
    }

    /// SIGINT, then the exit status.
    func interruptAndWait(timeout: Double = 10) async -> Int32? {
        process.interrupt()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        if process.isRunning {
            process.terminate()
            return nil
        }
        return process.terminationStatus
    }
}

/// A temporary directory removed when dropped.
final class TempDir {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "chat-es-clitest-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
