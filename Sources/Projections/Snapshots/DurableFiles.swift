#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file operation (snapshots, the key store, the master key file), naming the path and errno.
public struct FileError: Error, CustomStringConvertible {
    public var description: String

    init(_ operation: String, _ path: String, errno code: Int32 = errno) {
        description = "\(operation) \(path): \(String(cString: strerror(code)))"
    }
}

/// Thin POSIX file helpers for snapshots and keys: both need explicit fsync of the file and of
/// its directory, which Foundation does not offer.
enum DurableFiles {
    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw FileError("mkdir", path)
        }
    }

    /// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
    /// `mode` is the new file's permission bits (0600 for keys).
    static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String, mode: mode_t = 0o644) throws {
        let temp = "\(path).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw FileError("open", temp) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            defer { close(fd) }
            try bytes.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return }
                var offset = 0
                while offset < buffer.count {
                    let n = write(fd, base + offset, buffer.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileError("write", temp)
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw FileError("fsync", temp) }
        }
        guard rename(temp, path) == 0 else { throw FileError("rename", temp) }
        ok = true
        try syncDirectory(directory)
    }

    /// Makes a directory's entries (a rename, a new file) durable.
    static func syncDirectory(_ directory: String) throws {
        let dirFd = open(directory, O_RDONLY)
        guard dirFd >= 0 else { throw FileError("open", directory) }
        defer { close(dirFd) }
        guard fsync(dirFd) == 0 else { throw FileError("fsync", directory) }
    }

    /// Appends `bytes` to an existing file and syncs its data; false if the file does not exist.
    static func appendDurably(_ bytes: [UInt8], to path: String) throws -> Bool {
        let fd = open(path, O_WRONLY | O_APPEND)
        if fd < 0 && errno == ENOENT { return false }
        guard fd >= 0 else { throw FileError("open", path) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError("write", path)
            }
            offset += n
        }
        guard fdatasync(fd) == 0 else { throw FileError("fdatasync", path) }
        return true
    }

    /// Cuts `path` to `length` bytes, durably.
    static func truncate(_ path: String, to length: Int) throws {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw FileError("open", path) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(length)) == 0 else { throw FileError("ftruncate", path) }
        guard fsync(fd) == 0 else { throw FileError("fsync", path) }
    }

    /// The whole file, read into one buffer of its size (a snapshot is tens of megabytes:
    /// growing an array chunk by chunk copied it several times).
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = Int(st.st_size)
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var done = 0
            while done < size {
                let n = read(fd, buffer.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
            failed = done != size
            count = failed ? 0 : done
        }
        return failed ? nil : bytes
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            names.append(name)
        }
        return names
    }

    /// Seconds since the epoch of the last change; 0 if the file cannot be read.
    static func modificationTime(_ path: String) -> Double {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// True if a process with this id exists (it may belong to someone else).
    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    static func remove(_ path: String) {
        unlink(path)
    }
}
