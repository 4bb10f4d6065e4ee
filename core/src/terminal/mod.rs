//! The grid leader's terminal: the API the Android and iOS apps (through
//! `gridcase-ffi`) and the CLI use. It joins the store, photo intake and the
//! grid map, and speaks as the terminal's grid leader.

mod error;
#[cfg(feature = "sync")]
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use error::Error;

use crate::case::{next_status, Case, CaseDraft, CaseEdit, CaseStatus, Face};
use crate::deadline::{check_proposed_deadline, DEFAULT_HORIZON};
use crate::error::InvalidInput;
use crate::grid::{GridMap, GridUnit};
use crate::ids::{CaseId, OpId, PhotoId};
use crate::location::{GeoPoint, Location, LocationSource};
use crate::op::{apply, Actor, Op, OpKind, PhotoRef, Role};
use crate::photo::{PhotoConfig, PhotoLibrary, ProcessedPhoto};
use crate::store::{
    CasePage, CaseQuery, IdMatch, Names, PhotoRow, Recorded, RefusedStep, Store, TimelineEntry,
};
use crate::time::{now_millis, Millis};
use crate::zone::Zone;

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

/// A grid, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRef {
    pub id: String,
    pub name: String,
}

/// Where a point falls on this terminal's map, said at recording time so the
/// grid leader can correct a wrong point before it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In one of this terminal's grids (before enrolment: in any grid).
    InYourGrid(GridRef),
    /// In a grid that is not this terminal's ("outside your grids
    /// (福民社区第二网格)"): that grid's people will get the case.
    OutsideYourGrids(GridRef),
    /// In no grid of the map (outside it, or in a hole of a grid): the centre
    /// has to place the case by hand.
    OutsideEveryGrid,
    /// The terminal holds no grid map yet (enrol, or load one).
    NoMap,
}

impl Placement {
    /// Whether the grid leader should look again before the case leaves.
    pub fn is_warning(&self) -> bool {
        !matches!(self, Placement::InYourGrid(_))
    }
}

/// Everything the case screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDetail {
    pub case: Case,
    pub overdue: bool,
    pub waiting_to_sync: bool,
    pub photos: Vec<CasePhoto>,
    pub timeline: Vec<TimelineEntry>,
    /// Where the case's point falls on this terminal's map (none without a place).
    pub placement: Option<Placement>,
    /// Steps of this case the server refused that nobody sent again.
    pub refused: Vec<RefusedStep>,
    /// The names behind the ids the timeline mentions (as far as known).
    pub names: Names,
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
    /// The deployment's clock, as the server last said it.
    zone: RwLock<Zone>,
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
        let account = store.sync_account()?;
        let actor_id = match &account {
            Some(account) => account.account_id.clone(),
            None => config.actor_id.clone(),
        };
        let zone = zone_named(store.time_zone()?.as_deref());
        #[cfg(feature = "sync")]
        let jitter = std::sync::Mutex::new(match config.sync_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        });
        let terminal = Self {
            inner: Arc::new(Inner {
                store,
                photos,
                grids: RwLock::new(Arc::new(grids)),
                config,
                listener: RwLock::new(None),
                actor_id: RwLock::new(actor_id),
                zone: RwLock::new(zone),
                #[cfg(feature = "sync")]
                sync: Default::default(),
                #[cfg(feature = "sync")]
                http: Default::default(),
                #[cfg(feature = "sync")]
                jitter,
            }),
        };
        if account.is_some() {
            // Work an older version sent under its local name and had refused.
            terminal.adopt_refused_before_enrolment()?;
        }
        Ok(terminal)
    }

    /// The deployment's clock: every time this terminal shows, and every day
    /// it counts, is on it (Asia/Shanghai until the server says otherwise).
    pub fn zone(&self) -> Zone {
        self.inner
            .zone
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    // The zone changes only with a sync answer.
    #[cfg(any(feature = "sync", test))]
    fn reload_zone(&self) -> Result<(), crate::store::StoreError> {
        let zone = zone_named(self.inner.store.time_zone()?.as_deref());
        *self.inner.zone.write().unwrap_or_else(|e| e.into_inner()) = zone;
        Ok(())
    }

    /// The names behind the ids ops carry, as the server sent them.
    pub fn names(&self) -> Result<Names, Error> {
        Ok(self.inner.store.names()?)
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

    /// Where a point falls on this terminal's map, relative to its grids.
    pub fn placement_of(&self, point: &GeoPoint) -> Result<Placement, Error> {
        let grids = self.grids();
        if grids.is_empty() {
            return Ok(Placement::NoMap);
        }
        let Some(grid) = grids.grid_of(point) else {
            return Ok(Placement::OutsideEveryGrid);
        };
        let found = GridRef {
            id: grid.id.clone(),
            name: grid.name.clone(),
        };
        let own = self
            .inner
            .store
            .sync_account()?
            .map(|a| a.grid_ids)
            .unwrap_or_default();
        let mine = own.is_empty()
            || own.iter().any(|g| {
                *g == grid.id || grids.is_within(&grid.id, g) || grids.is_within(g, &grid.id)
            });
        Ok(if mine {
            Placement::InYourGrid(found)
        } else {
            Placement::OutsideYourGrids(found)
        })
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
        check_not_done_reason(done, note)?;
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
    /// photo's position becomes the case's location in the same step (its
    /// source says `photo_exif`; the grid leader can change it).
    pub async fn add_photo(
        &self,
        case_id: &CaseId,
        source: PhotoSource,
    ) -> Result<CasePhoto, Error> {
        let mut added = self
            .add_photos(case_id, vec![source])
            .await
            .map_err(|e| match e {
                Error::PhotoIn { error, .. } => Error::Photo(error),
                other => other,
            })?;
        Ok(added.remove(0))
    }

    /// Attaches several camera photos in one step: every photo is taken in
    /// first, then all are attached in one transaction, or none is (a bad
    /// photo is [`Error::PhotoIn`], naming which).
    pub async fn add_photos(
        &self,
        case_id: &CaseId,
        sources: Vec<PhotoSource>,
    ) -> Result<Vec<CasePhoto>, Error> {
        let case = self.existing_case(case_id)?;
        if sources.is_empty() {
            return Err(InvalidInput::new("photos", "name at least one photo").into());
        }
        // Fail before the expensive work if the case cannot take a photo now.
        next_status(Some(case.status), &probe_attach(), Role::GridLeader)?;
        let processed = self.intake_all(sources).await?;
        let this = self.clone_handle();
        let case_id = *case_id;
        self.blocking(move || {
            let steps = this.attach_steps(&case, &processed);
            let photos: Vec<PhotoRow> = steps.iter().filter_map(|(_, r)| r.clone()).collect();
            this.check_steps(Some(&case), steps.iter().map(|(op, _)| op))?;
            this.write_files(&processed)?;
            this.inner.store.record_steps(steps, &this.placer())?;
            this.notify(&[case_id]);
            Ok(photos.into_iter().map(|row| this.photo_view(row)).collect())
        })
        .await
    }

    /// Records a new case with everything the grid leader asked for in one
    /// step: the draft, its photos and, with `submit`, the submission. The
    /// photos are taken in before anything is written; then the case, its
    /// photos and the submission commit in one transaction, or nothing is
    /// stored. A draft without a place takes it from the first photo with GPS.
    pub async fn record_case(
        &self,
        mut draft: CaseDraft,
        photos: Vec<PhotoSource>,
        submit: bool,
        at: Option<GeoPoint>,
    ) -> Result<CaseDetail, Error> {
        let now = now_millis();
        if let Some(deadline) = draft.proposed_deadline {
            check_proposed_deadline(deadline, now, self.inner.config.deadline_horizon)?;
        }
        draft.validate()?;
        let processed = self.intake_all(photos).await?;
        if draft.location.is_none() {
            draft.location = processed.iter().find_map(|p| p.gps).map(|point| Location {
                point,
                address: None,
                source: LocationSource::PhotoExif,
            });
        }
        if submit && draft.location.is_none() {
            return Err(
                InvalidInput::new("location", "is required before the case is submitted").into(),
            );
        }
        let case_id = CaseId::new();
        let this = self.clone_handle();
        self.blocking(move || {
            let create = this.new_op(case_id, Role::GridLeader, at, OpKind::Create { draft });
            let created = apply(None, &create).map_err(crate::store::StoreError::from)?;
            let mut steps = vec![(create, None)];
            steps.extend(this.attach_steps(&created, &processed));
            if submit {
                steps.push((
                    this.new_op(case_id, Role::GridLeader, None, OpKind::Submit),
                    None,
                ));
            }
            this.check_steps(None, steps.iter().map(|(op, _)| op))?;
            this.write_files(&processed)?;
            this.inner.store.record_steps(steps, &this.placer())?;
            this.notify(&[case_id]);
            this.case_detail_blocking(&case_id)
        })
        .await
    }

    /// The on-site check with photos taken now: the photos are taken in, then
    /// attached and the check recorded in one transaction, or nothing is.
    /// `photo_ids` are photos already on the case; the new ones are added.
    pub async fn verify_with_photos(
        &self,
        case_id: &CaseId,
        done: bool,
        note: &str,
        photo_ids: Vec<PhotoId>,
        photos: Vec<PhotoSource>,
        at: Option<GeoPoint>,
    ) -> Result<Case, Error> {
        check_not_done_reason(done, note)?;
        let case = self.existing_case(case_id)?;
        let verify = OpKind::Verify {
            done,
            note: note.to_owned(),
            photo_ids: photo_ids.clone(),
        };
        next_status(Some(case.status), &verify, Role::GridLeader)?;
        let processed = self.intake_all(photos).await?;
        let this = self.clone_handle();
        let (case_id, note) = (*case_id, note.to_owned());
        self.blocking(move || {
            let mut steps = this.attach_steps(&case, &processed);
            let mut all_ids = photo_ids;
            all_ids.extend(
                steps
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().map(|r| r.photo.id)),
            );
            let kind = OpKind::Verify {
                done,
                note,
                photo_ids: all_ids,
            };
            steps.push((this.new_op(case_id, Role::GridLeader, at, kind), None));
            this.check_steps(Some(&case), steps.iter().map(|(op, _)| op))?;
            this.write_files(&processed)?;
            let recorded = this.inner.store.record_steps(steps, &this.placer())?;
            this.notify(&[case_id]);
            Ok(recorded.last().map(|r| r.case.clone()).unwrap_or(case))
        })
        .await
    }

    fn existing_case(&self, case_id: &CaseId) -> Result<Case, Error> {
        self.inner
            .store
            .case(case_id)?
            .ok_or(Error::NotFound { what: "case" })
    }

    /// Takes every photo in, in order, off the caller's thread; the first
    /// bad one stops it, named by its position.
    async fn intake_all(&self, sources: Vec<PhotoSource>) -> Result<Vec<ProcessedPhoto>, Error> {
        let mut out = Vec::with_capacity(sources.len());
        for (index, source) in sources.into_iter().enumerate() {
            let config = self.inner.config.photo.clone();
            let processed = tokio::task::spawn_blocking(move || match source {
                PhotoSource::File(path) => crate::photo::intake_file(&path, &config),
                PhotoSource::Bytes(bytes) => crate::photo::intake_bytes(&bytes, &config),
            })
            .await
            .map_err(|_| lost("photo work"))?
            .map_err(|error| Error::PhotoIn { index, error })?;
            out.push(processed);
        }
        Ok(out)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| lost("photo save"))?
    }

    /// The attach steps for processed photos, with their rows; the first
    /// photo with GPS gives a draft without a place its place.
    fn attach_steps(
        &self,
        case: &Case,
        processed: &[ProcessedPhoto],
    ) -> Vec<(Op, Option<PhotoRow>)> {
        let mut needs_place = case.status == CaseStatus::Draft && case.location.is_none();
        processed
            .iter()
            .map(|p| {
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
                let location = match (needs_place, p.gps) {
                    (true, Some(point)) => {
                        needs_place = false;
                        Some(Location {
                            point,
                            address: None,
                            source: LocationSource::PhotoExif,
                        })
                    }
                    _ => None,
                };
                let op = self.new_op(
                    case.id,
                    Role::GridLeader,
                    None,
                    OpKind::AttachPhoto {
                        photo: photo.clone(),
                        location,
                    },
                );
                let row = PhotoRow {
                    photo,
                    case_id: case.id,
                    op_id: op.id,
                    added_at: op.device_time,
                };
                (op, Some(row))
            })
            .collect()
    }

    /// Runs steps through the domain rules in memory, so nothing (not even a
    /// photo file) is written for a command that would be refused.
    fn check_steps<'a>(
        &self,
        case: Option<&Case>,
        ops: impl Iterator<Item = &'a Op>,
    ) -> Result<(), Error> {
        let mut state = case.cloned();
        for op in ops {
            let next = apply(state.as_ref(), op).map_err(crate::store::StoreError::from)?;
            state = Some(next);
        }
        Ok(())
    }

    fn write_files(&self, processed: &[ProcessedPhoto]) -> Result<(), Error> {
        let lib = &self.inner.photos;
        for p in processed {
            lib.write(&p.sha256, &p.jpeg)?;
            lib.write(&p.thumb_sha256, &p.thumb)?;
        }
        // Files written, rows not yet: a crash here must leave no photo row
        // and only files the next open collects.
        crate::failpoint::hit(crate::failpoint::PHOTO_BEFORE_ROW);
        Ok(())
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
        let placement = case
            .location
            .as_ref()
            .map(|l| self.placement_of(&l.point))
            .transpose()?;
        Ok(CaseDetail {
            overdue: case.is_overdue(now_millis()),
            // A refused step is not waiting: it is listed in `refused`.
            waiting_to_sync: timeline
                .iter()
                .any(|e| e.sync == crate::store::OpSyncState::Pending),
            refused: store.refused_steps(Some(case_id))?,
            names: store.names()?,
            placement,
            case,
            photos,
            timeline,
        })
    }

    /// Every step the server refused that nobody sent again, oldest first,
    /// with the server's reason: what the grid leader must look at.
    pub fn needs_attention(&self) -> Result<Vec<RefusedStep>, Error> {
        Ok(self.inner.store.refused_steps(None)?)
    }

    /// Sends a case's refused steps again where that may help (each as a new
    /// step at the end of the outbox; the refused one stays on the timeline,
    /// marked). Answers how many; refused if none can be sent again.
    pub fn resend_refused(&self, case_id: &CaseId) -> Result<u32, Error> {
        let refused = self.inner.store.refused_steps(Some(case_id))?;
        if refused.is_empty() {
            self.existing_case(case_id)?;
            return Err(InvalidInput::new("case_id", "has no refused step to send again").into());
        }
        if !refused.iter().any(|s| s.resending_may_help) {
            return Err(InvalidInput::new(
                "case_id",
                "its refused steps would be refused again as they are (the server's reason says why)",
            )
            .into());
        }
        let n = self.inner.store.resend_refused(case_id, &self.placer())?;
        self.notify(&[*case_id]);
        Ok(n)
    }

    fn adopt_refused_before_enrolment(&self) -> Result<(), crate::store::StoreError> {
        let store = &self.inner.store;
        let (Some(account), Some(enrolled_at)) =
            (store.sync_account()?, store.first_enrolled_at()?)
        else {
            return Ok(());
        };
        let changed = store.adopt_refused_before_enrolment(
            &account.account_id,
            enrolled_at,
            &self.placer(),
        )?;
        if !changed.is_empty() {
            self.notify(&changed);
        }
        Ok(())
    }

    /// The case a typed id stands for: the whole id, or its first or last
    /// characters; unknown and ambiguous ids are refused by name.
    pub fn find_case(&self, text: &str) -> Result<CaseId, Error> {
        match self.inner.store.find_case_id(text)? {
            IdMatch::One(id) => Ok(id),
            IdMatch::None => {
                Err(InvalidInput::new("case_id", "matches no case on this terminal").into())
            }
            IdMatch::Many(ids) => Err(Error::Ambiguous {
                what: "case",
                candidates: ids.iter().map(|i| i.to_string()).collect(),
            }),
        }
    }

    /// A photo of `case` by a typed id, as [`Terminal::find_case`].
    pub fn find_photo(&self, case: &CaseId, text: &str) -> Result<PhotoId, Error> {
        match self.inner.store.find_photo_id(case, text)? {
            IdMatch::One(id) => Ok(id),
            IdMatch::None => {
                Err(InvalidInput::new("photo_id", "matches no photo of this case").into())
            }
            IdMatch::Many(ids) => Err(Error::Ambiguous {
                what: "photo",
                candidates: ids.iter().map(|i| i.to_string()).collect(),
            }),
        }
    }

    /// The short form of a case id lists print: its last characters, as many
    /// as make it unique on this terminal (at least 8).
    pub fn short_id(&self, id: &CaseId) -> Result<String, Error> {
        Ok(self.inner.store.short_case_id(id)?)
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
            recorded_before_enrolment_as: None,
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

/// The zone named, or the default one when the name is missing or unknown.
fn zone_named(name: Option<&str>) -> Zone {
    match name.filter(|n| !n.is_empty()).map(Zone::named) {
        Some(Ok(zone)) => zone,
        Some(Err(_)) => {
            tracing::warn!("the server's time zone is unknown here; showing China Standard Time");
            Zone::default()
        }
        None => Zone::default(),
    }
}

/// "Not done" sends the case back to its department: it must say why.
fn check_not_done_reason(done: bool, note: &str) -> Result<(), InvalidInput> {
    if !done && note.trim().is_empty() {
        return Err(InvalidInput::new(
            "note",
            "must say what is not done: the case goes back to the department with it",
        ));
    }
    Ok(())
}

/// An attach step to ask the rules with before any photo work.
fn probe_attach() -> OpKind {
    OpKind::AttachPhoto {
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
        location: None,
    }
}

fn lost(what: &str) -> Error {
    Error::Storage(crate::store::StoreError::Corrupt(format!(
        "{what} was lost"
    )))
}

#[cfg(test)]
mod tests;
