//! Photo files: resumable uploads and downloads, content-addressed by SHA-256.
//!
//! Layout under the data folder:
//! - `photos/ab/abcdef…` — complete files, named by their checked SHA-256;
//! - `uploads/abcdef….part` — the bytes received so far of an upload.
//!
//! A name from a client is used in a path only after it is checked to be 64
//! lowercase hex digits. An upload appends at the offset the server holds; when
//! `total` bytes are there the hash is checked, and the file is fsynced and
//! renamed into `photos/` (or discarded on a mismatch). One upload per file at a
//! time; the upload runs in its own task, so a client that disconnects mid-way
//! leaves a consistent partial file behind to resume from.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use gridcase_core::protocol::{UploadStatus, MAX_PHOTO_BYTES};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::accounts::DeviceAuth;
use crate::error::{codes, reasons, AppError};
use crate::AppState;

/// Whether `s` is a SHA-256 as the protocol writes it: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub struct PhotoStore {
    photos: PathBuf,
    uploads: PathBuf,
    busy: Mutex<HashSet<String>>,
}

/// Marks a file as being uploaded; cleared when dropped.
struct Busy {
    store: Arc<PhotoStore>,
    sha: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.store.busy.lock() {
            busy.remove(&self.sha);
        }
    }
}

impl PhotoStore {
    pub fn open(data_dir: &Path) -> std::io::Result<PhotoStore> {
        let photos = data_dir.join("photos");
        let uploads = data_dir.join("uploads");
        std::fs::create_dir_all(&photos)?;
        std::fs::create_dir_all(&uploads)?;
        Ok(PhotoStore {
            photos,
            uploads,
            busy: Mutex::new(HashSet::new()),
        })
    }

    /// Keeps a complete file made on the server (a department's photo) under
    /// its SHA-256, durably and atomically; answers the SHA-256. Blocking.
    pub fn keep(&self, bytes: &[u8]) -> std::io::Result<String> {
        use std::io::Write;
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.final_path(&sha);
        if path.is_file() {
            return Ok(sha);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let part = self.uploads.join(format!("{sha}.made"));
        let mut file = std::fs::File::create(&part)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&part, &path)?;
        Ok(sha)
    }

    /// Only for a checked sha.
    fn final_path(&self, sha: &str) -> PathBuf {
        debug_assert!(is_sha256(sha));
        self.photos.join(&sha[..2]).join(sha)
    }

    fn part_path(&self, sha: &str) -> PathBuf {
        debug_assert!(is_sha256(sha));
        self.uploads.join(format!("{sha}.part"))
    }

    /// The size of the complete, checked file, if the server has it. Blocking
    /// (one `stat`).
    pub fn complete_size(&self, sha: &str) -> Option<u64> {
        if !is_sha256(sha) {
            return None;
        }
        std::fs::metadata(self.final_path(sha))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    async fn status(&self, sha: &str) -> UploadStatus {
        if let Ok(meta) = tokio::fs::metadata(self.final_path(sha)).await {
            return UploadStatus {
                sha256: sha.to_string(),
                received: meta.len(),
                complete: true,
            };
        }
        let received = tokio::fs::metadata(self.part_path(sha))
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        UploadStatus {
            sha256: sha.to_string(),
            received,
            complete: false,
        }
    }

    fn try_busy(self: &Arc<Self>, sha: &str) -> Option<Busy> {
        let mut busy = self.busy.lock().ok()?;
        busy.insert(sha.to_string()).then(|| Busy {
            store: self.clone(),
            sha: sha.to_string(),
        })
    }
}

fn sha_from_path(path: Result<UrlPath<String>, PathRejection>) -> Result<String, AppError> {
    let UrlPath(sha) = path.map_err(|_| {
        AppError::invalid(
            "sha256",
            reasons::NOT_A_SHA256,
            "the photo name is not valid",
        )
    })?;
    check_sha(&sha)?;
    Ok(sha)
}

/// A photo name from a URL, before it may become part of a path.
pub fn check_sha(sha: &str) -> Result<(), AppError> {
    if !is_sha256(sha) {
        return Err(AppError::invalid(
            "sha256",
            reasons::NOT_A_SHA256,
            "a photo is named by its SHA-256: 64 lowercase hex digits",
        ));
    }
    Ok(())
}

/// The query of `PUT /v1/photos/{sha256}`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadRange {
    pub offset: u64,
    pub total: u64,
}

impl UploadRange {
    /// Reads `offset=N&total=T` and checks them against each other and the
    /// protocol's size limit.
    pub fn parse(query: Option<&str>) -> Result<UploadRange, AppError> {
        let UploadParams { offset, total } = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| {
                AppError::invalid(
                    "offset",
                    reasons::NOT_A_NUMBER,
                    "offset and total must be given as whole numbers of bytes",
                )
            })?;
        if total > MAX_PHOTO_BYTES {
            return Err(AppError::too_large(format!(
                "a photo file may have at most {MAX_PHOTO_BYTES} bytes"
            ))
            .with_field("total"));
        }
        if total == 0 {
            return Err(AppError::invalid(
                "total",
                reasons::REQUIRED,
                "a photo file is not empty",
            ));
        }
        if offset > total {
            return Err(AppError::invalid(
                "offset",
                reasons::INVALID,
                "the offset is past the end of the file",
            ));
        }
        Ok(UploadRange { offset, total })
    }
}

/// `GET /v1/photos/{sha256}/upload`
pub(crate) async fn upload_status_handler(
    State(state): State<AppState>,
    _device: DeviceAuth,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<UploadStatus>, AppError> {
    let sha = sha_from_path(path)?;
    Ok(Json(state.photos.status(&sha).await))
}

#[derive(Deserialize)]
struct UploadParams {
    offset: u64,
    total: u64,
}

/// `PUT /v1/photos/{sha256}?offset=N&total=T`, body = the bytes from `N`.
pub(crate) async fn upload_handler(
    State(state): State<AppState>,
    device: DeviceAuth,
    path: Result<UrlPath<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<UploadStatus>, AppError> {
    let sha = sha_from_path(path)?;
    let UploadRange { offset, total } = UploadRange::parse(query.as_deref())?;
    let store = state.photos.clone();
    let status = store.status(&sha).await;
    if status.complete {
        // Already here (from this device or another): nothing to send.
        return Ok(Json(status));
    }
    let busy = store.try_busy(&sha).ok_or_else(|| {
        AppError::new(
            StatusCode::CONFLICT,
            codes::UPLOAD_BUSY,
            "this file is being uploaded by another request; ask for the status and try again",
        )
    })?;
    // In its own task: it runs to the end (and the file stays consistent) even
    // if this request is dropped with its connection.
    let device_id = device.device_id;
    tokio::spawn(receive(store, busy, sha, offset, total, body, device_id)).await?
}

async fn receive(
    store: Arc<PhotoStore>,
    _busy: Busy,
    sha: String,
    offset: u64,
    total: u64,
    body: Body,
    device_id: String,
) -> Result<Json<UploadStatus>, AppError> {
    let part = store.part_path(&sha);
    let mut held = tokio::fs::metadata(&part)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if held > total {
        // Left by a request that claimed another size for the same content.
        tokio::fs::remove_file(&part)
            .await
            .map_err(|e| AppError::io("discarding a partial upload", e))?;
        held = 0;
    }
    if offset != held {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            codes::UPLOAD_OFFSET_MISMATCH,
            format!("the server holds {held} bytes of this file; send from there"),
        )
        .with_field("offset"));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .map_err(|e| AppError::io("opening a partial upload", e))?;
    let mut stream = body.into_data_stream();
    let mut interrupted = false;
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = match chunk {
            Ok(chunk) => chunk,
            Err(_) => {
                interrupted = true;
                break;
            }
        };
        if held + chunk.len() as u64 > total {
            // Keep what earlier requests sent; drop this one's bytes.
            file.set_len(offset)
                .await
                .map_err(|e| AppError::io("truncating a partial upload", e))?;
            return Err(AppError::invalid(
                "body",
                reasons::INVALID,
                "the body goes past the file's total size",
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::io("writing a partial upload", e))?;
        held += chunk.len() as u64;
    }
    file.sync_data()
        .await
        .map_err(|e| AppError::io("syncing a partial upload", e))?;
    gridcase_core::durability::note(gridcase_core::durability::FsEvent::Synced(&part));
    drop(file);
    gridcase_core::failpoint::hit(gridcase_core::failpoint::SERVER_AFTER_UPLOAD_CHUNK);
    if interrupted {
        tracing::info!(device = %device_id, sha = %sha, held, total, "upload interrupted");
        return Err(AppError::invalid(
            "body",
            reasons::BAD_BODY,
            "the upload was interrupted; ask for the status and resume",
        ));
    }
    if held < total {
        return Ok(Json(UploadStatus {
            sha256: sha,
            received: held,
            complete: false,
        }));
    }
    let finished = {
        let (store, sha) = (store.clone(), sha.clone());
        tokio::task::spawn_blocking(move || finish(&store, &sha)).await?
    };
    match finished {
        Ok(true) => {
            tracing::info!(device = %device_id, sha = %sha, bytes = total, "photo received");
            Ok(Json(UploadStatus {
                sha256: sha,
                received: total,
                complete: true,
            }))
        }
        Ok(false) => {
            tracing::warn!(device = %device_id, sha = %sha, "upload discarded: hash mismatch");
            Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::PHOTO_HASH_MISMATCH,
                "the bytes received do not have this SHA-256; they were discarded, upload again from 0",
            ))
        }
        Err(e) => Err(AppError::io("finishing an upload", e)),
    }
}

/// Checks the complete partial file's hash: keeps it (fsync, rename, fsync the
/// folder) and answers `true`, or deletes it and answers `false`.
fn finish(store: &PhotoStore, sha: &str) -> std::io::Result<bool> {
    let part = store.part_path(sha);
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(&part)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    drop(file);
    if hex::encode(hasher.finalize()) != sha {
        std::fs::remove_file(&part)?;
        return Ok(false);
    }
    let target = store.final_path(sha);
    let dir = target.parent().expect("a photo path has a folder");
    std::fs::create_dir_all(dir)?;
    std::fs::File::open(&part)?.sync_all()?;
    gridcase_core::durability::note(gridcase_core::durability::FsEvent::Synced(&part));
    std::fs::rename(&part, &target)?;
    gridcase_core::durability::note(gridcase_core::durability::FsEvent::Renamed {
        from: &part,
        to: &target,
    });
    std::fs::File::open(dir)?.sync_all()?;
    gridcase_core::durability::note(gridcase_core::durability::FsEvent::DirSynced(dir));
    Ok(true)
}

/// `GET /v1/photos/{sha256}`: only to devices that see a case using the file.
pub(crate) async fn download_handler(
    State(state): State<AppState>,
    device: DeviceAuth,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, AppError> {
    let sha = sha_from_path(path)?;
    let visible = {
        let sha = sha.clone();
        state
            .store
            .read(move |tx| {
                let (sha, device) = (sha.clone(), device.clone());
                Box::pin(async move { tx.photo_visible_to(&sha, &device.account_id).await })
            })
            .await?
    };
    // The same answer whether the file is unknown or not the device's to see.
    let not_found = || AppError::not_found("no such photo");
    if !visible {
        return Err(not_found());
    }
    serve_photo(&state, &sha).await
}

/// The photo file `sha` (already checked to be the asker's to see).
pub(crate) async fn serve_photo(state: &AppState, sha: &str) -> Result<Response, AppError> {
    let not_found = || AppError::not_found("no such photo");
    let file = tokio::fs::File::open(state.photos.final_path(sha))
        .await
        .map_err(|_| not_found())?;
    let len = file
        .metadata()
        .await
        .map_err(|e| AppError::io("reading a photo", e))?
        .len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_string(),
            ),
            (header::ETAG, format!("\"{sha}\"")),
        ],
        body,
    )
        .into_response())
}
