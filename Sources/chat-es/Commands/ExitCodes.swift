import ArgumentParser
import EventLog
import Foundation
import Projections

/// The exit codes every operator tool shares: 0 ok, 1 problem found in the log
/// (corruption, a record that does not decode), 2 usage or I/O error.
enum ToolExit {
    static let ok: Int32 = 0
    static let problem: Int32 = 1
    static let usage: Int32 = 2
}

/// An error a tool reports itself, with the exit code it maps to.
struct ToolError: Error, CustomStringConvertible {
    var code: Int32
    var description: String

    static func usage(_ message: String) -> ToolError { ToolError(code: ToolExit.usage, description: message) }
    static func io(_ message: String) -> ToolError { ToolError(code: ToolExit.usage, description: message) }
    static func problem(_ message: String) -> ToolError { ToolError(code: ToolExit.problem, description: message) }
}

/// Runs a tool body, turning its errors into a message on stderr and the agreed exit code.
/// Errors are classified here, in one place, so every command answers alike.
func withToolExitCodes<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let (code, message) = classify(error)
        StandardError.write("chat-es: \(message)\n")
        throw ExitCode(code)
    }
}

/// The async twin of `withToolExitCodes` (the benchmarks await the log).
func withToolExitCodesAsync<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let (code, message) = classify(error)
        StandardError.write("chat-es: \(message)\n")
        throw ExitCode(code)
    }
}

private func classify(_ error: Error) -> (Int32, String) {
    switch error {
    case let e as ToolError:
        return (e.code, e.description)
    case let e as EventLogError:
        switch e {
        case .corrupt, .gap: return (ToolExit.problem, e.description)
        default: return (ToolExit.usage, e.description)
        }
    case let e as EventDecodingError:
        return (ToolExit.problem, "record does not decode: \(e.description)")
    default:
        // A PostgreSQL error's own description hides the server's message; this shows it.
        return (ToolExit.usage, PostgresLog.describe(error))
    }
}

/// Unbuffered writes to fd 2, for messages that must not wait behind stdout.
enum StandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Foundation.write(2, buffer.baseAddress! + done, buffer.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }
}

extension ChatES {
    /// ArgumentParser's entry point, except that usage errors exit 2 instead of
    /// EX_USAGE (64), so every subcommand keeps the 0 / 1 / 2 contract.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                StandardError.write(fullMessage(for: error) + "\n")
                Foundation.exit(ToolExit.usage)
            }
            exit(withError: error)
        }
    }
}

/// Buffered writes to fd 1: audits print millions of lines, so they are gathered into
/// large chunks instead of one `print` (and one syscall) per line.
final class StandardOutput {
    private var buffer: [UInt8] = []
    private let limit: Int

    init(limit: Int = 1 << 20) {
        self.limit = limit
        buffer.reserveCapacity(limit + 4096)
    }

    func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= limit { flush() }
    }

    func appendLine(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= limit { flush() }
    }

    /// Writes everything buffered. A reader that went away (`| head`) ends the
    /// program quietly, as it would for any Unix filter.
    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = Foundation.write(1, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { Foundation.exit(ToolExit.ok) }
                    StandardError.write("chat-es: write to stdout: \(String(cString: strerror(errno)))\n")
                    Foundation.exit(ToolExit.usage)
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}
