import ArgumentParser
import Foundation

/// The `--data DIR` option shared by the operator tools; the log lives in `<DIR>/log`.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: ArgumentHelp("Data directory (the log is <DIR>/log).", valueName: "DIR"))
    var path: String = "data"

    init() {}

    init(path: String) { self.path = path }

    var logDirectory: String { path + "/log" }

    /// The log directory, or a usage/I-O error (exit 2) when it is missing, so a typo in
    /// `--data` is not mistaken for an empty log.
    func existingLogDirectory() throws -> String {
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
