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

    static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw EventLogError.io("cannot create \(path): \(error)")
        }
    }
}
