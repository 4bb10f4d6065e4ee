//! Sync as the terminal does it: enrol once, then `sync_now` whenever there is
//! signal. One sync runs at a time (a second caller waits for the first and
//! then runs its own, usually idle, round). Dropping the future cancels it
//! safely: every answer is applied in one transaction, and anything not
//! applied is simply exchanged again next time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Error, Terminal};
use crate::case::CaseStatus;
use crate::ids::CaseId;
use crate::photo::sha256_hex;
use crate::protocol::{EnrolRequest, PushStatus, RatingLink, SyncRequest, MAX_PULL_OPS};
use crate::store::{EnrolExtras, OpSyncState, StoreError, SyncAccount};
use crate::sync::client::SyncClient;
use crate::sync::{SyncError, SyncPhase, SyncProgress, SyncReport};
use crate::time::now_millis;

/// Ops pushed per request: big enough for few round trips, small enough that a
/// lost answer costs little to repeat.
const PUSH_BATCH: usize = 200;
/// Upload photos in pieces so a broken connection loses at most one piece.
const UPLOAD_CHUNK: usize = 128 * 1024;
/// Tries per request before a sync gives up for now.
const ATTEMPTS: u32 = 4;

#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// How long to wait before the next automatic sync: exponential with full
    /// jitter (so 2,000 terminals coming back online do not hammer the server in step).
    fn delay(&self, jitter: &Mutex<fastrand::Rng>) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let cap_ms = (1_000u64 << self.failures.min(9)).min(300_000);
        Duration::from_millis(lock(jitter).u64(cap_ms / 2..=cap_ms))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Terminal {
    /// A client for one round. The HTTP client underneath lives as long as
    /// the terminal: building one (TLS roots and all) costs more than an idle
    /// sync, and its pool lets syncs close together share a connection.
    fn sync_client(
        &self,
        server_url: &str,
        token: Option<String>,
    ) -> Result<SyncClient, SyncError> {
        let http = match self.inner.http.get() {
            Some(http) => http.clone(),
            None => {
                let http = SyncClient::http(self.inner.config.request_timeout)?;
                self.inner.http.get_or_init(|| http).clone()
            }
        };
        SyncClient::new(http, server_url, token)
    }

    /// Enrols this terminal with a server using the one-time code the centre
    /// gave the grid leader, and downloads the grid map.
    ///
    /// Safe to repeat with the same code when an answer was lost (the server
    /// knows this terminal by its enrolment key). Once the account is saved
    /// the terminal is enrolled: if the map cannot be downloaded now, the
    /// next sync fetches it.
    pub async fn enrol(
        &self,
        server_url: &str,
        code: &str,
        device_name: &str,
    ) -> Result<SyncAccount, SyncError> {
        let client = self.sync_client(server_url, None)?;
        let request = EnrolRequest {
            code: code.trim().to_owned(),
            device_name: device_name.to_owned(),
            enrolment_key: Some(self.inner.store.enrolment_key()?),
        };
        let mut report = SyncReport::default();
        let resp = retry(&self.inner.jitter, &mut report, || client.enrol(&request)).await?;
        let account = SyncAccount {
            server_url: server_url.trim_end_matches('/').to_owned(),
            device_id: resp.device_id,
            account_id: resp.account_id,
            token: resp.token,
            grid_ids: resp.grid_ids,
            cursor: 0,
            last_success_at: None,
            history: None,
            grid_map_version: 0,
        };
        let extras = EnrolExtras {
            time_zone: Some(resp.time_zone).filter(|z| !z.is_empty()),
            account_name: Some(resp.account_name).filter(|n| !n.is_empty()),
        };
        // The first enrolment adopts what was recorded before it, in the
        // same transaction as the account.
        let adopted = self
            .inner
            .store
            .enrol(&account, &extras, now_millis(), &self.placer())?;
        *self
            .inner
            .actor_id
            .write()
            .unwrap_or_else(|e| e.into_inner()) = account.account_id.clone();
        self.reload_zone()?;
        if !adopted.is_empty() {
            self.notify(&adopted);
        }
        let authed = self.sync_client(&account.server_url, Some(account.token.clone()))?;
        if let Err(e) = self.fetch_grids(&authed, &mut report).await {
            tracing::warn!(error = %e, "no grid map yet; the next sync fetches it");
        }
        Ok(self.inner.store.sync_account()?.unwrap_or(account))
    }

    /// Downloads and loads the server's grid map (the part this device sees),
    /// remembering its version so a sync fetches it again only when it changes.
    async fn fetch_grids(
        &self,
        client: &SyncClient,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let (geojson, version) = retry(&self.inner.jitter, report, || client.grids()).await?;
        match self.load_grids(&geojson) {
            Ok(_) => self.inner.store.save_grid_map_version(version)?,
            // Not retried until the server's map changes: the same file would
            // be refused again.
            Err(e) => {
                tracing::warn!(error = %e, "the server's grid map was refused");
                self.inner.store.save_grid_map_version(version)?;
            }
        }
        Ok(())
    }

    /// How long an app should wait before syncing again by itself, after the
    /// failures so far (zero after a success).
    pub async fn next_sync_delay(&self) -> Duration {
        self.inner.sync.lock().await.delay(&self.inner.jitter)
    }

    /// Pushes everything waiting, uploads its photos, pulls what changed.
    pub async fn sync_now(
        &self,
        progress: Option<Arc<dyn SyncProgress>>,
    ) -> Result<SyncReport, SyncError> {
        let mut backoff = self.inner.sync.lock().await;
        let result = self.sync_round(progress.as_deref()).await;
        match &result {
            Ok(_) => backoff.failures = 0,
            Err(e) if e.is_transient() => backoff.failures += 1,
            Err(_) => {}
        }
        result
    }

    /// A one-time link (with its QR code) for the resident to rate a verified
    /// case on their own phone, when they would rather not tap a face on the
    /// grid leader's terminal.
    ///
    /// Needs the server: the link is the server's. A case not verified on
    /// this terminal is refused here with the server's own code
    /// (`not_allowed`), so the answer is the same with or without signal. If
    /// the on-site check is still waiting in the outbox, it is synced first:
    /// the server hands out links only for cases it holds as verified.
    pub async fn rating_link(&self, case_id: &CaseId) -> Result<RatingLink, SyncError> {
        let store = &self.inner.store;
        let account = store.sync_account()?.ok_or(SyncError::NotEnrolled)?;
        let case = store
            .case(case_id)?
            .ok_or(SyncError::Store(StoreError::CaseNotFound))?;
        if case.status != CaseStatus::Verified {
            return Err(not_awaiting_rating(case.status));
        }
        let waiting = store
            .timeline(case_id)?
            .iter()
            .any(|e| e.sync == OpSyncState::Pending);
        if waiting {
            self.sync_now(None).await?;
        }
        let client = self.sync_client(&account.server_url, Some(account.token))?;
        // A retry after a lost answer makes a second link; the first simply
        // expires unused.
        retry(&self.inner.jitter, &mut SyncReport::default(), || {
            client.rating_link(case_id)
        })
        .await
    }

    async fn sync_round(
        &self,
        progress: Option<&dyn SyncProgress>,
    ) -> Result<SyncReport, SyncError> {
        let store = &self.inner.store;
        let account = store.sync_account()?.ok_or(SyncError::NotEnrolled)?;
        let client = self.sync_client(&account.server_url, Some(account.token.clone()))?;
        let mut report = SyncReport::default();
        let tell = |phase, done, total| {
            if let Some(p) = progress {
                p.on_progress(phase, done, total);
            }
        };

        // Work an older version sent under its local name and had refused.
        self.adopt_refused_before_enrolment()?;
        let result = async {
            // Photos go up only when the server asks for them (an op answered
            // `deferred`): it decides everything else first, so nothing is
            // uploaded for an op it refuses.
            let mut uploads = 0;
            loop {
                let state = store.sync_account()?.ok_or(SyncError::NotEnrolled)?;
                let push = store.pending_ops(PUSH_BATCH)?;
                tell(
                    if push.is_empty() {
                        SyncPhase::Pulling
                    } else {
                        SyncPhase::Pushing
                    },
                    0,
                    0,
                );
                let request = SyncRequest {
                    push: push.clone(),
                    cursor: state.cursor,
                    pull_limit: MAX_PULL_OPS,
                    history: state.history.clone(),
                };
                if !push.is_empty() {
                    crate::failpoint::hit(crate::failpoint::SYNC_BEFORE_PUSH);
                }
                let resp = retry(&self.inner.jitter, &mut report, || client.sync(&request)).await?;
                if resp.results.len() > push.len()
                    || resp
                        .results
                        .iter()
                        .zip(&push)
                        .any(|(r, op)| r.op_id != op.id)
                {
                    return Err(SyncError::Protocol {
                        reason: "the push answer does not match the ops sent".into(),
                    });
                }
                if resp.reset {
                    if state.history.as_deref() == Some(resp.history.as_str()) && state.cursor == 0
                    {
                        return Err(SyncError::Protocol {
                            reason: "the server keeps asking to start over".into(),
                        });
                    }
                    store.start_over(&resp.history)?;
                    // The photos of ops put back in the outbox may be missing
                    // on the restored server too: it will ask for them.
                    uploads = 0;
                    continue;
                }
                if resp.grid_map_version != state.grid_map_version && resp.grid_map_version > 0 {
                    self.fetch_grids(&client, &mut report).await?;
                }
                let place = self.placer();
                let applied = store.apply_sync(&resp, now_millis(), &place)?;
                // A deferred op is pushed again after its photo: count it once.
                report.ops_pushed += resp
                    .results
                    .iter()
                    .filter(|r| r.status != PushStatus::Deferred)
                    .count() as u32;
                report.ops_accepted += applied.accepted;
                report.ops_rejected += applied.rejected;
                report.ops_pulled += applied.pulled;
                report.refused.extend(applied.refused);
                if !resp.time_zone.is_empty() {
                    self.reload_zone()?;
                }
                if !applied.changed_cases.is_empty() {
                    self.notify(&applied.changed_cases);
                }
                let deferred = resp
                    .results
                    .iter()
                    .any(|r| r.status == PushStatus::Deferred);
                if deferred {
                    // The server asks for photos: upload every one of the
                    // outbox it can accept, then push on. A second ask for
                    // the same is one more try (it lost a file); a third
                    // waits for the next sync.
                    if uploads == 2 {
                        break;
                    }
                    uploads += 1;
                    self.upload_photos(&client, &state.account_id, &mut report, &tell)
                        .await?;
                    continue;
                }
                let pushed_all = resp.results.len() == push.len();
                if push.is_empty() && !resp.more {
                    break;
                }
                if !pushed_all {
                    break;
                }
            }
            self.download_photos(&client, &mut report, &tell).await?;
            Ok::<(), SyncError>(())
        }
        .await;
        let wire = client.wire();
        report.requests = wire.requests;
        report.bytes_sent = wire.bytes_sent;
        report.bytes_received = wire.bytes_received;
        report.ops_waiting = store.outbox_len()?;
        report.needs_attention = store.refused_steps(None)?.len() as u64;
        result?;
        tell(SyncPhase::Done, 0, 0);
        Ok(report)
    }

    async fn upload_photos(
        &self,
        client: &SyncClient,
        account_id: &str,
        report: &mut SyncReport,
        tell: &(dyn Fn(SyncPhase, u64, u64) + Sync),
    ) -> Result<(), SyncError> {
        let files = self.inner.store.pending_photo_files(account_id)?;
        if files.is_empty() {
            return Ok(());
        }
        let total: u64 = files.iter().map(|(_, n)| n).sum();
        let mut done = 0u64;
        tell(SyncPhase::UploadingPhotos, done, total);
        for (sha, size) in files {
            let status = retry(&self.inner.jitter, report, || client.upload_status(&sha)).await?;
            if status.complete {
                done += size;
                tell(SyncPhase::UploadingPhotos, done, total);
                continue;
            }
            let path = self.inner.photos.path_of(&sha);
            let bytes = read_file(path).await?;
            let mut offset = status.received.min(bytes.len() as u64);
            done += offset;
            while offset < bytes.len() as u64 {
                let end = (offset as usize + UPLOAD_CHUNK).min(bytes.len());
                let chunk = bytes[offset as usize..end].to_vec();
                let sent = chunk.len() as u64;
                let result = client.upload(&sha, offset, bytes.len() as u64, chunk).await;
                match result {
                    Ok(status) => {
                        crate::failpoint::hit(crate::failpoint::UPLOAD_AFTER_CHUNK);
                        report.photo_bytes_sent += sent;
                        done += status.received.saturating_sub(offset);
                        offset = status.received;
                        if status.complete {
                            break;
                        }
                    }
                    Err(e) if e.is_transient() && report.retries < ATTEMPTS * 8 => {
                        // Ask the server where to continue: it keeps what arrived.
                        report.retries += 1;
                        report.photo_bytes_sent += sent;
                        tokio::time::sleep(retry_delay(&self.inner.jitter, report.retries)).await;
                        let status =
                            retry(&self.inner.jitter, report, || client.upload_status(&sha))
                                .await?;
                        done = done.saturating_sub(offset) + status.received;
                        offset = status.received;
                        if status.complete {
                            break;
                        }
                    }
                    // The server lost track (a parallel upload, a discarded
                    // corrupt file): ask where it stands and go on from there.
                    Err(SyncError::Refused { code, .. })
                        if matches!(
                            code.as_str(),
                            "upload_offset_mismatch" | "upload_busy" | "photo_hash_mismatch"
                        ) && report.retries < ATTEMPTS * 8 =>
                    {
                        report.retries += 1;
                        tokio::time::sleep(retry_delay(&self.inner.jitter, report.retries)).await;
                        let status =
                            retry(&self.inner.jitter, report, || client.upload_status(&sha))
                                .await?;
                        done = done.saturating_sub(offset) + status.received;
                        offset = status.received;
                        if status.complete {
                            break;
                        }
                    }
                    Err(e) => return Err(e),
                }
                tell(SyncPhase::UploadingPhotos, done, total);
            }
        }
        tell(SyncPhase::UploadingPhotos, total, total);
        Ok(())
    }

    async fn download_photos(
        &self,
        client: &SyncClient,
        report: &mut SyncReport,
        tell: &(dyn Fn(SyncPhase, u64, u64) + Sync),
    ) -> Result<(), SyncError> {
        let wanted = self.inner.store.photo_downloads()?;
        let total = wanted.len() as u64;
        for (i, sha) in wanted.into_iter().enumerate() {
            tell(SyncPhase::DownloadingPhotos, i as u64, total);
            if !self.inner.photos.contains(&sha) {
                let bytes = retry(&self.inner.jitter, report, || client.download(&sha)).await?;
                if sha256_hex(&bytes) != sha {
                    return Err(SyncError::Protocol {
                        reason: "a downloaded photo does not match its hash".into(),
                    });
                }
                report.photo_bytes_received += bytes.len() as u64;
                let lib = self.clone_handle();
                let sha2 = sha.clone();
                tokio::task::spawn_blocking(move || lib.inner.photos.write(&sha2, &bytes))
                    .await
                    .map_err(|_| SyncError::Protocol {
                        reason: "photo write was lost".into(),
                    })??;
            }
            self.inner.store.photo_downloaded(&sha)?;
        }
        Ok(())
    }
}

/// The refusal the server gives for a case that does not wait for a rating.
fn not_awaiting_rating(status: CaseStatus) -> SyncError {
    SyncError::Refused {
        code: "not_allowed".into(),
        message: format!(
            "only a verified case waits for a rating; on this terminal this one is {status}"
        ),
    }
}

fn retry_delay(jitter: &Mutex<fastrand::Rng>, attempt: u32) -> Duration {
    let cap = 100u64 << attempt.min(6);
    Duration::from_millis(lock(jitter).u64(cap / 2..=cap))
}

/// Runs a request, retrying transient failures a few times with jittered backoff.
async fn retry<T, F, Fut>(
    jitter: &Mutex<fastrand::Rng>,
    report: &mut SyncReport,
    mut f: F,
) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SyncError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                report.retries += 1;
                tracing::debug!(error = %e, attempt, "sync request failed; retrying");
                tokio::time::sleep(retry_delay(jitter, attempt)).await;
            }
            other => return other,
        }
    }
}

impl From<SyncError> for Error {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(s) => s.into(),
            other => Error::Sync(other),
        }
    }
}

async fn read_file(path: std::path::PathBuf) -> Result<Vec<u8>, SyncError> {
    tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|_| SyncError::Protocol {
            reason: "photo read was lost".into(),
        })?
        .map_err(SyncError::Io)
}
