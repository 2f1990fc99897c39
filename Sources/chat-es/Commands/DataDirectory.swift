import ArgumentParser
import API
import EventLog
import Foundation

/// The `--data DIR` option shared by the operator tools; the log lives in `<DIR>/log`. With
/// `--postgres URL` the log is the database's, and `<DIR>/log` is the local cache the tool
/// brings level with it first (a node's data directory, or any empty one).
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: ArgumentHelp("Data directory (the log is <DIR>/log).", valueName: "DIR"))
    var path: String = "data"
    @Option(name: .customLong("postgres"),
            help: ArgumentHelp("Read the log from this PostgreSQL database, through the cache in <DIR>/log.", valueName: "URL"))
    var postgres: String?

    init() {}

    init(path: String) {
        self.path = path
        self.postgres = nil
    }

    var logDirectory: String { path + "/log" }

    /// The log directory, or a usage/I-O error (exit 2) when it is missing, so a typo in
    /// `--data` is not mistaken for an empty log.
    func existingLogDirectory() throws -> String {
        if let postgres { return try cachedLogDirectory(postgres) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ToolError.io("no data directory at \(path)")
        }
        guard FileManager.default.fileExists(atPath: logDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ToolError.io("no log directory at \(logDirectory)")
        }
        guard access(logDirectory, R_OK | X_OK) == 0 else {
            throw ToolError.io("cannot read \(logDirectory): \(String(cString: strerror(errno)))")
        }
        return logDirectory
    }
}

extension DataDirectoryOptions {
    /// Brings `<DIR>/log` level with the database and returns it.
    private func cachedLogDirectory(_ address: String) throws -> String {
        let url: PostgresURL
        do { url = try PostgresURL(address) } catch { throw ToolError.usage("--postgres: \(error)") }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // Bringing the cache level cuts and appends segments: never under a running server.
        let held: DataDirectoryLock
        do { held = try DataDirectoryLock.acquire(path) } catch {
            throw ToolError.usage("\(error); to audit the database, give --data an empty directory")
        }
        defer { withExtendedLifetime(held) {} }
        let directory = logDirectory
        let bar = SendableProgress(ProgressBar(label: "fetch"))
        defer { bar.value.finish() }
        _ = try runBlocking {
            try await withPostgresLog(url) { store in
                try await store.syncCache(directory: directory) { seq, head in
                    bar.value.setTotal(head)
                    bar.value.update(seq)
                }
            }
        }
        return directory
    }
}

/// A progress bar handed to the task that fetches; only that task touches it meanwhile.
final class SendableProgress: @unchecked Sendable {
    let value: ProgressBar
    init(_ value: ProgressBar) { self.value = value }
}

/// Runs async work from a synchronous tool's main thread and waits for it. The main thread is
/// not one of the pool's, so waiting here cannot starve the work it waits for.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let box = BlockingResult<T>()
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// The outcome `runBlocking` hands from the task to the waiting thread (the semaphore orders them).
private final class BlockingResult<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// The segment files of a log directory, read without opening the log (which would start a writer).
enum SegmentFiles {
    /// `(path, size)` of each `<20 digits>.seg`, in seq order.
    static func list(_ logDirectory: String) throws -> [(path: String, size: Int)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: logDirectory)
        } catch {
            throw ToolError.io("cannot list \(logDirectory): \(error.localizedDescription)")
        }
        return names.filter { $0.hasSuffix(".seg") && $0.count == 24 && UInt64($0.prefix(20)) != nil }
            .sorted()
            .map { name in
                let path = logDirectory + "/" + name
                var st = stat()
                let size = stat(path, &st) == 0 ? Int(st.st_size) : 0
                return (path, size)
            }
    }
}
