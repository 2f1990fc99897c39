import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A failure of the load generator's setup (register, login, chat start).
struct LoadgenError: Error, CustomStringConvertible {
    let description: String
}

/// A minimal JSON-over-HTTP client for the setup phase of `chat-es loadgen`.
///
/// Setup is a few requests per user, so URLSession is plenty. The client
/// honours `429`/`503` with `Retry-After` (rate limiting, log replay at
/// start-up) and retries transport errors a few times; every failed attempt is
/// counted so the summary shows it.
final class LoadgenHTTPClient: Sendable {
    private let baseURL: String
    private let session: URLSession
    /// Failed attempts and 429s seen, for the summary.
    let counters = LoadgenLocked(LoadgenCounters())

    private static let maxAttempts = 40
    private static let maxTransportRetries = 5

    init(baseURL: String, concurrency: Int) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = concurrency
        configuration.timeoutIntervalForRequest = 30
        // Never go through a proxy: the load must reach only the given loopback URL.
        configuration.connectionProxyDictionary = [:]
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    /// POSTs `body` as JSON and decodes the answer when its status is in `accept`.
    ///
    /// Any other status fails with the server's `detail`/`code` in the message.
    func post<Reply: Decodable>(
        _ path: String,
        body: some Encodable,
        token: String? = nil,
        accept: Set<Int>,
        as _: Reply.Type
    ) async throws -> (status: Int, reply: Reply?) {
        var request = try makeRequest(path, method: "POST", token: token)
        request.setValue("application/json; charset=utf-8", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONEncoder().encode(body)
        let (status, data) = try await send(request, accept: accept)
        if (200..<300).contains(status) {
            return (status, try JSONDecoder().decode(Reply.self, from: data))
        }
        return (status, nil)
    }

    /// Waits until `GET /healthz` answers 200 (a chat-es server answers 503 while replaying).
    func waitUntilHealthy(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let request = try makeRequest("/healthz", method: "GET", token: nil)
        var lastProblem = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let (data, response) = try await session.data(for: request)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                if status == 200 { return }
                lastProblem = "HTTP \(status) \(String(decoding: data.prefix(200), as: UTF8.self))"
            } catch {
                lastProblem = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw LoadgenError(description: "\(baseURL)/healthz not healthy within \(timeout): \(lastProblem)")
    }

    private func makeRequest(_ path: String, method: String, token: String?) throws -> URLRequest {
        guard let url = URL(string: baseURL + path) else {
            throw LoadgenError(description: "bad URL \(baseURL + path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }

    /// Sends with retries; returns the first answer whose status is in `accept`.
    private func send(_ request: URLRequest, accept: Set<Int>) async throws -> (Int, Data) {
        var transportFailures = 0
        for _ in 0..<Self.maxAttempts {
            let data: Data
            let response: HTTPURLResponse
            do {
                let (body, answer) = try await session.data(for: request)
                guard let http = answer as? HTTPURLResponse else {
                    throw LoadgenError(description: "not an HTTP response")
                }
                data = body
                response = http
            } catch {
                counters.withLock { $0.httpFailures += 1 }
                transportFailures += 1
                if transportFailures > Self.maxTransportRetries {
                    throw LoadgenError(description: "\(request.httpMethod ?? "") \(request.url?.path ?? ""): \(error)")
                }
                // Back off 0.2, 0.4, 0.8 … s: the server may be restarting or saturated.
                try await Task.sleep(for: .milliseconds(200 << (transportFailures - 1)))
                continue
            }
            let status = response.statusCode
            if accept.contains(status) { return (status, data) }
            if status == 429 || status == 503 {
                counters.withLock { counters in
                    if status == 429 { counters.rateLimited += 1 } else { counters.httpFailures += 1 }
                }
                try await Task.sleep(for: Self.retryAfter(response))
                continue
            }
            counters.withLock { $0.httpFailures += 1 }
            let detail = String(decoding: data.prefix(300), as: UTF8.self)
            throw LoadgenError(
                description: "\(request.httpMethod ?? "") \(request.url?.path ?? ""): HTTP \(status) \(detail)"
            )
        }
        throw LoadgenError(
            description: "\(request.httpMethod ?? "") \(request.url?.path ?? ""): still refused after \(Self.maxAttempts) attempts"
        )
    }

    /// `Retry-After` in seconds (delta form), bounded to 0.05–10 s; 1 s when absent or a date.
    private static func retryAfter(_ response: HTTPURLResponse) -> Duration {
        let header = response.value(forHTTPHeaderField: "Retry-After") ?? ""
        let seconds = Double(header.trimmingCharacters(in: .whitespaces)) ?? 1
        return .milliseconds(Int(min(max(seconds, 0.05), 10) * 1000))
    }
}
