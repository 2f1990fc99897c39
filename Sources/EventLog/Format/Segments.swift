import Foundation

/// Naming and listing of segment files: `<first seq, 20 digits>.seg` in the log directory.
enum Segments {
    static func fileName(firstSeq: UInt64) -> String {
        let digits = String(firstSeq)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg"
    }

    /// The segments of `directory`, ordered by first seq.
    static func list(_ directory: String) throws -> [(path: String, firstSeq: UInt64)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw EventLogError.io("cannot list \(directory): \(error)")
        }
        return names.compactMap { name -> (String, UInt64)? in
            guard name.hasSuffix(".seg"), name.count == 24, let seq = UInt64(name.prefix(20)) else { return nil }
            return (directory + "/" + name, seq)
        }.sorted { $0.1 < $1.1 }
    }
}

/// A read-only mapping of part of a file, unmapped when released. Segments only ever grow while
/// they are read (the writer appends; recovery truncates only before anyone reads), so the
/// mapped range stays backed by the file.
final class MappedBytes {
    private let base: UnsafeMutableRawPointer?
    private let length: Int
    private let skip: Int

    init(base: UnsafeMutableRawPointer?, length: Int, skip: Int) {
        self.base = base
        self.length = length
        self.skip = skip
    }

    deinit {
        if let base { munmap(base, length) }
    }

    var count: Int { length - skip }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + skip, count: length - skip))
    }
}

/// Small wrappers over POSIX file calls that turn errno into `EventLogError`.
enum FileIO {
    static func errnoText(_ what: String) -> String {
        "\(what): \(String(cString: strerror(errno)))"
    }

    /// Reads a file from `from` to its end (or at most `limit` bytes).
    static func readAll(_ path: String, from: Int = 0, limit: Int? = nil) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EventLogError.io(errnoText("open \(path)")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw EventLogError.io(errnoText("stat \(path)")) }
        let size = min(max(Int(st.st_size) - from, 0), limit ?? Int.max)
        var out = [UInt8](repeating: 0, count: size)
        let got = try out.withUnsafeMutableBytes { try preadFully(fd, $0, offset: from, path: path) }
        if got < size { out.removeSubrange(got...) }
        return out
    }

    /// The bytes of a file from `from` to its current end, mapped read-only (empty past the end).
    static func map(_ path: String, from: Int) throws -> MappedBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EventLogError.io(errnoText("open \(path)")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw EventLogError.io(errnoText("stat \(path)")) }
        let size = Int(st.st_size)
        guard size > from else { return MappedBytes(base: nil, length: 0, skip: 0) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = from / page * page
        let length = size - start
        guard let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, off_t(start)), base != MAP_FAILED else {
            throw EventLogError.io(errnoText("mmap \(path)"))
        }
        _ = madvise(base, length, MADV_SEQUENTIAL)
        return MappedBytes(base: base, length: length, skip: from - start)
    }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    static func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int, path: String) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw EventLogError.io(errnoText("read \(path)"))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw EventLogError.io(errnoText("write \(path)"))
            }
            done += n
        }
    }

    static func sync(_ fd: Int32, path: String) throws {
        #if os(Linux)
        let rc = fdatasync(fd)
        #else
        let rc = fsync(fd)
        #endif
        if rc != 0 { throw EventLogError.io(errnoText("fsync \(path)")) }
    }

    static func closeFD(_ fd: Int32) {
        _ = close(fd)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Writes `bytes` to `path` through a synced temp file renamed over it, so a crash leaves
    /// the old content or the new, never a mix.
    static func replaceDurably(_ path: String, with bytes: [UInt8]) throws {
        let temp = path + ".tmp"
        let fd = Foundation.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EventLogError.io(errnoText("create \(temp)")) }
        defer { closeFD(fd) }
        try bytes.withUnsafeBytes { try writeFully(fd, $0, path: temp) }
        try sync(fd, path: temp)
        guard rename(temp, path) == 0 else { throw EventLogError.io(errnoText("rename \(temp)")) }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw EventLogError.io("cannot create \(path): \(error)")
        }
    }
}
