import Foundation

extension GridcaseClient {
    /// The ids of the cases that changed, one array per change the core reports, in order.
    ///
    /// The client has a single listener slot, so the first call installs one fan-out
    /// `CaseListener` for this client and every stream (any number, at any time) subscribes to
    /// it. A stream subscribes when it is created, so no change made after this call is missed,
    /// and unsubscribes when its consumer stops iterating or its task is cancelled.
    /// Streams buffer without limit, so nothing is dropped and the Rust thread that reports a
    /// change never waits for a slow consumer.
    ///
    /// Do not call `setListener(listener:)` yourself on a client you observe this way: it
    /// would replace the fan-out listener.
    ///
    /// ```swift
    /// for await ids in client.caseChanges() { reload(ids) }
    /// ```
    public func caseChanges() -> AsyncStream<[String]> {
        let hub = CaseChangeHub.hub(for: self)
        return AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let token = hub.subscribe { ids in continuation.yield(ids) }
            continuation.onTermination = { _ in hub.unsubscribe(token) }
        }
    }
}

/// One per client. Holds no reference to its client, so the client can still be freed while
/// the Rust side keeps this listener.
final class CaseChangeHub: CaseListener, @unchecked Sendable {
    private let lock = NSLock()
    private var nextToken = 0
    private var subscribers: [Int: @Sendable ([String]) -> Void] = [:]

    func subscribe(_ body: @escaping @Sendable ([String]) -> Void) -> Int {
        lock.lock()
        defer { lock.unlock() }
        nextToken += 1
        subscribers[nextToken] = body
        return nextToken
    }

    func unsubscribe(_ token: Int) {
        lock.lock()
        subscribers[token] = nil
        lock.unlock()
    }

    /// Called on a Rust thread.
    func onCasesChanged(caseIds: [String]) {
        lock.lock()
        let current = subscribers.sorted { $0.key < $1.key }.map { $0.value }
        lock.unlock()
        for deliver in current {
            deliver(caseIds)
        }
    }

    // MARK: one hub per live client

    static func hub(for client: GridcaseClient) -> CaseChangeHub {
        Registry.shared.hub(for: client)
    }

    private final class Registry: @unchecked Sendable {
        static let shared = Registry()

        private struct Entry {
            weak var client: GridcaseClient?
            let hub: CaseChangeHub
        }

        private let lock = NSLock()
        private var entries: [ObjectIdentifier: Entry] = [:]

        func hub(for client: GridcaseClient) -> CaseChangeHub {
            lock.lock()
            defer { lock.unlock() }
            entries = entries.filter { $0.value.client != nil }
            let key = ObjectIdentifier(client)
            if let entry = entries[key], entry.client === client {
                return entry.hub
            }
            let hub = CaseChangeHub()
            client.setListener(listener: hub)
            entries[key] = Entry(client: client, hub: hub)
            return hub
        }
    }
}
