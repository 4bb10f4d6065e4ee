package org.gridcase

import java.awt.BasicStroke
import java.awt.Color
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.io.TempDir
import uniffi.gridcase_ffi.CaseListener
import uniffi.gridcase_ffi.CaseQuery
import uniffi.gridcase_ffi.CaseStatus
import uniffi.gridcase_ffi.Category
import uniffi.gridcase_ffi.ClientConfig
import uniffi.gridcase_ffi.Face
import uniffi.gridcase_ffi.GeoPoint
import uniffi.gridcase_ffi.GridcaseClient
import uniffi.gridcase_ffi.GridcaseException
import uniffi.gridcase_ffi.Location
import uniffi.gridcase_ffi.NewCase
import uniffi.gridcase_ffi.SyncState
import uniffi.gridcase_ffi.categories

/** The Kotlin API against the real host-built Rust library (JNA), as the apps use it. */
class ClientTest {
    @TempDir
    lateinit var tmp: Path

    private lateinit var client: GridcaseClient

    // A street in Liaoyuan, where the manhole collapsed.
    private val street = Location(GeoPoint(lat = 42.888, lon = 125.143, accuracyM = 6.0), address = "Renmin Street 12")

    @BeforeTest
    fun open() {
        client = GridcaseClient.open(tmp.resolve("data"), ClientConfig(actorId = "leader-0042", maxPhotoEdge = 800u, thumbEdge = 160u))
    }

    @AfterTest
    fun close() {
        client.close() // AutoCloseable: frees the Rust object
    }

    private fun manhole(location: Location? = street) = NewCase.of(
        category = Category.COLLAPSED_MANHOLE,
        title = "Manhole collapsed after the storm",
        description = "A car's front wheel fell in; cones needed now.",
        location = location,
        occurredAt = Instant.now() - Duration.ofMinutes(20),
        proposedWithin = Duration.ofDays(3),
    )

    @Test
    fun `records a case with a real photo and lists it`() = runBlocking {
        val draft = client.createCase(manhole())
        assertEquals(CaseStatus.DRAFT, draft.status)
        assertEquals("leader-0042", draft.reportedBy)
        assertEquals(street, draft.location)
        val left = assertNotNull(draft.timeLeft())
        assertTrue(left > Duration.ofDays(2) && left <= Duration.ofDays(3), "time left $left")

        val jpeg = tmp.resolve("IMG_0001.jpg")
        Files.write(jpeg, jpegBytes(1600, 1200))
        val photo = client.addPhoto(draft.id, jpeg)
        assertTrue(Regex("[0-9a-f]{64}").matches(photo.sha256), photo.sha256)
        // Shrunk to the configured long edge, aspect ratio kept.
        assertEquals(800u, photo.width)
        assertEquals(600u, photo.height)
        assertTrue(Files.size(Path.of(photo.path)) > 0)
        assertTrue(Files.size(Path.of(photo.thumbPath)) > 0)
        val thumb = ImageIO.read(Path.of(photo.thumbPath).toFile())
        assertEquals(160, maxOf(thumb.width, thumb.height))

        val submitted = client.submitCase(draft.id)
        assertEquals(CaseStatus.SUBMITTED, submitted.status)

        val page = client.listCases(CaseQuery())
        val listed = page.cases.single { it.id == draft.id }
        assertEquals(1u, listed.photoCount)
        assertEquals(CaseStatus.SUBMITTED, listed.status)
        assertEquals("Manhole collapsed after the storm", listed.title)
        assertEquals(listOf(draft.id), client.allCases(CaseQuery(statuses = listOf(CaseStatus.SUBMITTED))).toList().map { it.id })

        val detail = client.getCase(draft.id)
        assertEquals(listOf(photo.id), detail.photos.map { it.id })
        // The three steps, in order, each the grid leader's, each waiting for signal.
        assertEquals(listOf("create", "attach_photo", "submit"), detail.timeline.map { it.kind })
        assertTrue(detail.timeline.all { it.actorId == "leader-0042" })
        assertTrue(detail.timeline.all { it.syncState == SyncState.PENDING }, "${detail.timeline.map { it.syncState }}")
        assertTrue(detail.timeline.zipWithNext().all { (a, b) -> a.timeInstant <= b.timeInstant })
        assertTrue(detail.timeline.last().timeInstant <= Instant.now())
    }

    @Test
    fun `allCases follows every page`() = runBlocking {
        val ids = (1..7).map { client.createCase(manhole()).id }
        val first = client.listCases(CaseQuery(pageSize = 3u))
        assertEquals(3, first.cases.size)
        assertNotNull(first.nextPageToken, "a first page of 3 out of 7 says there is more")
        val all = client.allCases(CaseQuery(pageSize = 3u)).toList().map { it.id }
        assertEquals(7, all.size, "every case once: $all")
        assertEquals(ids.toSet(), all.toSet())
        // The same order as one big page.
        assertEquals(client.listCases(CaseQuery(pageSize = 100u)).cases.map { it.id }, all)
    }

    @Test
    fun `errors arrive as Kotlin exceptions carrying their fields`() = runBlocking {
        val badLat = Location(GeoPoint(lat = 91.5, lon = 125.1, accuracyM = 5.0), address = null)
        val invalid = assertFailsWith<GridcaseException.InvalidInput> { client.createCase(manhole(location = badLat)) }
        assertEquals("location.lat", invalid.field)
        assertTrue(invalid.reason.isNotBlank())

        val past = assertFailsWith<GridcaseException.InvalidInput> {
            client.createCase(manhole().copy(proposedDeadline = (Instant.now() - Duration.ofDays(1)).toEpochMilli()))
        }
        assertEquals("proposed_deadline", past.field)

        val case = client.createCase(manhole())
        val notAnImage = assertFailsWith<GridcaseException.Photo> {
            client.addPhotoFromBytes(case.id, "this is not a JPEG".toByteArray())
        }
        assertTrue(notAnImage.reason.isNotBlank())

        // A well-formed id this store has never seen.
        val elsewhere = GridcaseClient.open(tmp.resolve("other"), "leader-0043")
        val foreignId = elsewhere.use { it.createCase(manhole()).id }
        assertFailsWith<GridcaseException.NotFound> { client.getCase(foreignId) }

        // Rating a draft is not allowed by the case's state machine.
        assertFailsWith<GridcaseException.NotAllowed> { client.rateCase(case.id, Face.SMILEY, "") }

        // Sync needs an enrolment first; that is no network trouble, so no backoff.
        assertFailsWith<GridcaseException.NotEnrolled> { client.syncNow { _, _, _ -> } }
        assertEquals(Duration.ZERO, client.nextSyncDelay())

        client.shutdown()
        assertFailsWith<GridcaseException.Closed> { client.listCases(CaseQuery()) }
        Unit
    }

    @Test
    fun `suspend calls work from coroutines, concurrently`() = runTest {
        val case = client.createCase(manhole())
        val photos = (1..4).map { i ->
            async(Dispatchers.Default) { client.addPhotoFromBytes(case.id, jpegBytes(640 + 16 * i, 480)) }
        }.awaitAll()
        assertEquals(4, photos.map { it.id }.toSet().size)
        assertEquals(4, photos.map { it.sha256 }.toSet().size)
        assertEquals(photos.map { it.id }.toSet(), client.getCase(case.id).photos.map { it.id }.toSet())
    }

    @Test
    fun `the listener fires when a case changes`() {
        val changes = LinkedBlockingQueue<List<String>>()
        client.setListener(object : CaseListener {
            override fun onCasesChanged(caseIds: List<String>) {
                changes.put(caseIds)
            }
        })
        val case = client.createCase(manhole())
        assertTrue(case.id in nextChange(changes), "created")
        client.submitCase(case.id)
        assertTrue(case.id in nextChange(changes), "submitted")
        client.clearListener()
        // Cleared: a change now reaches nobody.
        client.cancelCase(client.createCase(manhole()).id, "duplicate report")
        assertEquals(null, changes.poll(500, TimeUnit.MILLISECONDS), "heard after clearListener")
    }

    @Test
    fun `the caseChanges flow emits when a case changes`() = runBlocking {
        val case = client.createCase(manhole())
        // Inside withTimeout, so the collectors are cancelled (not left hanging) if nothing comes.
        withTimeout(10_000) {
            // Subscribed before async returns (UNDISPATCHED runs the collector up to its first suspension).
            val a = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
                client.caseChanges().first { case.id in it }
            }
            val b = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
                client.caseChanges().first { case.id in it }
            }
            client.cancelCase(case.id, "duplicate report")
            assertTrue(case.id in a.await())
            assertTrue(case.id in b.await())
        }
        assertEquals(CaseStatus.CANCELLED, client.getCase(case.id).status)
    }

    @Test
    fun `categories carry their names`() {
        val manhole = categories().single { it.category == Category.COLLAPSED_MANHOLE }
        assertEquals("下水井塌陷", manhole.nameZh)
        assertEquals(categories().size, categories().map { it.code }.toSet().size, "codes are unique")
    }

    private fun nextChange(q: LinkedBlockingQueue<List<String>>): List<String> =
        assertNotNull(q.poll(10, TimeUnit.SECONDS), "no change reported within 10 s")

    /** A real camera-like JPEG: gradient sky, a road and a dark hole, so it compresses like a photo. */
    private fun jpegBytes(width: Int, height: Int): ByteArray {
        val img = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
        val g = img.createGraphics()
        for (y in 0 until height) {
            g.color = Color(90 + 100 * y / height, 140 + 60 * y / height, 220 - 80 * y / height)
            g.drawLine(0, y, width, y)
        }
        g.color = Color.GRAY
        g.fillRect(0, height * 2 / 3, width, height / 3)
        g.color = Color.BLACK
        g.fillOval(width / 3, height * 3 / 4, width / 4, height / 10)
        g.color = Color.ORANGE
        g.stroke = BasicStroke(6f)
        g.drawLine(width / 5, height, width / 4, height * 2 / 3)
        g.dispose()
        return ByteArrayOutputStream().use { out ->
            check(ImageIO.write(img, "jpg", out)) { "no JPEG writer" }
            out.toByteArray()
        }
    }
}
