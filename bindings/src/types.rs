//! The records and enums the apps see. Times are UTC milliseconds (`Long` in
//! Kotlin, `Int64` in Swift), shown on the deployment's clock
//! (`GridcaseClient::time_zone`); ids are strings.

pub use gridcase_core::case::{CaseStatus, Category, Face};

#[uniffi::remote(Enum)]
pub enum CaseStatus {
    Draft,
    Submitted,
    Received,
    Dispatched,
    InProgress,
    Resolved,
    Verified,
    Rated,
    Closed,
    Escalated,
    Reopened,
    Cancelled,
}

#[uniffi::remote(Enum)]
pub enum Face {
    Smiley,
    Frowny,
}

#[uniffi::remote(Enum)]
pub enum Category {
    LandDispute,
    PrivateLending,
    Environment,
    LeakingHouse,
    GrainSubsidy,
    StairwellClutter,
    CollapsedManhole,
    NeighbourDispute,
    FamilyDispute,
    UnpaidWages,
    LabourDispute,
    ConsumerDispute,
    TrainingRefund,
    FlatNotHandedOver,
    MedicalDispute,
    TrafficAccident,
    FinancialLoan,
    LandRequisition,
    Rental,
    WorkInjury,
    SafetyHazard,
    FraudPrevention,
    Other,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct CategoryInfo {
    pub category: Category,
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The grid leader's account; every recorded step carries it.
    pub actor_id: String,
    /// How far ahead a proposed deadline may be; 0 for the default (90 days).
    #[uniffi(default = 0)]
    pub deadline_horizon_days: u32,
    /// Long edge of stored photos; 0 for the default (1920 px).
    #[uniffi(default = 0)]
    pub max_photo_edge: u32,
    /// Long edge of thumbnails; 0 for the default (320 px).
    #[uniffi(default = 0)]
    pub thumb_edge: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
    /// GPS accuracy radius, metres; `None` when nothing measured it (say
    /// "unknown", never a made-up figure).
    #[uniffi(default = None)]
    pub accuracy_m: Option<f64>,
}

/// Where a case's point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LocationSource {
    /// The phone's GPS when the step was recorded.
    DeviceGps,
    /// A photo's GPS tags (EXIF).
    PhotoExif,
    /// Coordinates typed in.
    Typed,
    /// A point tapped on a map.
    MapTap,
    /// Not said.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Location {
    pub point: GeoPoint,
    #[uniffi(default = None)]
    pub address: Option<String>,
    /// Where the point came from; `None` reads as unknown.
    #[uniffi(default = None)]
    pub source: Option<LocationSource>,
}

/// Where a point falls on this terminal's map: show a warning unless it is
/// `InYourGrid`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Placement {
    /// In one of this terminal's grids (before enrolment: in any grid).
    InYourGrid { grid_id: String, grid_name: String },
    /// In someone else's grid ("outside your grids (福民社区第二网格)").
    OutsideYourGrids { grid_id: String, grid_name: String },
    /// In no grid of the map: the centre has to place the case by hand.
    OutsideEveryGrid,
    /// No grid map on this terminal yet.
    NoMap,
}

/// A step the server refused that nobody has sent again: what the app
/// lists under "needs attention", with the server's reason.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RefusedStep {
    pub case_id: String,
    pub op_id: String,
    /// create, attach_photo, submit, verify, rate, ...
    pub kind: String,
    /// The server's stable code (not_allowed, not_visible, ...).
    pub code: String,
    /// The server's words.
    pub reason: String,
    /// Whether `resend_refused` can get a different answer.
    pub can_resend: bool,
    /// When the step was recorded, UTC ms.
    pub time: i64,
}

/// A camera photo given to a call that takes several.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum PhotoInput {
    File { path: String },
    Bytes { bytes: Vec<u8> },
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct GridUnit {
    pub id: String,
    pub name: String,
    /// city, county, township, village, grid or micro_grid.
    pub level: String,
    pub parent_id: Option<String>,
}

/// What the grid leader writes when starting a case.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewCase {
    pub category: Category,
    pub title: String,
    #[uniffi(default = "")]
    pub description: String,
    #[uniffi(default = None)]
    pub location: Option<Location>,
    /// When it happened, UTC ms.
    pub occurred_at: i64,
    /// The grid leader's proposed deadline, UTC ms.
    #[uniffi(default = None)]
    pub proposed_deadline: Option<i64>,
}

/// A change to a draft: fields left `None` stay as they are.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CaseEdit {
    #[uniffi(default = None)]
    pub category: Option<Category>,
    #[uniffi(default = None)]
    pub title: Option<String>,
    #[uniffi(default = None)]
    pub description: Option<String>,
    #[uniffi(default = None)]
    pub location: Option<Location>,
    #[uniffi(default = false)]
    pub clear_location: bool,
    #[uniffi(default = None)]
    pub occurred_at: Option<i64>,
    #[uniffi(default = None)]
    pub proposed_deadline: Option<i64>,
    #[uniffi(default = false)]
    pub clear_proposed_deadline: bool,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct Verification {
    pub done: bool,
    pub note: String,
    pub photo_ids: Vec<String>,
    pub at: i64,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct Rating {
    pub face: Face,
    pub comment: String,
    pub at: i64,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct Photo {
    pub id: String,
    pub sha256: String,
    /// The upright, stripped JPEG on this device.
    pub path: String,
    pub thumb_path: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// From the camera, when it recorded one.
    pub captured_at: Option<i64>,
    pub gps: Option<GeoPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncState {
    /// On this terminal only, waiting for signal.
    Pending,
    /// The server refused it; see the reason.
    Rejected,
    Synced,
}

/// One step on a case's timeline: who, what, when, where.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TimelineEntry {
    pub op_id: String,
    /// create, edit, attach_photo, submit, dispatch, chase, verify, rate, ...
    pub kind: String,
    pub actor_role: String,
    pub actor_id: String,
    pub time: i64,
    pub at: Option<GeoPoint>,
    /// The name of who acted, when the server has told it.
    pub actor_name: Option<String>,
    /// The note, reason or comment the step carried, if any.
    pub note: Option<String>,
    pub sync_state: SyncState,
    pub reject_reason: Option<String>,
    /// The server's stable code of a refusal.
    pub reject_code: Option<String>,
    /// A refused step that was sent again (its copy follows on the timeline).
    pub resent: bool,
    /// Recorded before this terminal was enrolled, under this local name.
    pub recorded_before_enrolment_as: Option<String>,
}

/// Everything the case screen shows.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseDetail {
    pub id: String,
    pub status: CaseStatus,
    pub category: Category,
    pub title: String,
    pub description: String,
    pub location: Option<Location>,
    pub grid_id: Option<String>,
    pub occurred_at: i64,
    pub proposed_deadline: Option<i64>,
    /// The centre's deadline once dispatched.
    pub deadline: Option<i64>,
    pub department: Option<String>,
    /// The department's name, when the server has told it.
    pub department_name: Option<String>,
    pub chase_count: u32,
    pub overdue: bool,
    pub waiting_to_sync: bool,
    /// Where the case's point falls on this terminal's map.
    pub placement: Option<Placement>,
    /// Steps of this case the server refused that nobody sent again.
    pub refused: Vec<RefusedStep>,
    pub verification: Option<Verification>,
    pub rating: Option<Rating>,
    pub reported_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub photos: Vec<Photo>,
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CaseOrder {
    LastChange,
    Deadline,
}

/// Which cases to list. Every filter is optional and they combine.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseQuery {
    #[uniffi(default = [])]
    pub statuses: Vec<CaseStatus>,
    #[uniffi(default = None)]
    pub grid_id: Option<String>,
    #[uniffi(default = false)]
    pub waiting_to_sync: bool,
    /// Only cases with steps the server refused (nobody sent them again).
    #[uniffi(default = false)]
    pub refused: bool,
    #[uniffi(default = false)]
    pub overdue: bool,
    #[uniffi(default = None)]
    pub text: Option<String>,
    /// `None` for most recently changed first.
    #[uniffi(default = None)]
    pub order: Option<CaseOrder>,
    /// 0 for the default (50).
    #[uniffi(default = 0)]
    pub page_size: u32,
    #[uniffi(default = None)]
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseSummary {
    pub id: String,
    pub status: CaseStatus,
    pub category: Category,
    pub title: String,
    pub grid_id: Option<String>,
    pub deadline: Option<i64>,
    pub overdue: bool,
    pub updated_at: i64,
    pub waiting_to_sync: bool,
    /// Steps the server refused that nobody sent again.
    pub refused_steps: u32,
    pub photo_count: u32,
    pub thumb_path: Option<String>,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct CasePage {
    pub cases: Vec<CaseSummary>,
    /// Pass in the next query's `page_token`; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The enrolment this terminal holds.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Enrolment {
    pub server_url: String,
    pub device_id: String,
    pub account_id: String,
    pub grid_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncPhase {
    UploadingPhotos,
    Pushing,
    Pulling,
    DownloadingPhotos,
    Done,
}

/// What one sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncReport {
    pub ops_pushed: u32,
    pub ops_accepted: u32,
    pub ops_rejected: u32,
    pub ops_pulled: u32,
    pub photo_bytes_sent: u64,
    pub photo_bytes_received: u64,
    pub requests: u64,
    /// Ops still in the outbox after this sync.
    pub ops_waiting: u64,
    /// The steps refused in this sync, with the server's reasons.
    pub refused: Vec<RefusedStep>,
    /// Refused steps on this terminal nobody has sent again (this sync's and
    /// earlier ones').
    pub needs_attention: u64,
}

/// A one-time link for the resident to rate a verified case on their own
/// phone: show `qr_svg` for them to scan, or share `url`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RatingLink {
    pub url: String,
    /// When the link stops working.
    pub expires_at: i64,
    /// The QR code of `url`, a standalone SVG document.
    pub qr_svg: String,
}
