/// Open WebSockets per user: of the current server epoch, or on a log shared by several nodes,
/// of every node's epoch that has not left.
///
/// "Online" (an open, unexpired session) lives in `SessionsView`; `ProjectionSet`
/// combines the two for presence queries.
public struct PresenceView: Projection {
    public static let version = 1

    /// The highest epoch started (0 before any).
    public internal(set) var epoch: UInt64 = 0
    public internal(set) var epochStartedAt: Int64?
    /// Users with at least one open socket; no empty sets.
    var sockets: [UInt32: Set<UInt64>] = [:]

    public init() {}

    public func isConnected(_ userId: UInt32) -> Bool { sockets[userId] != nil }

    public func connectedSocketCount(_ userId: UInt32) -> Int { sockets[userId]?.count ?? 0 }

    public func socketIds(of userId: UInt32) -> [UInt64] { (sockets[userId] ?? []).sorted() }

    /// Connected users in ascending id order.
    public var connectedUserIds: [UInt32] { sockets.keys.sorted() }

    /// Users with an open socket of `epoch` (a socket id carries its epoch in its high 32 bits).
    public func userIds(withSocketsOf epoch: UInt64) -> [UInt32] {
        sockets.filter { $0.value.contains { $0 >> 32 == epoch } }.keys.sorted()
    }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        switch event {
        case .serverStarted(let e):
            // The previous process may have crashed without closing its sockets.
            if !e.shared { sockets.removeAll() }
            epoch = max(epoch, e.epoch)
            epochStartedAt = timestamp
        case .nodeLeft(let e):
            for (user, ids) in sockets {
                let left = ids.filter { $0 >> 32 != e.epoch }
                sockets[user] = left.isEmpty ? nil : left
            }
        case .socketConnected(let e):
            sockets[e.userId, default: []].insert(e.socketId)
        case .socketDisconnected(let e):
            sockets[e.userId]?.remove(e.socketId)
            if sockets[e.userId]?.isEmpty == true { sockets[e.userId] = nil }
        default:
            break
        }
    }
}
