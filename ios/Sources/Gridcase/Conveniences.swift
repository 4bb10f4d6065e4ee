import Foundation

// Thin Swift conveniences over the generated uniffi API, only where it is awkward: `Date`
// instead of epoch milliseconds, file URLs, and paging. Everything else is used as generated.

extension Date {
    /// A time from the core's UTC milliseconds.
    public init(epochMillis: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(epochMillis) / 1000)
    }

    /// This time as the core's UTC milliseconds.
    public var epochMillis: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded())
    }
}

extension GridcaseClient {
    /// Opens (creating if needed) the terminal's store in the folder `dataDir`.
    public static func open(dataDir: URL, config: ClientConfig) throws -> GridcaseClient {
        try open(dataDir: dataDir.path, config: config)
    }

    /// Attaches a camera photo from a file (decoded, turned upright, shrunk and stripped by the core).
    public func addPhoto(caseId: String, file: URL) async throws -> Photo {
        try await addPhotoFromFile(caseId: caseId, path: file.path)
    }

    /// Every case matching `query`, following `nextPageToken` page by page.
    public func allCases(query: CaseQuery = CaseQuery()) async throws -> [CaseSummary] {
        var query = query
        var all: [CaseSummary] = []
        while true {
            let page = try await listCases(query: query)
            all += page.cases
            guard let token = page.nextPageToken else { return all }
            query.pageToken = token
        }
    }
}

extension GridcaseClient {
    /// Syncs now, reporting progress to `onProgress` (called on a background thread: phase,
    /// bytes done, bytes total). Cancelling the task stops the sync safely.
    public func syncNow(
        onProgress: @escaping @Sendable (SyncPhase, UInt64, UInt64) -> Void
    ) async throws -> SyncReport {
        try await syncNow(listener: ClosureSyncListener(onProgress))
    }

    /// Seconds to wait before syncing again by itself (grows after failures; 0 after a success).
    public func nextSyncDelay() async -> TimeInterval {
        TimeInterval(await nextSyncDelayMs()) / 1000
    }
}

private final class ClosureSyncListener: SyncListener, @unchecked Sendable {
    private let body: @Sendable (SyncPhase, UInt64, UInt64) -> Void

    init(_ body: @escaping @Sendable (SyncPhase, UInt64, UInt64) -> Void) {
        self.body = body
    }

    func onProgress(phase: SyncPhase, done: UInt64, total: UInt64) {
        body(phase, done, total)
    }
}

extension NewCase {
    /// A new case with `Date`s: it happened at `occurredAt` (default: now) and the grid leader
    /// proposes it be handled by `proposedDeadline`.
    public init(
        category: Category,
        title: String,
        description: String = "",
        location: Location? = nil,
        occurred: Date = Date(),
        proposedDeadline: Date? = nil
    ) {
        self.init(
            category: category,
            title: title,
            description: description,
            location: location,
            occurredAt: occurred.epochMillis,
            proposedDeadline: proposedDeadline?.epochMillis
        )
    }
}

extension CaseDetail {
    public var occurredDate: Date { Date(epochMillis: occurredAt) }
    public var proposedDeadlineDate: Date? { proposedDeadline.map(Date.init(epochMillis:)) }
    public var deadlineDate: Date? { deadline.map(Date.init(epochMillis:)) }
    public var updatedDate: Date { Date(epochMillis: updatedAt) }
}

extension CaseSummary {
    public var deadlineDate: Date? { deadline.map(Date.init(epochMillis:)) }
    public var updatedDate: Date { Date(epochMillis: updatedAt) }
}

extension Photo {
    public var capturedDate: Date? { capturedAt.map(Date.init(epochMillis:)) }
}

extension TimelineEntry {
    public var date: Date { Date(epochMillis: time) }
}
