import HeapModule

/// A suggested friend. `score` is the mutual-friend count as a Double, as the
/// original Django app reported it; recency only breaks ties and is not folded in,
/// so the number stays meaningful to clients.
public struct Suggestion: Sendable, Equatable {
    public var userId: UInt32
    public var mutualFriends: Int
    public var score: Double

    public init(userId: UInt32, mutualFriends: Int, score: Double) {
        self.userId = userId
        self.mutualFriends = mutualFriends
        self.score = score
    }
}

/// Friends are users who share a conversation; suggestions are friends of friends.
public struct FriendshipView: Projection {
    public static let version = 1

    /// Symmetric: b ∈ adjacency[a] ⇔ a ∈ adjacency[b]. No empty sets, no self-loops.
    var adjacency: [UInt32: Set<UInt32>] = [:]

    public init() {}

    public func friends(of userId: UInt32) -> Set<UInt32> { adjacency[userId] ?? [] }

    public func sortedFriends(of userId: UInt32) -> [UInt32] { friends(of: userId).sorted() }

    public func friendCount(of userId: UInt32) -> Int { adjacency[userId]?.count ?? 0 }

    public func areFriends(_ a: UInt32, _ b: UInt32) -> Bool {
        adjacency[a]?.contains(b) ?? false
    }

    /// Number of friendships (unordered pairs).
    public var edgeCount: Int { adjacency.values.reduce(0) { $0 + $1.count } / 2 }

    public mutating func apply(_ event: Event, seq: UInt64, timestamp: Int64) {
        guard case .chatStarted(let e) = event, e.userA != e.userB else { return }
        adjacency[e.userA, default: []].insert(e.userB)
        adjacency[e.userB, default: []].insert(e.userA)
    }

    /// Best first: more mutual friends, then more recent `lastActivity`, then lower id.
    /// Never `userId` itself, never a current friend. With no friends of friends,
    /// the most recently active of users `1...userCount` instead (mutualFriends 0).
    ///
    /// Cost: the sum of the friends' degrees to count, then O(n log limit) to rank,
    /// so a user with 10,000 friends is fine. The fallback scans all users.
    public func suggestions(
        for userId: UInt32, limit: Int, userCount: Int, eligible: (UInt32) -> Bool = { _ in true },
        lastActivity: (UInt32) -> Int64
    ) -> [Suggestion] {
        guard limit > 0 else { return [] }
        let mine = adjacency[userId] ?? []
        var mutual: [UInt32: Int] = [:]
        for friend in mine {
            guard let theirs = adjacency[friend] else { continue }
            for candidate in theirs where candidate != userId && !mine.contains(candidate) && eligible(candidate) {
                mutual[candidate, default: 0] += 1
            }
        }
        var best = TopCandidates(limit: limit)
        if mutual.isEmpty {
            var id: UInt32 = 1
            while Int(id) <= userCount {
                if id != userId && !mine.contains(id) && eligible(id) {
                    best.offer(RankedCandidate(mutual: 0, activity: lastActivity(id), id: id))
                }
                id += 1
            }
        } else {
            for (id, count) in mutual {
                best.offer(RankedCandidate(mutual: count, activity: lastActivity(id), id: id))
            }
        }
        return best.bestFirst().map {
            Suggestion(userId: $0.id, mutualFriends: $0.mutual, score: Double($0.mutual))
        }
    }
}

/// Orders candidates so that `<` means "ranks worse".
struct RankedCandidate: Comparable {
    var mutual: Int
    var activity: Int64
    var id: UInt32

    static func < (a: RankedCandidate, b: RankedCandidate) -> Bool {
        if a.mutual != b.mutual { return a.mutual < b.mutual }
        if a.activity != b.activity { return a.activity < b.activity }
        return a.id > b.id
    }
}

/// Keeps the `limit` best of a stream in a min-heap whose root is the worst kept.
struct TopCandidates {
    let limit: Int
    private var heap = Heap<RankedCandidate>()

    init(limit: Int) {
        self.limit = limit
    }

    mutating func offer(_ c: RankedCandidate) {
        if heap.count < limit {
            heap.insert(c)
        } else if let worst = heap.min, worst < c {
            _ = heap.replaceMin(with: c)
        }
    }

    func bestFirst() -> [RankedCandidate] {
        heap.unordered.sorted(by: >)
    }
}
