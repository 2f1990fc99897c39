import Foundation

/// An exclusive lock on a data directory (`flock` on `<data>/lock`), held for the life of the
/// process: two servers on one directory would write the same segments, and two nodes of a
/// shared log on one directory would also share one node id. The kernel drops the lock when
/// the process ends, however it ends.
public final class DataDirectoryLock: @unchecked Sendable {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Takes the lock, or throws naming the directory when another process holds it.
    public static func acquire(_ directory: String) throws -> DataDirectoryLock {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DataDirectoryLockError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DataDirectoryLockError(description: "another chat-es process serves \(directory) (it holds \(path)); "
                + "give each server, and each node of a shared PostgreSQL log, a --data directory of its own")
        }
        return DataDirectoryLock(fd: fd)
    }
}

/// Why a data directory could not be taken.
public struct DataDirectoryLockError: Error, CustomStringConvertible {
    public var description: String
}
