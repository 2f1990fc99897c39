import EventLog
import Foundation

/// Snapshots: the whole `ProjectionSet` at a log position, so a start replays only the
/// records after it.
///
/// File: `<data dir>/snapshots/<lastSeq, 20 digits>-<schema fingerprint, 8 hex>.snap`,
/// little-endian: `"CHATSNAP"`, u32 format, u64 lastSeq, i64 lastTimestamp, u64
/// plaintextRecords, 32 bytes chain hash (the header hash of the log's batch that ends at
/// lastSeq), u16 view count, per view (string name, u32 version), u16 section count, per
/// section its u64 length, u64 body size, u64 `WordChecksum` of the header so far and the
/// body, then the body as LZ4 chunks. The body is each view's canonical encoding in
/// `viewNames` order, the conversations view in two sections (its conversations, its
/// client-id index); the lengths let the sections decode on two threads at once. The header is uncompressed so stale versions are rejected
/// before any decompression; the chain hash ties the snapshot to the log it was made of.
extension ProjectionSet {
    static let snapshotMagic: [UInt8] = Array("CHATSNAP".utf8)
    static let snapshotFormat: UInt32 = 4

    /// The snapshot directory inside a data directory.
    public static func snapshotDirectory(in dataDir: String) -> String { "\(dataDir)/snapshots" }

    /// Identifies the snapshot format and every view's name and version: a snapshot whose
    /// fingerprint differs was made by a build whose views mean something else.
    public static let schemaFingerprint: String = {
        var h = FNV1a64()
        h.update(snapshotFormat)
        for name in viewNames {
            h.update(Array(name.utf8))
            h.update(UInt32(versions[name] ?? 0))
        }
        return String(h.hex.suffix(8))
    }()

    /// Writes this state as a snapshot under `dataDir` (created if needed) atomically and
    /// durably (temp file, fsync, rename, fsync of the directory); `chainHash` is the log's
    /// `chainHash(at: lastSeq)`. Takes a while for big states: call it on a copy, off the Ledger.
    @discardableResult
    public func writeSnapshot(to dataDir: String, chainHash: String) throws -> SnapshotFile {
        let dir = Self.snapshotDirectory(in: dataDir)
        try DurableFiles.makeDirectory(dataDir)
        try DurableFiles.makeDirectory(dir)
        let name = SnapshotFile.name(seq: lastSeq, fingerprint: Self.schemaFingerprint)
        let bytes = try snapshotBytes(chainHash: chainHash)
        try DurableFiles.writeAtomically(bytes, to: "\(dir)/\(name)", directory: dir)
        return SnapshotFile(directory: dir, name: name, seq: lastSeq, fingerprint: Self.schemaFingerprint,
                            size: bytes.count, modified: DurableFiles.modificationTime("\(dir)/\(name)"))
    }

    func snapshotBytes(chainHash: String) throws -> [UInt8] {
        guard let hash = SecretMaterial.hexBytes(chainHash), hash.count == 32 else {
            throw SnapshotError("chain hash \(chainHash) is not 32 bytes of hex")
        }
        var body = ByteWriter(capacity: 1 << 16)
        var lengths: [UInt64] = []
        for section in Self.snapshotSections {
            let start = body.bytes.count
            section.encode(self, &body)
            lengths.append(UInt64(body.bytes.count - start))
        }

        var w = ByteWriter(capacity: body.bytes.count / 2 + 256)
        w.raw(Self.snapshotMagic)
        w.fixed(Self.snapshotFormat)
        w.fixed(lastSeq)
        w.fixed(lastTimestamp)
        w.fixed(plaintextRecords)
        w.raw(hash)
        w.fixed(UInt16(Self.viewNames.count))
        for name in Self.viewNames {
            w.string(name)
            w.fixed(UInt32(Self.versions[name] ?? 0))
        }
        w.fixed(UInt16(lengths.count))
        for length in lengths { w.fixed(length) }
        w.fixed(UInt64(body.bytes.count))
        var checksum = WordChecksum()
        checksum.update(w.bytes)
        checksum.update(body.bytes)
        w.fixed(checksum.value)
        w.raw(LZ4Chunks.compress(body.bytes))
        return w.bytes
    }

    /// The snapshot files under `dataDir`, well named, ascending by seq.
    public static func snapshotFiles(in dataDir: String) -> [SnapshotFile] {
        let dir = snapshotDirectory(in: dataDir)
        return DurableFiles.listDirectory(dir).compactMap { SnapshotFile(directory: dir, name: $0) }
            .sorted { ($0.seq, $0.name) < ($1.seq, $1.name) }
    }

    /// The newest snapshot this build can start from: its fingerprint matches, it is intact,
    /// and `chainHash(seq)` (the log's hash at its position; nil past the log's end) equals the
    /// one it recorded. Every newer snapshot passed over is named in `skipped` with the reason.
    /// `parallel: false` decodes on the calling thread only (the background writer, which
    /// must leave the other core to the server).
    public static func loadNewestSnapshot(
        from dataDir: String, parallel: Bool = true, chainHash: (UInt64) -> String?
    ) -> (set: ProjectionSet?, file: SnapshotFile?, skipped: [(SnapshotFile, String)]) {
        var skipped: [(SnapshotFile, String)] = []
        for file in snapshotFiles(in: dataDir).reversed() {
            guard file.fingerprint == schemaFingerprint else {
                skipped.append((file, "made with other view versions (a schema change)"))
                continue
            }
            guard let logHash = chainHash(file.seq) else {
                skipped.append((file, "its position \(file.seq) is not a batch end of this log (past its end?)"))
                continue
            }
            switch decodeSnapshot(DurableFiles.readFile(file.path) ?? [], expectedSeq: file.seq, parallel: parallel) {
            case let .failure(error):
                skipped.append((file, error.description))
            case let .success((set, hash)) where hash == logHash:
                return (set, file, skipped)
            case .success:
                skipped.append((file, "made of another log (its chain hash differs from this log's at seq \(file.seq))"))
            }
        }
        return (nil, nil, skipped)
    }

    /// Deletes all but the newest `keep` snapshots of this build's fingerprint, snapshots of
    /// other fingerprints older than the newest kept one (a newer one may be an upgrade's,
    /// written ahead of its restart), and temp files of writers that are gone.
    public static func pruneSnapshots(in dataDir: String, keep: Int) {
        let files = snapshotFiles(in: dataDir)
        let mine = files.filter { $0.fingerprint == schemaFingerprint }
        for file in mine.dropLast(max(keep, 1)) { DurableFiles.remove(file.path) }
        if let newest = mine.last {
            for file in files where file.fingerprint != schemaFingerprint && file.seq < newest.seq {
                DurableFiles.remove(file.path)
            }
        }
        let dir = snapshotDirectory(in: dataDir)
        for name in DurableFiles.listDirectory(dir) {
            guard let range = name.range(of: ".tmp-"), let pid = Int32(name[range.upperBound...]) else { continue }
            if !DurableFiles.processExists(pid) { DurableFiles.remove("\(dir)/\(name)") }
        }
    }

    /// The state in `bytes` and the chain hash it recorded, or why it cannot be used.
    static func decodeSnapshot(_ bytes: [UInt8], expectedSeq: UInt64? = nil, parallel: Bool = true) -> Result<(ProjectionSet, String), SnapshotError> {
        bytes.withUnsafeBytes { raw -> Result<(ProjectionSet, String), SnapshotError> in
            var r = ByteReader(raw)
            guard let magic = try? r.bytes(snapshotMagic.count), magic.elementsEqual(snapshotMagic) else {
                return .failure(SnapshotError(bytes.isEmpty ? "empty or unreadable" : "not a snapshot"))
            }
            guard let format = try? r.fixed(UInt32.self), format == snapshotFormat else {
                return .failure(SnapshotError("another snapshot format"))
            }
            guard let lastSeq = try? r.fixed(UInt64.self),
                  let lastTimestamp = try? r.fixed(Int64.self),
                  let plaintextRecords = try? r.fixed(UInt64.self),
                  let hash = try? r.bytes(32),
                  let viewCount = try? r.fixed(UInt16.self)
            else { return .failure(SnapshotError("truncated header")) }
            if let expectedSeq, expectedSeq != lastSeq {
                return .failure(SnapshotError("holds seq \(lastSeq), its name says \(expectedSeq)"))
            }
            let chainHash = hexString(Array(hash))
            var stored: [String: Int] = [:]
            var order: [String] = []
            for _ in 0..<viewCount {
                guard let name = try? r.string(), let version = try? r.fixed(UInt32.self) else {
                    return .failure(SnapshotError("truncated header"))
                }
                stored[name] = Int(version)
                order.append(name)
            }
            // Any other view set or version means the state has another meaning now.
            guard order == viewNames, stored == versions else { return .failure(SnapshotError("other view versions")) }
            var lengths: [Int] = []
            guard let sections = try? r.fixed(UInt16.self), Int(sections) == snapshotSections.count else {
                return .failure(SnapshotError("other sections"))
            }
            for _ in 0..<sections {
                guard let length = try? r.fixed(UInt64.self), let n = Int(exactly: length) else {
                    return .failure(SnapshotError("truncated header"))
                }
                lengths.append(n)
            }
            guard let bodySize = try? r.fixed(UInt64.self), let size = Int(exactly: bodySize),
                  lengths.reduce(0, +) == size else {
                return .failure(SnapshotError("truncated header"))
            }
            let headerEnd = r.offset
            guard let checksum = try? r.fixed(UInt64.self), let body = LZ4Chunks.decompress(&r, expectedSize: size),
                  r.remaining == 0
            else { return .failure(SnapshotError("truncated or damaged body")) }
            var h = WordChecksum()
            h.update(UnsafeRawBufferPointer(rebasing: raw[0..<headerEnd]))
            h.update(body)
            guard h.value == checksum else { return .failure(SnapshotError("checksum mismatch")) }
            var set: ProjectionSet
            switch decodeViews(body, lengths: lengths, parallel: parallel) {
            case let .failure(error): return .failure(error)
            case let .success(decoded): set = decoded
            }
            set.lastSeq = lastSeq
            set.lastTimestamp = lastTimestamp
            set.plaintextRecords = plaintextRecords
            return .success((set, chainHash))
        }
    }

    /// The body's sections, in order, with how each is written and read back.
    struct SnapshotSection: Sendable {
        let encode: @Sendable (ProjectionSet, inout ByteWriter) -> Void
        let decode: @Sendable (inout ProjectionSet, inout ByteReader) throws -> Void
    }

    static let snapshotSections: [SnapshotSection] = [
        SnapshotSection(encode: { $0.users.encode(into: &$1) }, decode: { $0.users = try UsersView(decoding: &$1) }),
        SnapshotSection(encode: { $0.sessions.encode(into: &$1) }, decode: { $0.sessions = try SessionsView(decoding: &$1) }),
        SnapshotSection(encode: { $0.presence.encode(into: &$1) }, decode: { $0.presence = try PresenceView(decoding: &$1) }),
        SnapshotSection(encode: { $0.friendship.encode(into: &$1) }, decode: { $0.friendship = try FriendshipView(decoding: &$1) }),
        SnapshotSection(encode: { $0.conversations.encodeConversations(into: &$1) },
                        decode: { $0.conversations = try ConversationsView(decodingConversations: &$1) }),
        SnapshotSection(encode: { $0.conversations.clientIndex.encode(into: &$1) },
                        decode: { $0.conversations.clientIndex = try ClientIdIndex(decoding: &$1) }),
    ]

    /// Decodes the sections of a snapshot body on two threads: the conversations (most of the
    /// decoding) on one, the client-id index and the other views on the other; a failure if
    /// any section does not decode whole.
    static func decodeViews(_ body: [UInt8], lengths: [Int], parallel: Bool = true) -> Result<ProjectionSet, SnapshotError> {
        let results = DecodedViews()
        body.withUnsafeBytes { raw in
            var offsets = [0]
            for n in lengths { offsets.append(offsets[offsets.count - 1] + n) }
            let slices = UncheckedSlices(raw: raw, offsets: offsets)
            let groups = [[4], [5, 0, 1, 2, 3]]
            let decodeGroup: @Sendable (Int) -> Void = { g in
                var part = ProjectionSet()
                for i in groups[g] {
                    var r = ByteReader(slices.slice(i))
                    do {
                        try snapshotSections[i].decode(&part, &r)
                        try r.finish()
                    } catch {
                        results.fail("section \(i): \(error)")
                        return
                    }
                }
                results.set(g, part)
            }
            if parallel {
                DispatchQueue.concurrentPerform(iterations: groups.count) { decodeGroup($0) }
            } else {
                for g in groups.indices { decodeGroup(g) }
            }
        }
        return results.merged()
    }
}

/// The two halves of `decodeViews`, filled by the two threads.
private final class DecodedViews: @unchecked Sendable {
    private let lock = NSLock()
    private var parts: [ProjectionSet?] = [nil, nil]
    private(set) var failure: String?

    func set(_ i: Int, _ part: ProjectionSet) { lock.withLock { parts[i] = part } }
    func fail(_ why: String) { lock.withLock { failure = why } }

    /// The conversations of part 0 with everything else of part 1.
    func merged() -> Result<ProjectionSet, SnapshotError> {
        lock.withLock {
            if let failure { return .failure(SnapshotError("views do not decode: \(failure)")) }
            guard let conversations = parts[0]?.conversations, var set = parts[1] else {
                return .failure(SnapshotError("views do not decode"))
            }
            let index = set.conversations.clientIndex
            set.conversations = conversations
            set.conversations.clientIndex = index
            return .success(set)
        }
    }
}

/// The body's sections, read by both decoding threads (never written while they run).
private struct UncheckedSlices: @unchecked Sendable {
    let raw: UnsafeRawBufferPointer
    let offsets: [Int]

    func slice(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[offsets[i]..<offsets[i + 1]]) }
}

/// One snapshot file: where it is, the position it holds and the build it fits.
public struct SnapshotFile: Sendable, Equatable {
    public let directory: String
    public let name: String
    public let seq: UInt64
    public let fingerprint: String
    public let size: Int
    /// Seconds since the epoch.
    public let modified: Double

    public var path: String { "\(directory)/\(name)" }

    init(directory: String, name: String, seq: UInt64, fingerprint: String, size: Int, modified: Double) {
        self.directory = directory
        self.name = name
        self.seq = seq
        self.fingerprint = fingerprint
        self.size = size
        self.modified = modified
    }

    /// Parses `<20 digits>-<8 hex>.snap`; nil for any other name (temp files included).
    init?(directory: String, name: String) {
        let parts = name.split(separator: "-")
        guard name.hasSuffix(".snap"), name.utf8.count == 34, parts.count == 2, parts[0].utf8.count == 20,
              let seq = UInt64(parts[0]) else { return nil }
        let path = "\(directory)/\(name)"
        self.init(directory: directory, name: name, seq: seq, fingerprint: String(parts[1].prefix(8)),
                  size: DurableFiles.fileSize(path), modified: DurableFiles.modificationTime(path))
    }

    static func name(seq: UInt64, fingerprint: String) -> String {
        let digits = String(seq)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "-" + fingerprint + ".snap"
    }
}

/// Why a snapshot was not used, or could not be written.
public struct SnapshotError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
