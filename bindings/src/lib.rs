//! uniffi bindings of the grid leader's terminal. This crate only converts:
//! core types to FFI records, core errors to one flat [`GridcaseError`], and
//! core calls to `async` where they are slow, so Kotlin sees `suspend` and
//! Swift `async`.

mod convert;
mod error;
mod types;

use std::sync::Arc;

use gridcase_core::case::CaseEdit as CoreEdit;
use gridcase_core::ids::PhotoId;
use gridcase_core::terminal::PhotoSource;
use gridcase_core::{CaseId, Terminal, TerminalConfig};

pub use error::GridcaseError;
pub use types::*;

uniffi::setup_scaffolding!();

/// Told whenever cases change on this terminal, so lists and screens refresh.
/// Called on a background thread, after the change is committed.
#[uniffi::export(foreign)]
pub trait CaseListener: Send + Sync {
    fn on_cases_changed(&self, case_ids: Vec<String>);
}

struct ListenerAdapter(Arc<dyn CaseListener>);

impl gridcase_core::CaseChangeListener for ListenerAdapter {
    fn cases_changed(&self, case_ids: &[CaseId]) {
        self.0
            .on_cases_changed(case_ids.iter().map(|id| id.to_string()).collect());
    }
}

/// Sync progress for the UI: the phase, and bytes done / total while photos
/// upload or download.
#[uniffi::export(foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, phase: SyncPhase, done: u64, total: u64);
}

struct ProgressAdapter(Arc<dyn SyncListener>);

impl gridcase_core::sync::SyncProgress for ProgressAdapter {
    fn on_progress(&self, phase: gridcase_core::sync::SyncPhase, done: u64, total: u64) {
        use gridcase_core::sync::SyncPhase as P;
        let phase = match phase {
            P::UploadingPhotos => SyncPhase::UploadingPhotos,
            P::Pushing => SyncPhase::Pushing,
            P::Pulling => SyncPhase::Pulling,
            P::DownloadingPhotos => SyncPhase::DownloadingPhotos,
            P::Done => SyncPhase::Done,
        };
        self.0.on_progress(phase, done, total);
    }
}

/// The terminal's data, opened on the app's data folder.
#[derive(uniffi::Object)]
pub struct GridcaseClient {
    terminal: Terminal,
}

fn case_id(s: &str) -> Result<CaseId, GridcaseError> {
    Ok(CaseId::parse(s)?)
}

#[uniffi::export(async_runtime = "tokio")]
impl GridcaseClient {
    /// Opens (creating if needed) the terminal's store in `data_dir`.
    #[uniffi::constructor]
    pub fn open(data_dir: String, config: ClientConfig) -> Result<Arc<Self>, GridcaseError> {
        let mut core = TerminalConfig::new(config.actor_id);
        if config.deadline_horizon_days > 0 {
            core.deadline_horizon = config.deadline_horizon_days as i64 * gridcase_core::time::DAY;
        }
        if config.max_photo_edge > 0 {
            core.photo.max_edge = config.max_photo_edge;
        }
        if config.thumb_edge > 0 {
            core.photo.thumb_edge = config.thumb_edge;
        }
        let terminal = Terminal::open(std::path::Path::new(&data_dir), core)?;
        Ok(Arc::new(Self { terminal }))
    }

    /// Replaces the listener (one at a time).
    pub fn set_listener(&self, listener: Arc<dyn CaseListener>) {
        self.terminal
            .set_listener(Some(Arc::new(ListenerAdapter(listener))));
    }

    pub fn clear_listener(&self) {
        self.terminal.set_listener(None);
    }

    /// Loads the grid map (GeoJSON FeatureCollection of units); returns the
    /// number of units.
    pub fn load_grids(&self, geojson: String) -> Result<u32, GridcaseError> {
        Ok(self.terminal.load_grids(&geojson)? as u32)
    }

    /// The grid a point falls in, or `None` outside every grid.
    pub fn grid_of(&self, point: GeoPoint) -> Result<Option<GridUnit>, GridcaseError> {
        Ok(self.terminal.grid_of(&point.into())?.map(Into::into))
    }

    /// Starts a case as a draft; `at` is where the grid leader stands.
    #[uniffi::method(default(at = None))]
    pub fn create_case(
        &self,
        draft: NewCase,
        at: Option<GeoPoint>,
    ) -> Result<CaseDetail, GridcaseError> {
        let case = self
            .terminal
            .create_case(draft.into(), at.map(Into::into))?;
        self.detail(&case.id)
    }

    /// Records a new case with its photos and, with `submit`, its submission,
    /// as one step: the photos are taken in first, then everything is stored
    /// at once, or nothing is (a bad photo is `Photo`, naming which). A draft
    /// without a place takes it from the first photo with GPS. The answer's
    /// `placement` says when the point is outside this terminal's grids.
    #[uniffi::method(default(photos = [], submit = false, at = None))]
    pub async fn record_case(
        &self,
        draft: NewCase,
        photos: Vec<PhotoInput>,
        submit: bool,
        at: Option<GeoPoint>,
    ) -> Result<CaseDetail, GridcaseError> {
        let detail = self
            .terminal
            .record_case(
                draft.into(),
                photos.into_iter().map(Into::into).collect(),
                submit,
                at.map(Into::into),
            )
            .await?;
        Ok(detail.into())
    }

    /// Where a point falls on this terminal's map (say it before the grid
    /// leader saves a point outside their grids).
    pub fn placement_of(&self, point: GeoPoint) -> Result<Placement, GridcaseError> {
        Ok(self.terminal.placement_of(&point.into())?.into())
    }

    pub fn edit_case(&self, case_id: String, edit: CaseEdit) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        self.terminal.edit_case(&id, CoreEdit::from(edit))?;
        self.detail(&id)
    }

    /// Decodes, turns upright, shrinks and strips a camera photo, and attaches it.
    pub async fn add_photo_from_file(
        &self,
        case_id: String,
        path: String,
    ) -> Result<Photo, GridcaseError> {
        let id = self::case_id(&case_id)?;
        let photo = self
            .terminal
            .add_photo(&id, PhotoSource::File(path.into()))
            .await?;
        Ok(photo.into())
    }

    pub async fn add_photo_from_bytes(
        &self,
        case_id: String,
        bytes: Vec<u8>,
    ) -> Result<Photo, GridcaseError> {
        let id = self::case_id(&case_id)?;
        let photo = self
            .terminal
            .add_photo(&id, PhotoSource::Bytes(bytes))
            .await?;
        Ok(photo.into())
    }

    /// Attaches several photos as one step: all of them, or none.
    pub async fn add_photos(
        &self,
        case_id: String,
        photos: Vec<PhotoInput>,
    ) -> Result<Vec<Photo>, GridcaseError> {
        let id = self::case_id(&case_id)?;
        let added = self
            .terminal
            .add_photos(&id, photos.into_iter().map(Into::into).collect())
            .await?;
        Ok(added.into_iter().map(Into::into).collect())
    }

    pub fn submit_case(&self, case_id: String) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        self.terminal.submit_case(&id)?;
        self.detail(&id)
    }

    pub fn cancel_case(
        &self,
        case_id: String,
        reason: String,
    ) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        self.terminal.cancel_case(&id, &reason)?;
        self.detail(&id)
    }

    /// Records on site whether a resolved case is really done. `photo_ids` are
    /// photos already attached to the case.
    #[uniffi::method(default(photo_ids = [], at = None))]
    pub fn verify_case(
        &self,
        case_id: String,
        done: bool,
        note: String,
        photo_ids: Vec<String>,
        at: Option<GeoPoint>,
    ) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        let photo_ids = photo_ids
            .iter()
            .map(|p| PhotoId::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.terminal
            .verify_case(&id, done, &note, photo_ids, at.map(Into::into))?;
        self.detail(&id)
    }

    /// The on-site check with photos taken now, as one step: the photos are
    /// attached and the check recorded together, or nothing is. "Not done"
    /// needs the reason in `note`.
    #[uniffi::method(default(photo_ids = [], at = None))]
    pub async fn verify_case_with_photos(
        &self,
        case_id: String,
        done: bool,
        note: String,
        photos: Vec<PhotoInput>,
        photo_ids: Vec<String>,
        at: Option<GeoPoint>,
    ) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        let photo_ids = photo_ids
            .iter()
            .map(|p| PhotoId::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.terminal
            .verify_with_photos(
                &id,
                done,
                &note,
                photo_ids,
                photos.into_iter().map(Into::into).collect(),
                at.map(Into::into),
            )
            .await?;
        Ok(self.terminal.case_detail(&id).await?.into())
    }

    /// Every step the server refused that nobody has sent again, oldest
    /// first, with the server's code and reason: show them until dealt with.
    pub fn needs_attention(&self) -> Result<Vec<RefusedStep>, GridcaseError> {
        Ok(self
            .terminal
            .needs_attention()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Sends a case's refused steps again where that can help (`can_resend`);
    /// each goes as a new step at the next sync, and the refused one stays on
    /// the timeline, marked. `InvalidInput` when there is nothing to send.
    pub fn resend_refused(&self, case_id: String) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        self.terminal.resend_refused(&id)?;
        self.detail(&id)
    }

    /// The deployment's time zone (IANA name, e.g. Asia/Shanghai): show every
    /// time on this clock.
    pub fn time_zone(&self) -> String {
        self.terminal.zone().name().to_owned()
    }

    /// The resident's smiley or frowny face, tapped on this terminal.
    pub fn rate_case(
        &self,
        case_id: String,
        face: Face,
        comment: String,
    ) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        self.terminal.rate_case(&id, face, &comment)?;
        self.detail(&id)
    }

    pub async fn list_cases(&self, query: CaseQuery) -> Result<CasePage, GridcaseError> {
        let page = self.terminal.list_cases(query.try_into()?).await?;
        Ok(convert::page(&self.terminal, page))
    }

    /// A case with its photos and timeline.
    pub async fn get_case(&self, case_id: String) -> Result<CaseDetail, GridcaseError> {
        let id = self::case_id(&case_id)?;
        Ok(self.terminal.case_detail(&id).await?.into())
    }

    /// Enrols this terminal with the centre's server using the one-time code,
    /// and downloads the grid map.
    pub async fn enrol(
        &self,
        server_url: String,
        code: String,
        device_name: String,
    ) -> Result<Enrolment, GridcaseError> {
        let a = self
            .terminal
            .enrol(&server_url, &code, &device_name)
            .await?;
        Ok(Enrolment {
            server_url: a.server_url,
            device_id: a.device_id,
            account_id: a.account_id,
            grid_ids: a.grid_ids,
        })
    }

    /// Pushes what was recorded, uploads photos (resumably), pulls what the
    /// centre changed. One sync runs at a time; cancelling the coroutine / task
    /// stops it safely and the next sync carries on.
    pub async fn sync_now(
        &self,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<SyncReport, GridcaseError> {
        let progress = listener
            .map(|l| Arc::new(ProgressAdapter(l)) as Arc<dyn gridcase_core::sync::SyncProgress>);
        let r = self.terminal.sync_now(progress).await?;
        Ok(SyncReport {
            ops_pushed: r.ops_pushed,
            ops_accepted: r.ops_accepted,
            ops_rejected: r.ops_rejected,
            ops_pulled: r.ops_pulled,
            photo_bytes_sent: r.photo_bytes_sent,
            photo_bytes_received: r.photo_bytes_received,
            requests: r.requests,
            ops_waiting: r.ops_waiting,
            refused: r.refused.into_iter().map(Into::into).collect(),
            needs_attention: r.needs_attention,
        })
    }

    /// A one-time link (and its QR code) for the resident to rate a verified
    /// case on their own phone. Needs signal. Before the on-site check it is
    /// refused as `Rejected` with code `not_allowed`; an on-site check still
    /// in the outbox is synced first.
    pub async fn rating_link(&self, case_id: String) -> Result<RatingLink, GridcaseError> {
        let id = self::case_id(&case_id)?;
        Ok(self.terminal.rating_link(&id).await?.into())
    }

    /// Milliseconds an app should wait before syncing again by itself (grows
    /// with jitter after failures; 0 after a success).
    pub async fn next_sync_delay_ms(&self) -> u64 {
        self.terminal.next_sync_delay().await.as_millis() as u64
    }

    /// Stops long work in progress; every later call fails with `Closed`.
    /// (Not `close`: uniffi's Kotlin objects already have `close()`, which
    /// frees the handle.)
    pub fn shutdown(&self) {
        self.terminal.close();
    }
}

impl GridcaseClient {
    fn detail(&self, id: &CaseId) -> Result<CaseDetail, GridcaseError> {
        Ok(self.terminal.case_detail_blocking(id)?.into())
    }
}

/// The case categories with their Chinese and English names, for pickers.
#[uniffi::export]
pub fn categories() -> Vec<CategoryInfo> {
    gridcase_core::Category::ALL
        .iter()
        .map(|&c| CategoryInfo {
            category: c,
            code: c.code().to_owned(),
            name_zh: c.name_zh().to_owned(),
            name_en: c.name_en().to_owned(),
        })
        .collect()
}
