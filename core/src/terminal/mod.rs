//! The grid leader's terminal: the API the Android and iOS apps (through
//! `gridcase-ffi`) and the CLI use. It joins the store, photo intake and the
//! grid map, and speaks as the terminal's grid leader.

mod error;
#[cfg(feature = "sync")]
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use error::Error;

use crate::case::{next_status, Case, CaseDraft, CaseEdit, Face};
use crate::deadline::{check_proposed_deadline, DEFAULT_HORIZON};
use crate::grid::{GridMap, GridUnit};
use crate::ids::{CaseId, OpId, PhotoId};
use crate::location::{GeoPoint, Location};
use crate::op::{Actor, Op, OpKind, PhotoRef, Role};
use crate::photo::{PhotoConfig, PhotoLibrary, ProcessedPhoto};
use crate::store::{CasePage, CaseQuery, PhotoRow, Recorded, Store, TimelineEntry};
use crate::time::{now_millis, Millis};

/// Told after every committed change, off the store's locks.
pub trait CaseChangeListener: Send + Sync {
    fn cases_changed(&self, case_ids: &[CaseId]);
}

#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// The grid leader's account on this terminal; every op carries it.
    pub actor_id: String,
    /// How far ahead a proposed deadline may be.
    pub deadline_horizon: Millis,
    pub photo: PhotoConfig,
    /// Seeds the jitter of sync retries and backoff; `None`: a seed from the
    /// OS. Tests fix it so that a failing run waits the same way again.
    pub sync_seed: Option<u64>,
    /// How long one sync request may take before it counts as lost.
    pub request_timeout: std::time::Duration,
}

impl TerminalConfig {
    pub fn new(actor_id: impl Into<String>) -> Self {
        Self {
            actor_id: actor_id.into(),
            deadline_horizon: DEFAULT_HORIZON,
            photo: PhotoConfig::default(),
            sync_seed: None,
            request_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Where a photo comes from: the camera app's file, or its bytes.
#[derive(Debug, Clone)]
pub enum PhotoSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A photo of a case with the paths of its files on this terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct CasePhoto {
    pub row: PhotoRow,
    pub path: PathBuf,
    pub thumb_path: PathBuf,
}

/// Everything the case screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDetail {
    pub case: Case,
    pub overdue: bool,
    pub waiting_to_sync: bool,
    pub photos: Vec<CasePhoto>,
    pub timeline: Vec<TimelineEntry>,
}

pub struct Terminal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    photos: PhotoLibrary,
    grids: RwLock<Arc<GridMap>>,
    config: TerminalConfig,
    listener: RwLock<Option<Arc<dyn CaseChangeListener>>>,
    /// Who this terminal's ops are recorded as: the enrolled account once
    /// enrolled, the configured id before.
    actor_id: RwLock<String>,
    #[cfg(feature = "sync")]
    sync: tokio::sync::Mutex<sync::Backoff>,
    #[cfg(feature = "sync")]
    http: std::sync::OnceLock<reqwest::Client>,
    /// The sync engine's jitter (see [`TerminalConfig::sync_seed`]).
    #[cfg(feature = "sync")]
    jitter: std::sync::Mutex<fastrand::Rng>,
}

impl Terminal {
    /// Opens the terminal's data folder: the database (migrated), the photo
    /// files (with files of photos whose row never committed removed), and the
    /// grid map.
    pub fn open(dir: &Path, config: TerminalConfig) -> Result<Self, Error> {
        crate::case::check_text("actor_id", &config.actor_id, 1, 100)?;
        let store = Store::open(dir)?;
        let photos = PhotoLibrary::open(dir.join("photos"))?;
        // Safe only here: nothing can be writing a photo before open returns.
        let removed = photos.collect_garbage(&store.referenced_photo_files()?)?;
        if removed > 0 {
            tracing::info!(removed, "removed photo files left by an unfinished save");
        }
        let grids = match store.grid_map()? {
            Some(geojson) => GridMap::from_geojson(&geojson)?,
            None => GridMap::empty(),
        };
        let actor_id = match store.sync_account()? {
            Some(account) => account.account_id,
            None => config.actor_id.clone(),
        };
        #[cfg(feature = "sync")]
        let jitter = std::sync::Mutex::new(match config.sync_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                photos,
                grids: RwLock::new(Arc::new(grids)),
                config,
                listener: RwLock::new(None),
                actor_id: RwLock::new(actor_id),
                #[cfg(feature = "sync")]
                sync: Default::default(),
                #[cfg(feature = "sync")]
                http: Default::default(),
                #[cfg(feature = "sync")]
                jitter,
            }),
        })
    }

    pub fn config(&self) -> &TerminalConfig {
        &self.inner.config
    }

    pub fn set_listener(&self, listener: Option<Arc<dyn CaseChangeListener>>) {
        *self
            .inner
            .listener
            .write()
            .unwrap_or_else(|e| e.into_inner()) = listener;
    }

    /// Stops long work and refuses further calls.
    pub fn close(&self) {
        self.inner.store.close();
    }

    /// Replaces the grid map with the units in `geojson`; returns how many.
    pub fn load_grids(&self, geojson: &str) -> Result<usize, Error> {
        let map = GridMap::from_geojson(geojson)?;
        let count = map.units().len();
        self.inner.store.save_grid_map(geojson, now_millis())?;
        *self.inner.grids.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(count)
    }

    pub fn grids(&self) -> Arc<GridMap> {
        self.inner
            .grids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The grid a point falls in, if any.
    pub fn grid_of(&self, point: &GeoPoint) -> Result<Option<GridUnit>, Error> {
        point.validate()?;
        Ok(self.grids().grid_of(point).cloned())
    }

    /// Starts a case as a draft.
    pub fn create_case(&self, draft: CaseDraft, at: Option<GeoPoint>) -> Result<Case, Error> {
        let now = now_millis();
        if let Some(deadline) = draft.proposed_deadline {
            check_proposed_deadline(deadline, now, self.inner.config.deadline_horizon)?;
        }
        let case_id = CaseId::new();
        Ok(self
            .record(case_id, Role::GridLeader, at, OpKind::Create { draft })?
            .case)
    }

    pub fn edit_case(&self, case_id: &CaseId, edit: CaseEdit) -> Result<Case, Error> {
        if let Some(Some(deadline)) = edit.proposed_deadline {
            check_proposed_deadline(deadline, now_millis(), self.inner.config.deadline_horizon)?;
        }
        Ok(self
            .record(*case_id, Role::GridLeader, None, OpKind::Edit { edit })?
            .case)
    }

    pub fn submit_case(&self, case_id: &CaseId) -> Result<Case, Error> {
        Ok(self
            .record(*case_id, Role::GridLeader, None, OpKind::Submit)?
            .case)
    }

    pub fn cancel_case(&self, case_id: &CaseId, reason: &str) -> Result<Case, Error> {
        let kind = OpKind::Cancel {
            reason: reason.to_owned(),
        };
        Ok(self.record(*case_id, Role::GridLeader, None, kind)?.case)
    }

    /// The grid leader's on-site check of a resolved case; photos must already
    /// be attached to the case.
    pub fn verify_case(
        &self,
        case_id: &CaseId,
        done: bool,
        note: &str,
        photo_ids: Vec<PhotoId>,
        at: Option<GeoPoint>,
    ) -> Result<Case, Error> {
        let kind = OpKind::Verify {
            done,
            note: note.to_owned(),
            photo_ids,
        };
        Ok(self.record(*case_id, Role::GridLeader, at, kind)?.case)
    }

    /// The resident's face, tapped on the grid leader's terminal.
    pub fn rate_case(&self, case_id: &CaseId, face: Face, comment: &str) -> Result<Case, Error> {
        let kind = OpKind::Rate {
            face,
            comment: comment.to_owned(),
        };
        Ok(self.record(*case_id, Role::Resident, None, kind)?.case)
    }

    /// Turns a camera photo into the case's upright, stripped JPEG and thumbnail
    /// and attaches it. Decoding and resizing run on tokio's blocking pool, off
    /// the caller's thread and without holding the store's writer. The files are
    /// durable before the row that points at them commits.
    ///
    /// If the photo carries GPS and the case is a draft with no place yet, the
    /// photo's position becomes the case's location (a separate edit on the
    /// timeline, which the grid leader can change).
    pub async fn add_photo(
        &self,
        case_id: &CaseId,
        source: PhotoSource,
    ) -> Result<CasePhoto, Error> {
        let case = self
            .inner
            .store
            .case(case_id)?
            .ok_or(Error::NotFound { what: "case" })?;
        // Fail before the expensive work if the case cannot take a photo now.
        let probe = OpKind::AttachPhoto {
            photo: PhotoRef {
                id: PhotoId::new(),
                sha256: String::new(),
                bytes: 0,
                width: 0,
                height: 0,
                thumb_sha256: String::new(),
                thumb_bytes: 0,
                captured_at: None,
                captured_at_point: None,
            },
        };
        next_status(Some(case.status), &probe, Role::GridLeader)?;

        let config = self.inner.config.photo.clone();
        let processed: ProcessedPhoto = tokio::task::spawn_blocking(move || match source {
            PhotoSource::File(path) => crate::photo::intake_file(&path, &config),
            PhotoSource::Bytes(bytes) => crate::photo::intake_bytes(&bytes, &config),
        })
        .await
        .map_err(|_| {
            Error::Storage(crate::store::StoreError::Corrupt(
                "photo work was lost".into(),
            ))
        })??;

        let this = self.clone_handle();
        let case_id = *case_id;
        tokio::task::spawn_blocking(move || this.save_photo(&case_id, processed))
            .await
            .map_err(|_| {
                Error::Storage(crate::store::StoreError::Corrupt(
                    "photo save was lost".into(),
                ))
            })?
    }

    fn save_photo(&self, case_id: &CaseId, p: ProcessedPhoto) -> Result<CasePhoto, Error> {
        let lib = &self.inner.photos;
        lib.write(&p.sha256, &p.jpeg)?;
        lib.write(&p.thumb_sha256, &p.thumb)?;
        crate::failpoint::hit(crate::failpoint::PHOTO_BEFORE_ROW);
        let photo = PhotoRef {
            id: PhotoId::new(),
            sha256: p.sha256.clone(),
            bytes: p.jpeg.len() as u64,
            width: p.width,
            height: p.height,
            thumb_sha256: p.thumb_sha256.clone(),
            thumb_bytes: p.thumb.len() as u64,
            captured_at: p.captured_at,
            captured_at_point: p.gps,
        };
        let op = self.new_op(
            *case_id,
            Role::GridLeader,
            None,
            OpKind::AttachPhoto {
                photo: photo.clone(),
            },
        );
        let row = PhotoRow {
            photo,
            case_id: *case_id,
            op_id: op.id,
            added_at: op.device_time,
        };
        let recorded = self.commit(op, |tx| row.insert(tx))?;
        if let (Some(gps), None, crate::case::CaseStatus::Draft) =
            (p.gps, &recorded.case.location, recorded.case.status)
        {
            let edit = CaseEdit {
                location: Some(Some(Location {
                    point: gps,
                    address: None,
                })),
                ..Default::default()
            };
            self.record(*case_id, Role::GridLeader, None, OpKind::Edit { edit })?;
        }
        Ok(self.photo_view(row))
    }

    pub async fn list_cases(&self, query: CaseQuery) -> Result<CasePage, Error> {
        let this = self.clone_handle();
        tokio::task::spawn_blocking(move || this.list_cases_blocking(&query))
            .await
            .map_err(|_| Error::Closed)?
    }

    pub fn list_cases_blocking(&self, query: &CaseQuery) -> Result<CasePage, Error> {
        Ok(self.inner.store.list_cases(query, now_millis())?)
    }

    pub async fn case_detail(&self, case_id: &CaseId) -> Result<CaseDetail, Error> {
        let this = self.clone_handle();
        let case_id = *case_id;
        tokio::task::spawn_blocking(move || this.case_detail_blocking(&case_id))
            .await
            .map_err(|_| Error::Closed)?
    }

    pub fn case_detail_blocking(&self, case_id: &CaseId) -> Result<CaseDetail, Error> {
        let store = &self.inner.store;
        let case = store
            .case(case_id)?
            .ok_or(Error::NotFound { what: "case" })?;
        let timeline = store.timeline(case_id)?;
        let photos = store
            .photos_of(case_id)?
            .into_iter()
            .map(|row| self.photo_view(row))
            .collect();
        Ok(CaseDetail {
            overdue: case.is_overdue(now_millis()),
            waiting_to_sync: timeline
                .iter()
                .any(|e| e.sync != crate::store::OpSyncState::Synced),
            case,
            photos,
            timeline,
        })
    }

    /// The file of a photo or thumbnail by its SHA-256 (as list rows give it).
    pub fn photo_file(&self, sha256: &str) -> Result<PathBuf, Error> {
        let is_sha = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_sha {
            return Err(
                crate::error::InvalidInput::new("sha256", "is not a photo file name").into(),
            );
        }
        Ok(self.inner.photos.path_of(sha256))
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn photo_view(&self, row: PhotoRow) -> CasePhoto {
        CasePhoto {
            path: self.inner.photos.path_of(&row.photo.sha256),
            thumb_path: self.inner.photos.path_of(&row.photo.thumb_sha256),
            row,
        }
    }

    fn clone_handle(&self) -> Terminal {
        Terminal {
            inner: self.inner.clone(),
        }
    }

    fn new_op(&self, case_id: CaseId, role: Role, at: Option<GeoPoint>, kind: OpKind) -> Op {
        Op {
            id: OpId::new(),
            case_id,
            actor: Actor {
                role,
                id: self
                    .inner
                    .actor_id
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            },
            device_time: now_millis(),
            at,
            kind,
        }
    }

    fn record(
        &self,
        case_id: CaseId,
        role: Role,
        at: Option<GeoPoint>,
        kind: OpKind,
    ) -> Result<Recorded, Error> {
        let op = self.new_op(case_id, role, at, kind);
        self.commit(op, |_| Ok(()))
    }

    fn commit(
        &self,
        op: Op,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), crate::store::StoreError>,
    ) -> Result<Recorded, Error> {
        let place = self.placer();
        let recorded = self.inner.store.record(op, &place, extra)?;
        self.notify(&[recorded.case.id]);
        Ok(recorded)
    }

    /// Decides a case's grid from its location with the current grid map.
    fn placer(&self) -> impl Fn(&Case) -> Option<String> {
        let grids = self.grids();
        move |case: &Case| {
            case.location
                .as_ref()
                .and_then(|l| grids.grid_of(&l.point))
                .map(|u| u.id.clone())
        }
    }

    fn notify(&self, ids: &[CaseId]) {
        let listener = self
            .inner
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(l) = listener {
            l.cases_changed(ids);
        }
    }
}

#[cfg(test)]
mod tests;
