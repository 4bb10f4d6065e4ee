//! The terminal's sync engine: pushes what the grid leader recorded, uploads
//! photos resumably, pulls what the centre changed. See `protocol` for the wire
//! and `store::sync` for how answers are applied.

pub(crate) mod client;

pub use client::REQUEST_LOG_TARGET;

use crate::store::StoreError;

/// Why a sync did not finish. Everything recorded stays safe in the outbox;
/// the next sync carries on from where this one stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this terminal is not enrolled with a server")]
    NotEnrolled,
    #[error("offline: {reason}")]
    Offline { reason: String },
    #[error("the server is unavailable: {reason}")]
    ServerUnavailable { reason: String },
    #[error("the server does not accept this terminal's token (revoked or wrong); enrol again")]
    Unauthorised,
    /// The server refused the request itself (not an op: those are reported per op).
    #[error("the server refused the request ({code}): {message}")]
    Refused { code: String, message: String },
    #[error("the server's answer did not make sense: {reason}")]
    Protocol { reason: String },
    #[error("bad server address: {reason}")]
    InvalidServer { reason: String },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl SyncError {
    /// A short stable name of the kind of error, for logs and load reports.
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Offline { .. } => "offline",
            SyncError::ServerUnavailable { .. } => "server_unavailable",
            SyncError::Unauthorised => "unauthorised",
            SyncError::Refused { .. } => "refused",
            SyncError::Protocol { .. } => "protocol",
            SyncError::InvalidServer { .. } => "invalid_server",
            SyncError::Store(_) => "store",
            SyncError::Io(_) => "io",
        }
    }

    /// Worth trying again shortly by itself (network or server trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Offline { .. } | SyncError::ServerUnavailable { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    UploadingPhotos,
    Pushing,
    Pulling,
    DownloadingPhotos,
    Done,
}

/// Progress for the UI: the phase, and for photo transfers bytes done / total.
pub trait SyncProgress: Send + Sync {
    fn on_progress(&self, phase: SyncPhase, done: u64, total: u64);
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    pub ops_pushed: u32,
    pub ops_accepted: u32,
    pub ops_rejected: u32,
    pub ops_pulled: u32,
    pub photo_bytes_sent: u64,
    pub photo_bytes_received: u64,
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Ops still waiting (deferred, or left for the next sync).
    pub ops_waiting: u64,
    /// Transient failures retried along the way.
    pub retries: u32,
    /// The steps the server refused in this sync, with its reason each: a
    /// refused step is never settled (see `Terminal::needs_attention`).
    pub refused: Vec<crate::store::RefusedStep>,
    /// Refused steps on this terminal nobody has sent again, after this sync
    /// (this sync's and earlier ones').
    pub needs_attention: u64,
}
