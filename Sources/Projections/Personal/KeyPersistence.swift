/// One user's data key as kept: wrapped by the master key (`MasterKey.wrappedSize` bytes).
public struct WrappedKeyEntry: Sendable, Equatable {
    public var user: UInt32
    public var wrapped: [UInt8]

    public init(user: UInt32, wrapped: [UInt8]) {
        self.user = user
        self.wrapped = wrapped
    }
}

/// Where a `KeyStore` keeps its wrapped keys durably: files in the data directory, or a
/// database several nodes share. Every call returns once its change is durable.
public protocol KeyPersistence: Sendable {
    /// A directory or a database, for messages.
    var location: String { get }
    /// The wrapped name index key, storing `make()`'s first when there is none yet.
    func indexKey(orStore make: () throws -> [UInt8]) throws -> [UInt8]
    /// Every stored entry; `repair` may cut a torn last write.
    func loadAll(repair: Bool) throws -> [WrappedKeyEntry]
    func add(_ entries: [WrappedKeyEntry]) throws
    /// Removes the users' entries so that no copy stays where this persistence keeps them.
    func remove(_ users: [UInt32]) throws
}
