import Foundation

/// One load-test account, logged in.
struct LoadgenUser: Sendable {
    let index: Int
    let username: String
    let access: String
}

/// The setup phase of `chat-es loadgen`: register and log in every user, then
/// start the chats the senders need, all over the REST contract with a bounded
/// number of requests in flight.
struct LoadgenSetup: Sendable {
    let client: LoadgenHTTPClient
    let runID: String
    let concurrency: Int
    let progress: LoadgenProgress

    private struct Credentials: Encodable {
        let username: String
        let password: String
    }

    private struct StartChat: Encodable {
        // The contract's field is named an id but carries a username (as the original did).
        let receiver_id: String
    }

    private struct LoginReply: Decodable {
        let access: String
    }

    /// Only the status matters for register and chat start.
    private struct Ignored: Decodable {}

    /// Registers and logs in `count` users named `lg<run id>_<n>`.
    func makeUsers(count: Int) async throws -> [LoadgenUser] {
        let runID = runID
        let client = client
        progress.begin("register+login", total: count)
        let users = try await loadgenMap(Array(0..<count), concurrency: concurrency) { index in
            let username = "lg\(runID)_\(index)"
            let credentials = Credentials(username: username, password: "pw-\(loadgenRandomHex(12))")
            // 409 is accepted: a retried register whose first answer was lost already created the user.
            _ = try await client.post("/api/register/", body: credentials, accept: [201, 409], as: Ignored.self)
            let (_, login) = try await client.post("/api/login/", body: credentials, accept: [200], as: LoginReply.self)
            guard let access = login?.access else {
                throw LoadgenError(description: "login of \(username) answered without an access token")
            }
            progress.step()
            return LoadgenUser(index: index, username: username, access: access)
        }
        progress.end()
        return users
    }

    /// Starts one chat per (sender, receiver) pair; repeated pairs are sent once.
    func startChats(users: [LoadgenUser], pairs: [(sender: Int, receiver: Int)]) async throws {
        var seen = Set<[Int]>()
        let unique = pairs.filter { seen.insert([min($0.sender, $0.receiver), max($0.sender, $0.receiver)]).inserted }
        let client = client
        progress.begin("chat start", total: unique.count)
        _ = try await loadgenMap(unique.map { [$0.sender, $0.receiver] }, concurrency: concurrency) { pair in
            let body = StartChat(receiver_id: users[pair[1]].username)
            _ = try await client.post(
                "/api/chat/start/", body: body, token: users[pair[0]].access, accept: [200, 201], as: Ignored.self
            )
            progress.step()
        }
        progress.end()
    }
}

/// Maps `items` through `body` with at most `concurrency` calls in flight, keeping order.
func loadgenMap<Item: Sendable, Result: Sendable>(
    _ items: [Item],
    concurrency: Int,
    _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: items.count)
        var next = 0
        // Prime the group, then add one item per completion: a sliding window.
        while next < min(concurrency, items.count) {
            let index = next
            group.addTask { (index, try await body(items[index])) }
            next += 1
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < items.count {
                let index = next
                group.addTask { (index, try await body(items[index])) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}

/// Lower-case hex from the system RNG, for run ids, passwords and client ids.
func loadgenRandomHex(_ bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<bytes).map { _ in
        String(format: "%02x", UInt8.random(in: 0...255, using: &generator))
    }.joined()
}

/// Setup progress on stderr, shown only when stderr is a terminal (so logs and
/// pipes stay clean), rewritten in place at most every 1% of the work.
final class LoadgenProgress: Sendable {
    private struct State {
        var label = ""
        var total = 0
        var done = 0
    }

    private let enabled: Bool
    private let state = LoadgenLocked(State())

    init() {
        enabled = isatty(STDERR_FILENO) != 0
    }

    func begin(_ label: String, total: Int) {
        guard enabled else { return }
        state.withLock { $0 = State(label: label, total: total, done: 0) }
        show("\r\(label): 0/\(total)")
    }

    func step() {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            state.done += 1
            let every = max(1, state.total / 100)
            guard state.done % every == 0 || state.done == state.total else { return nil }
            return "\r\(state.label): \(state.done)/\(state.total)"
        }
        if let line { show(line) }
    }

    /// Shows an absolute count (for work counted elsewhere), only when it changed.
    func update(done: Int) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            guard done != state.done else { return nil }
            state.done = done
            return "\r\(state.label): \(done)/\(state.total)"
        }
        if let line { show(line) }
    }

    func end() {
        guard enabled else { return }
        show("\n")
    }

    func note(_ text: String) {
        guard enabled else { return }
        show(text + "\n")
    }

    private func show(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
