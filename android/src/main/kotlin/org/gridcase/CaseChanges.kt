package org.gridcase

import java.util.Collections
import java.util.WeakHashMap
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import uniffi.gridcase_ffi.CaseListener
import uniffi.gridcase_ffi.GridcaseClient

/**
 * The ids of the cases that changed, one list per change the core reports, in order.
 *
 * A cold flow over the core's foreign [CaseListener]. The client has a single listener slot,
 * so the first call installs one fan-out listener for this client, and every collector (any
 * number, at any time) subscribes to it. A collector is subscribed as soon as `collect`
 * starts, before its first suspension (so with `launch(start = CoroutineStart.UNDISPATCHED)`
 * no change made after the launch is missed), and unsubscribed when it is cancelled or
 * completes. Each collector has an unbounded buffer: nothing is dropped and the Rust thread
 * that reports a change never waits for a slow collector.
 *
 * Do not call [GridcaseClient.setListener] or `clearListener` yourself on a client you observe
 * this way: that would replace the fan-out listener.
 */
fun GridcaseClient.caseChanges(): Flow<List<String>> {
    val hub = synchronized(hubs) { hubs.getOrPut(this) { ChangeHub().also { setListener(it) } } }
    return flow {
        val inbox = Channel<List<String>>(Channel.UNLIMITED)
        val subscriber: (List<String>) -> Unit = { ids -> inbox.trySend(ids) }
        hub.subscribers += subscriber
        try {
            for (ids in inbox) emit(ids)
        } finally {
            hub.subscribers -= subscriber
        }
    }
}

/** Holds no reference to its client, so the client can still be collected while Rust keeps this. */
private class ChangeHub : CaseListener {
    val subscribers = CopyOnWriteArrayList<(List<String>) -> Unit>()

    /** Called on a Rust thread, after the change is committed: never throw back across the FFI. */
    override fun onCasesChanged(caseIds: List<String>) {
        for (s in subscribers) runCatching { s(caseIds) }
    }
}

private val hubs: MutableMap<GridcaseClient, ChangeHub> = Collections.synchronizedMap(WeakHashMap())
