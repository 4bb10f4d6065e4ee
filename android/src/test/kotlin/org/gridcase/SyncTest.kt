package org.gridcase

import java.awt.Color
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.io.TempDir
import uniffi.gridcase_ffi.CaseQuery
import uniffi.gridcase_ffi.CaseStatus
import uniffi.gridcase_ffi.Category
import uniffi.gridcase_ffi.ClientConfig
import uniffi.gridcase_ffi.GeoPoint
import uniffi.gridcase_ffi.GridcaseClient
import uniffi.gridcase_ffi.GridcaseException
import uniffi.gridcase_ffi.Location
import uniffi.gridcase_ffi.NewCase
import uniffi.gridcase_ffi.PhotoInput
import uniffi.gridcase_ffi.SyncPhase

/**
 * A grid leader's terminal, from Kotlin, enrolling with and syncing against the real
 * gridcase-server binary started by the test on an ephemeral port.
 */
class SyncTest {
    @TempDir
    lateinit var tmp: Path

    private lateinit var server: Process
    private lateinit var url: String
    private val serverBin = System.getProperty("gridcase.server.bin")
    private val grids = System.getProperty("gridcase.grids")

    // Inside grid 220402001001-G01 of the sample map.
    private val street = Location(GeoPoint(lat = 42.895, lon = 125.135, accuracyM = 5.0), address = "福民街12号")

    private fun admin(vararg args: String): String {
        val p = ProcessBuilder(listOf(serverBin, "admin") + args)
            .apply { environment()["GRIDCASE_DATA_DIR"] = tmp.resolve("server").toString() }
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val out = p.inputStream.bufferedReader().readText()
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "admin ${args.toList()} failed")
        return out
    }

    // The centre's 市政 department: a dispatch names a department that exists, by id.
    private lateinit var municipal: String

    @BeforeTest
    fun startServer() {
        admin("import-grids", grids)
        val created = admin("create-department", "--name", "市政", "--json")
        municipal = Regex("\"id\"\\s*:\\s*\"([^\"]+)\"").find(created)?.groupValues?.get(1)
            ?: error("create-department printed no id: $created")
        startServerOn("127.0.0.1:0")
    }

    private fun startServerOn(listen: String) {
        server = ProcessBuilder(serverBin, "serve", "--listen", listen)
            .apply { environment()["GRIDCASE_DATA_DIR"] = tmp.resolve("server").toString() }
            .start()
        val log = server.errorStream.bufferedReader()
        var addr: String? = null
        while (addr == null) {
            val line = log.readLine() ?: error("the server exited before listening")
            addr = Regex("addr=(\\S+)").find(line)?.groupValues?.get(1)
        }
        // Keep draining the log so the server never blocks on a full pipe.
        Thread { runCatching { log.forEachLine { } } }.apply { isDaemon = true }.start()
        url = "http://$addr"
    }

    @AfterTest
    fun stopServer() {
        server.destroy() // SIGTERM: graceful shutdown
        server.waitFor(10, TimeUnit.SECONDS)
    }

    private fun enrolmentCode(name: String): String {
        val json = admin("create-leader", "--name", name, "--grid", "220402001001-G01", "--json")
        return Regex("\"code\"\\s*:\\s*\"([^\"]+)\"").find(json)!!.groupValues[1]
    }

    private fun photo(): ByteArray {
        val img = BufferedImage(1200, 900, BufferedImage.TYPE_INT_RGB)
        val g = img.createGraphics()
        for (y in 0 until 900) {
            g.color = Color(80 + y / 8, 120, 200 - y / 9)
            g.drawLine(0, y, 1200, y)
        }
        g.dispose()
        return ByteArrayOutputStream().also { ImageIO.write(img, "jpg", it) }.toByteArray()
    }

    @Test
    fun recordedOfflineThenSyncedAndTheCentresDispatchComesBack() = runBlocking {
        val reporter = GridcaseClient.open(tmp.resolve("reporter"), ClientConfig(actorId = "unenrolled"))
        val colleague = GridcaseClient.open(tmp.resolve("colleague"), ClientConfig(actorId = "unenrolled"))
        try {
            val enrolment = reporter.enrol(url, enrolmentCode("张三"), "terminal-1")
            assertEquals(listOf("220402001001-G01"), enrolment.gridIds)
            colleague.enrol(url, enrolmentCode("李四"), "terminal-2")

            // Recorded with no signal, then synced.
            val case = reporter.createCase(
                NewCase.of(Category.COLLAPSED_MANHOLE, "井盖塌陷", location = street, proposedWithin = Duration.ofDays(2)),
            )
            reporter.addPhotoFromBytes(case.id, photo())
            reporter.submitCase(case.id)
            assertTrue(reporter.getCase(case.id).waitingToSync)

            val phases = mutableListOf<SyncPhase>()
            var uploaded = 0uL
            val totals = mutableSetOf<ULong>()
            val report = reporter.syncNow { phase, done, total ->
                synchronized(phases) {
                    phases += phase
                    if (phase == SyncPhase.UPLOADING_PHOTOS) {
                        uploaded = maxOf(uploaded, done)
                        totals += total
                    }
                }
            }
            assertEquals(3u, report.opsAccepted)
            assertEquals(0uL, report.opsWaiting)
            assertTrue(report.photoBytesSent > 0uL)
            assertTrue(SyncPhase.UPLOADING_PHOTOS in phases && SyncPhase.DONE in phases, "$phases")
            assertEquals(report.photoBytesSent, uploaded)
            // The total announced is the photo and its thumbnail, from the start.
            val photo = reporter.getCase(case.id).photos.single()
            val fileBytes = photo.bytes + java.nio.file.Files.size(Path.of(photo.thumbPath)).toULong()
            assertEquals(setOf(fileBytes), totals, "progress totals")
            assertEquals(fileBytes, uploaded, "progress reaches the total")
            val synced = reporter.getCase(case.id)
            assertEquals(CaseStatus.RECEIVED, synced.status, "the server's receive came back")
            assertTrue(!synced.waitingToSync)

            // The colleague in the same grid gets the case with its photo.
            colleague.syncNow(null)
            val seen = colleague.getCase(case.id)
            assertEquals("井盖塌陷", seen.title)
            assertEquals(1, seen.photos.size)
            assertTrue(java.io.File(seen.photos[0].path).exists())

            // The centre dispatches it; the reporter's terminal hears it.
            admin("dispatch", case.id, "--department", municipal, "--deadline-hours", "24")
            reporter.syncNow(null)
            val dispatched = reporter.getCase(case.id)
            assertEquals(CaseStatus.DISPATCHED, dispatched.status)
            assertEquals(municipal, dispatched.department)
            assertEquals("市政", dispatched.departmentName)
            assertEquals(1, reporter.listCases(CaseQuery(statuses = listOf(CaseStatus.DISPATCHED))).cases.size)
        } finally {
            reporter.shutdown()
            colleague.shutdown()
            reporter.close()
            colleague.close()
        }
    }

    @Test
    fun aVerifiedCaseGetsARatingLinkForTheResidentsPhone() = runBlocking {
        val leader = GridcaseClient.open(tmp.resolve("leader"), ClientConfig(actorId = "unenrolled"))
        try {
            leader.enrol(url, enrolmentCode("王五"), "terminal-3")
            val case = leader.createCase(
                NewCase.of(Category.ENVIRONMENT, "垃圾未清运", location = street, proposedWithin = Duration.ofDays(1)),
            )
            leader.submitCase(case.id)
            leader.syncNow(null)

            // Not yet checked on site: the server's own refusal, typed.
            val early = runCatching { leader.ratingLink(case.id) }.exceptionOrNull()
            assertTrue(early is GridcaseException.Rejected, "$early")
            assertEquals("not_allowed", early.code)

            admin("dispatch", case.id, "--department", municipal, "--deadline-hours", "24")
            admin("resolve", case.id, "--note", "已清运")
            leader.syncNow(null)
            assertEquals(CaseStatus.RESOLVED, leader.getCase(case.id).status)
            // Checked on site with no signal; the link syncs that first.
            leader.verifyCase(case.id, true, "已现场核实", emptyList(), null)

            val link = leader.ratingLink(case.id)
            assertTrue(link.url.startsWith("$url/r/"), link.url)
            assertTrue(link.expiresAt > System.currentTimeMillis())
            assertTrue(link.qrSvg.startsWith("<?xml") || link.qrSvg.startsWith("<svg"), link.qrSvg.take(40))
            assertTrue(!leader.getCase(case.id).waitingToSync, "the on-site check was synced for the link")

            // The resident's phone opens the page.
            val page = java.net.URI(link.url).toURL().openConnection() as java.net.HttpURLConnection
            assertEquals(200, page.responseCode)
            assertTrue(page.inputStream.bufferedReader().readText().contains("垃圾未清运"))
        } finally {
            leader.shutdown()
            leader.close()
        }
    }

    @Test
    fun aRefusedStepNeedsAttentionWithTheServersReasonUntilItIsSentAgain() = runBlocking {
        val leader = GridcaseClient.open(tmp.resolve("refused"), ClientConfig(actorId = "unenrolled"))
        try {
            // Recorded before enrolment, with its photo and its submission in one step:
            // the first enrolment adopts it, and the server takes it.
            val case = leader.recordCase(
                NewCase.of(Category.LEAKING_HOUSE, "三楼漏水", location = street, proposedWithin = Duration.ofDays(2)),
                listOf(PhotoInput.Bytes(photo())),
                true,
                null,
            )
            leader.enrol(url, enrolmentCode("赵六"), "terminal-5")
            val first = leader.syncNow(null)
            assertEquals(3u, first.opsAccepted)
            assertTrue(first.refused.isEmpty() && leader.needsAttention().isEmpty())
            val adopted = leader.getCase(case.id)
            assertTrue(adopted.timeline.filter { it.actorRole == "grid_leader" }.all { it.recordedBeforeEnrolmentAs == "unenrolled" })

            // The centre dispatches it; offline, the grid leader withdraws it all the same.
            admin("dispatch", case.id, "--department", municipal, "--deadline-hours", "24")
            leader.cancelCase(case.id, "重复上报")
            val report = leader.syncNow(null)
            assertEquals(1u, report.opsRejected)
            assertEquals(1, report.refused.size)
            assertEquals(1uL, report.needsAttention)
            val attention = leader.needsAttention()
            assertEquals(1, attention.size)
            val step = attention.single()
            assertEquals(case.id, step.caseId)
            assertEquals("cancel", step.kind)
            assertEquals("not_allowed", step.code)
            assertTrue(step.reason.contains("dispatched"), step.reason)
            val shown = leader.getCase(case.id)
            assertEquals(CaseStatus.DISPATCHED, shown.status, "the server's state, not the refused step's")
            assertEquals(listOf(step.opId), shown.refused.map { it.opId })
            assertEquals(1u, leader.listCases(CaseQuery(refused = true)).cases.single().refusedSteps)

            // Sent again: no longer waiting for the grid leader, and refused again by the server.
            val resent = leader.resendRefused(case.id)
            assertTrue(resent.refused.isEmpty() && resent.waitingToSync)
            assertTrue(leader.needsAttention().isEmpty())
            assertEquals(1u, leader.syncNow(null).opsRejected)
            assertEquals(1, leader.needsAttention().size)
        } finally {
            leader.shutdown()
            leader.close()
        }
    }

    @Test
    fun theBackoffGrowsWithFailuresAndIsZeroAfterASuccess() = runBlocking {
        val client = GridcaseClient.open(tmp.resolve("backoff"), ClientConfig(actorId = "unenrolled"))
        try {
            client.enrol(url, enrolmentCode("赵六"), "terminal-4")
            client.syncNow(null)
            assertEquals(Duration.ZERO, client.nextSyncDelay(), "after a success")

            // The server goes away: each failed sync waits longer (full jitter
            // over [cap/2, cap], the cap doubling from 2 s).
            server.destroy()
            assertTrue(server.waitFor(10, TimeUnit.SECONDS))
            val delays = (1..3).map {
                assertTrue(runCatching { client.syncNow(null) }.exceptionOrNull() is GridcaseException.Offline)
                client.nextSyncDelay()
            }
            val caps = listOf(2L, 4L, 8L).map { Duration.ofSeconds(it) }
            for ((delay, cap) in delays.zip(caps)) {
                assertTrue(delay >= cap.dividedBy(2) && delay <= cap, "delay $delay for cap $cap: $delays")
            }

            // Back on the same address: one success and the wait is gone.
            startServerOn(url.removePrefix("http://"))
            client.syncNow(null)
            assertEquals(Duration.ZERO, client.nextSyncDelay(), "after the server came back")
        } finally {
            client.shutdown()
            client.close()
        }
    }

    @Test
    fun aWrongCodeAndAnUnreachableServerAreTypedErrors() = runBlocking {
        val client = GridcaseClient.open(tmp.resolve("t"), ClientConfig(actorId = "x"))
        try {
            val refused = runCatching { client.enrol(url, "0000-0000-0000", "t") }.exceptionOrNull()
            assertTrue(refused is GridcaseException.Rejected, "$refused")
            assertEquals("enrol_code_invalid", refused.code)
            val offline = runCatching { client.enrol("http://127.0.0.1:9", "AAAA-BBBB-CCCC", "t") }.exceptionOrNull()
            assertTrue(offline is GridcaseException.Offline, "$offline")
            val notEnrolled = runCatching { client.syncNow(null) }.exceptionOrNull()
            assertTrue(notEnrolled is GridcaseException.NotEnrolled, "$notEnrolled")
        } finally {
            client.close()
        }
    }
}
