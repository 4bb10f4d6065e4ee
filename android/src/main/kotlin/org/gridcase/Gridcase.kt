package org.gridcase

import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import uniffi.gridcase_ffi.CaseDetail
import uniffi.gridcase_ffi.CaseQuery
import uniffi.gridcase_ffi.CaseSummary
import uniffi.gridcase_ffi.Category
import uniffi.gridcase_ffi.ClientConfig
import uniffi.gridcase_ffi.GridcaseClient
import uniffi.gridcase_ffi.Location
import uniffi.gridcase_ffi.NewCase
import uniffi.gridcase_ffi.Photo
import uniffi.gridcase_ffi.SyncListener
import uniffi.gridcase_ffi.SyncPhase
import uniffi.gridcase_ffi.SyncReport
import uniffi.gridcase_ffi.TimelineEntry

// Thin Kotlin conveniences over the generated uniffi API (package uniffi.gridcase_ffi), only
// where the raw API is awkward: java.time instead of epoch milliseconds, java.nio paths, and
// paging. Everything else is used as generated.

/** Opens (creating if needed) the terminal's store in [dataDir]; 0 in [config] means the core's default. */
fun GridcaseClient.Companion.open(dataDir: Path, config: ClientConfig): GridcaseClient =
    GridcaseClient.open(dataDir.toAbsolutePath().toString(), config)

/** Opens the store in [dataDir] for the grid leader [actorId] with the core's default limits. */
fun GridcaseClient.Companion.open(dataDir: Path, actorId: String): GridcaseClient =
    open(dataDir, ClientConfig(actorId = actorId))

/**
 * A new case with java.time values: it happened at [occurredAt] (default: now) and the grid
 * leader proposes it be handled by [proposedDeadline], or within [proposedWithin] of now.
 */
fun NewCase.Companion.of(
    category: Category,
    title: String,
    description: String = "",
    location: Location? = null,
    occurredAt: Instant = Instant.now(),
    proposedDeadline: Instant? = null,
    proposedWithin: Duration? = null,
): NewCase {
    require(proposedDeadline == null || proposedWithin == null) { "give proposedDeadline or proposedWithin, not both" }
    val deadline = proposedDeadline ?: proposedWithin?.let { Instant.now() + it }
    return NewCase(
        category = category,
        title = title,
        description = description,
        location = location,
        occurredAt = occurredAt.toEpochMilli(),
        proposedDeadline = deadline?.toEpochMilli(),
    )
}

/** Attaches a camera photo from a file (decoded, turned upright, shrunk and stripped by the core). */
suspend fun GridcaseClient.addPhoto(caseId: String, file: Path): Photo =
    addPhotoFromFile(caseId, file.toAbsolutePath().toString())

/** Every case matching [query], following `nextPageToken` page by page as the flow is collected. */
fun GridcaseClient.allCases(query: CaseQuery = CaseQuery()): Flow<CaseSummary> = flow {
    var page = listCases(query)
    while (true) {
        page.cases.forEach { emit(it) }
        val token = page.nextPageToken ?: break
        page = listCases(query.copy(pageToken = token))
    }
}

/**
 * Syncs now, reporting progress to [onProgress] (called on a background thread: phase, bytes
 * done, bytes total). Cancelling the coroutine stops the sync safely.
 */
suspend fun GridcaseClient.syncNow(onProgress: (phase: SyncPhase, done: ULong, total: ULong) -> Unit): SyncReport =
    syncNow(object : SyncListener {
        override fun onProgress(phase: SyncPhase, done: ULong, total: ULong) = onProgress(phase, done, total)
    })

/** How long to wait before syncing again by itself (grows after failures; zero after a success). */
suspend fun GridcaseClient.nextSyncDelay(): Duration = Duration.ofMillis(nextSyncDelayMs().toLong())

private fun Long.toInstant(): Instant = Instant.ofEpochMilli(this)

val CaseDetail.occurredAtInstant: Instant get() = occurredAt.toInstant()
val CaseDetail.proposedDeadlineInstant: Instant? get() = proposedDeadline?.toInstant()
val CaseDetail.deadlineInstant: Instant? get() = deadline?.toInstant()
val CaseDetail.createdAtInstant: Instant get() = createdAt.toInstant()
val CaseDetail.updatedAtInstant: Instant get() = updatedAt.toInstant()
val CaseSummary.deadlineInstant: Instant? get() = deadline?.toInstant()
val CaseSummary.updatedAtInstant: Instant get() = updatedAt.toInstant()
val Photo.capturedAtInstant: Instant? get() = capturedAt?.toInstant()
val TimelineEntry.timeInstant: Instant get() = time.toInstant()

/** Time left before the case's deadline (the centre's, else the proposed one); negative when overdue; null without one. */
fun CaseDetail.timeLeft(now: Instant = Instant.now()): Duration? =
    (deadline ?: proposedDeadline)?.let { Duration.between(now, it.toInstant()) }

/** Time left before the case's deadline; negative when overdue; null without one. */
fun CaseSummary.timeLeft(now: Instant = Instant.now()): Duration? =
    deadline?.let { Duration.between(now, it.toInstant()) }
