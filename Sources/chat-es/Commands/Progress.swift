import Foundation

/// A one-line progress bar on stderr for commands that read the whole log: events done,
/// events/s and, when the total is known, time left. Drawn only when stderr is a
/// terminal, and at most ten times a second, so pipes and logs stay clean and the
/// hot loops pay one clock read per call.
final class ProgressBar {
    private let label: String
    private let enabled: Bool
    private var total: UInt64?
    private let started = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var drawn = false

    /// `total` may be nil (no ETA) or set later with `setTotal`.
    init(label: String, total: UInt64? = nil, enabled: Bool = ProgressBar.stderrIsTerminal) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    var isEnabled: Bool { enabled }

    func setTotal(_ total: UInt64?) { self.total = total }

    /// Call as often as convenient; redraws only when 100 ms passed since the last draw.
    func update(_ done: UInt64) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastDraw >= 100_000_000 else { return }
        lastDraw = now
        draw(done, elapsed: Double(now - started) / 1e9)
    }

    /// Clears the line so the command's own output starts on a clean terminal line.
    func finish() {
        guard enabled, drawn else { return }
        StandardError.write("\r\u{1B}[2K")
        drawn = false
    }

    private func draw(_ done: UInt64, elapsed: Double) {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var line = "\r\u{1B}[2K\(label) \(groupedCount(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            line += " / \(groupedCount(total)) ["
                + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                + "] \(Int(fraction * 100))%"
            line += "  \(formatRate(rate)) ev/s"
            if rate > 0, done < total {
                line += "  ETA \(formatDuration(Double(total - done) / rate))"
            }
        } else {
            line += " events  \(formatRate(rate)) ev/s"
        }
        StandardError.write(line)
        drawn = true
    }
}

/// `1234567` → `1,234,567`.
func groupedCount<T: BinaryInteger>(_ n: T) -> String {
    let digits = Array(String(n))
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0, c != "-" { out.append(",") }
        out.append(c)
    }
    return out
}

/// `1.25M`, `840k`, `312`.
func formatRate(_ r: Double) -> String {
    if r >= 1e6 { return String(format: "%.2fM", r / 1e6) }
    if r >= 1e3 { return String(format: "%.0fk", r / 1e3) }
    return String(format: "%.0f", r)
}

/// `1:05:03` or `4:07`.
func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded(.up))
    if s >= 3600 { return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) }
    return String(format: "%d:%02d", s / 60, s % 60)
}

/// A quick estimate of the log's last seq for progress bars: walks the batch headers of
/// the last segment alone (no decompression, no checks beyond the magic). Wrong answers
/// only make the ETA wrong; verification is `LogVerifier`'s job.
enum LogHeadEstimate {
    // The batch header's documented layout (see BatchHeader): u32 magic, u32 size,
    // then u16 version, u16 pad, u32 count, u64 first seq, … u32 frame length at +36.
    private static let magic: UInt32 = 0x184D_2A50
    private static let headerSize = 144

    static func lastSeq(logDirectory: String) -> UInt64? {
        guard let last = try? SegmentFiles.list(logDirectory).last,
              let firstSeq = UInt64((last.path as NSString).lastPathComponent.prefix(20))
        else { return nil }
        let fd = open(last.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: headerSize)
        var offset = 0
        var seq = firstSeq - 1
        while true {
            let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, headerSize, off_t(offset)) }
            guard n == headerSize else { break }
            let (m, count, first, frame) = header.withUnsafeBytes { b in
                (b.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian,
                 b.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian,
                 b.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian,
                 b.loadUnaligned(fromByteOffset: 44, as: UInt32.self).littleEndian)
            }
            guard m == magic, count > 0 else { break }
            seq = first + UInt64(count) - 1
            offset += headerSize + Int(frame)
        }
        return seq
    }
}
