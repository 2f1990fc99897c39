/// Snapshots: the whole `ProjectionSet` at a log position, so start-up replays only
/// the records after it.
///
/// File: `<data dir>/snapshots/<lastSeq, 20 digits>.snap`, little-endian:
/// `"CHATSNAP"`, u32 format, u64 lastSeq, i64 lastTimestamp, u64 plaintextRecords, u16 view count, per view
/// (string name, u32 version), u64 body size, u64 FNV-1a of the header so far and the
/// body, then the body
/// (each view's canonical encoding in `viewNames` order) as LZ4 chunks. The header is
/// uncompressed so stale versions are rejected before any decompression.
extension ProjectionSet {
    static let snapshotMagic: [UInt8] = Array("CHATSNAP".utf8)
    static let snapshotFormat: UInt32 = 2

    /// The snapshot directory inside a data directory.
    public static func snapshotDirectory(in dataDir: String) -> String { "\(dataDir)/snapshots" }

    /// Writes this state as `snapshots/<lastSeq>.snap` under `dataDir` (created if
    /// needed) atomically and durably; returns the file's path. Takes a while for
    /// big states: call it on a copy, off the Ledger.
    @discardableResult
    public func writeSnapshot(to dataDir: String) throws -> String {
        let dir = Self.snapshotDirectory(in: dataDir)
        try DurableFiles.makeDirectory(dataDir)
        try DurableFiles.makeDirectory(dir)
        let path = "\(dir)/\(Self.snapshotFileName(seq: lastSeq))"
        try DurableFiles.writeAtomically(snapshotBytes(), to: path, directory: dir)
        return path
    }

    func snapshotBytes() -> [UInt8] {
        var body = ByteWriter(capacity: 1 << 16)
        for name in Self.viewNames { body.raw(canonicalBytes(of: name)) }

        var w = ByteWriter(capacity: body.bytes.count / 2 + 256)
        w.raw(Self.snapshotMagic)
        w.fixed(Self.snapshotFormat)
        w.fixed(lastSeq)
        w.fixed(lastTimestamp)
        w.fixed(plaintextRecords)
        w.fixed(UInt16(Self.viewNames.count))
        for name in Self.viewNames {
            w.string(name)
            w.fixed(UInt32(Self.versions[name] ?? 0))
        }
        w.fixed(UInt64(body.bytes.count))
        var checksum = FNV1a64()
        checksum.update(w.bytes)
        checksum.update(body.bytes)
        w.fixed(checksum.value)
        w.raw(LZ4Chunks.compress(body.bytes))
        return w.bytes
    }

    /// The newest usable snapshot under `dataDir` (at or before `maxSeq`, if given).
    /// A snapshot written by other view versions, or damaged in any way, is skipped;
    /// nil means: rebuild from the log. The caller must replay the log after
    /// `lastSeq`, and should distrust a snapshot past the log's end.
    public static func loadSnapshot(from dataDir: String, maxSeq: UInt64? = nil) -> ProjectionSet? {
        let dir = snapshotDirectory(in: dataDir)
        for (seq, name) in snapshotFiles(in: dir).reversed() {
            if let maxSeq, seq > maxSeq { continue }
            if let bytes = DurableFiles.readFile("\(dir)/\(name)"), let set = decodeSnapshot(bytes), set.lastSeq == seq {
                return set
            }
        }
        return nil
    }

    /// Deletes all but the newest `keep` snapshots.
    public static func pruneSnapshots(in dataDir: String, keep: Int) {
        let dir = snapshotDirectory(in: dataDir)
        let files = snapshotFiles(in: dir)
        for (_, name) in files.dropLast(max(keep, 0)) { DurableFiles.remove("\(dir)/\(name)") }
    }

    static func snapshotFileName(seq: UInt64) -> String {
        let digits = String(seq)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".snap"
    }

    /// (seq, file name) of well-named snapshot files, ascending.
    static func snapshotFiles(in dir: String) -> [(UInt64, String)] {
        DurableFiles.listDirectory(dir).compactMap { name -> (UInt64, String)? in
            guard name.utf8.count == 25, name.hasSuffix(".snap"), let seq = UInt64(name.prefix(20)) else { return nil }
            return (seq, name)
        }.sorted { $0.0 < $1.0 }
    }

    static func decodeSnapshot(_ bytes: [UInt8]) -> ProjectionSet? {
        bytes.withUnsafeBytes { raw -> ProjectionSet? in
            var r = ByteReader(raw)
            guard let magic = try? r.bytes(snapshotMagic.count), magic.elementsEqual(snapshotMagic),
                  (try? r.fixed(UInt32.self)) == snapshotFormat,
                  let lastSeq = try? r.fixed(UInt64.self),
                  let lastTimestamp = try? r.fixed(Int64.self),
                  let plaintextRecords = try? r.fixed(UInt64.self),
                  let viewCount = try? r.fixed(UInt16.self)
            else { return nil }
            var stored: [String: Int] = [:]
            var order: [String] = []
            for _ in 0..<viewCount {
                guard let name = try? r.string(), let version = try? r.fixed(UInt32.self) else { return nil }
                stored[name] = Int(version)
                order.append(name)
            }
            // Any other view set or version means the state has another meaning now.
            guard order == viewNames, stored == versions,
                  let bodySize = try? r.fixed(UInt64.self), let size = Int(exactly: bodySize)
            else { return nil }
            let headerEnd = r.offset
            guard let checksum = try? r.fixed(UInt64.self),
                  let body = LZ4Chunks.decompress(&r, expectedSize: size), r.remaining == 0
            else { return nil }
            var h = FNV1a64()
            h.update(UnsafeRawBufferPointer(rebasing: raw[0..<headerEnd]))
            h.update(body)
            guard h.value == checksum else { return nil }
            return body.withUnsafeBytes { bodyRaw -> ProjectionSet? in
                var br = ByteReader(bodyRaw)
                var set = ProjectionSet()
                do {
                    set.users = try UsersView(decoding: &br)
                    set.sessions = try SessionsView(decoding: &br)
                    set.presence = try PresenceView(decoding: &br)
                    set.friendship = try FriendshipView(decoding: &br)
                    set.conversations = try ConversationsView(decoding: &br)
                    try br.finish()
                } catch {
                    return nil
                }
                set.lastSeq = lastSeq
                set.lastTimestamp = lastTimestamp
                set.plaintextRecords = plaintextRecords
                return set
            }
        }
    }
}
