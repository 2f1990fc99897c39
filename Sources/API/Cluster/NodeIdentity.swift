import Foundation

/// The id of a node across restarts, kept in `<data>/node-id` (made at first use): a node that
/// starts again knows its earlier runs are dead, and ends their epochs at once instead of
/// waiting for their heartbeat to time out.
enum NodeIdentity {
    static func load(dataDirectory: String) throws -> String {
        let path = dataDirectory + "/node-id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty { return id }
        }
        let id = UUID().uuidString.lowercased()
        // Losing it costs little: the earlier run's epoch then ends by its heartbeat's timeout.
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return id
    }
}
