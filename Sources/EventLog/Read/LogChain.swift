import Foundation

/// The hash chain read from a log directory without opening the log (which would start a
/// writer): for the read-only tools that must check a snapshot's position against the log.
public enum LogChain {
    /// The hash (hex) of the header of the batch that ends exactly at `seq`; nil if no batch
    /// ends there (mid-batch, or past the end). Reads only batch headers of one segment.
    public static func hash(directory: String, at seq: UInt64) throws -> String? {
        if seq == 0 { return hexString(BatchHeader.zeroHash) }
        guard let segment = try Segments.list(directory).last(where: { $0.firstSeq <= seq }) else { return nil }
        let fd = open(segment.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EventLogError.io(FileIO.errnoText("open \(segment.path)")) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: BatchHeader.encodedSize)
        var offset = 0
        while true {
            let got = try bytes.withUnsafeMutableBytes { try FileIO.preadFully(fd, $0, offset: offset, path: segment.path) }
            guard got == bytes.count, case let .success(header) = bytes.withUnsafeBytes({ BatchHeader.decode($0) }) else {
                return nil
            }
            if header.lastSeq == seq { return hexString(header.headerHash) }
            if header.lastSeq > seq { return nil }
            offset += BatchHeader.encodedSize + Int(header.frameLength)
        }
    }
}
