//! The sync protocol between terminals and the server: JSON over HTTP, shared
//! here so both sides serialise exactly the same types.
//!
//! ## Endpoints (all under `/v1`, all but enrolment need `Authorization: Bearer <token>`)
//!
//! - `POST /v1/enrol` [`EnrolRequest`] → [`EnrolResponse`]: exchanges a one-time
//!   enrolment code for a device token (the server keeps only its hash).
//! - `GET /v1/grids` → GeoJSON FeatureCollection, in the format `grid::GridMap`
//!   reads, of enough of the map for the terminal to name the grid of any
//!   point it can record: the whole map when it is small, else the device's
//!   grids with their ancestors and descendants and every unit near them
//!   (see `visible_units` in the server), so a point in the next grid is
//!   named, not taken for "outside every grid".
//! - `POST /v1/sync` [`SyncRequest`] → [`SyncResponse`]: push a batch of ops and
//!   pull what changed after the cursor, in one round trip (an idle sync is one
//!   small request).
//! - `GET /v1/photos/{sha256}/upload` → [`UploadStatus`]: how many bytes of a
//!   photo file the server holds (resume from there).
//! - `PUT /v1/photos/{sha256}?offset=N&total=T` body = bytes from N → [`UploadStatus`]:
//!   appends; when `total` bytes are held the server checks the SHA-256 and
//!   keeps the file, or discards it and answers `photo_hash_mismatch`.
//! - `GET /v1/photos/{sha256}` → the file (only for photos of cases the device sees).
//! - `POST /v1/cases/{id}/rating-link` → [`RatingLink`]: a one-time link for
//!   the resident to rate a verified case on their own phone. Refused with
//!   `not_allowed` (HTTP 409) while the server does not hold the case as
//!   verified; a case the device does not see is `not_found`.
//!
//! Errors are [`ApiError`] bodies with a stable `code`.
//!
//! ## Exactly once, in order
//!
//! Every op has a UUIDv7 made on the device. The server applies an op at most
//! once: it remembers each op id with its outcome, so a retried batch (after a
//! lost response) gets the same answers and changes nothing. A device pushes
//! its outbox in recording order and stops at the first op the server could not
//! take *now* (a photo not uploaded yet), so ops of a case never overtake one
//! another.
//!
//! ## The cursor
//!
//! Accepted ops get a server sequence number. A pull returns ops visible to the
//! device with numbers after the cursor, in order, up to a page, excluding the
//! device's own (it has them; the push answer gave their numbers). The server
//! only hands out numbers up to its *commit horizon*: the highest number below
//! which every transaction has committed, so an op that commits later with a
//! lower number is never skipped (with one SQLite writer the horizon is simply
//! the last number; a multi-writer PostgreSQL server must compute it).
//!
//! A pull may deliver an op the device already has, under a new number: when a
//! case moves to another grid, or leaves the draft state (a draft is visible
//! only to its grid leader), the server renumbers its ops to the end so devices
//! that newly see it receive its whole history. Devices ignore op ids they hold
//! and take the case's grid from the latest delivery.
//!
//! ## When the server is restored from a backup
//!
//! Every answer carries the server's `history` id, made with its database
//! and changed by `gridcase-server admin restore`. A device sends back the id
//! its cursor belongs to; if it differs (or the cursor is past the server's
//! last number), the server answers `reset` and does nothing else. The device
//! then, in one transaction, forgets the server numbers it holds, puts its own
//! acknowledged ops back in the outbox (the server dedups by op id and
//! re-applies what the restore lost), and pulls from 0; when that pull is
//! complete, ops of others that the restored server no longer has are dropped.
//!
//! ## When a case leaves a grid
//!
//! A new map can move a case out of a grid. Its ops are renumbered for the
//! new grid's devices (above); the accounts of the grids it left get a
//! `left` entry in the same numbering, and their devices drop the case
//! unless they hold unsent work on it (that work is pushed, and refused as
//! `not_visible`, visibly).
//!
//! ## Refused ops and sending them again
//!
//! An op's answer is final for its id: a refused op pushed again gets the
//! same refusal. The terminal keeps a refused op on the case's timeline,
//! marked, with the reason, and lists it as needing attention. Sending it
//! again (when [`resending_may_help`]) records a copy with a new id at the
//! end of the outbox; the refused op stays on the timeline, marked as sent
//! again.
//!
//! ## Steps recorded before enrolment
//!
//! What a terminal records before it is enrolled carries its local name as
//! the actor. The first enrolment adopts that unsent work as the enrolled
//! account's (the same person on the same device): the ops' actor becomes the
//! account, and `Op::recorded_before_enrolment_as` keeps the local name, so
//! the history says what happened. Ops an older terminal had sent under the
//! local name and had refused (`forbidden`) are sent again that way.
//!
//! ## Photos only for ops that can be accepted
//!
//! A terminal pushes first and uploads a photo only when the server answers
//! its op `deferred` (`photo_missing`): the server decides everything else
//! about an op (actor, visibility, the rules) before it looks for the photo,
//! so no photo goes up for an op that is refused anyway.
//!
//! ## Codes
//!
//! Rejected ops: `invalid_input`, `not_allowed` (the state machine), `forbidden`
//! (actor is not the device's account, or a role a terminal may not act as),
//! `not_visible`, `unknown_case`, `case_exists`, `duplicate_op_id`. Uploads:
//! on `upload_offset_mismatch` or `upload_busy` ask for the status and resume
//! from there; on `photo_hash_mismatch` start again from 0. Enrolment:
//! `enrol_code_invalid`, `enrol_code_used`, `enrol_code_expired` (HTTP 400);
//! a repeat with the same `enrolment_key` within [`ENROL_REPEAT_WINDOW_MS`]
//! of the first use is answered again instead of `enrol_code_used`.

use serde::{Deserialize, Serialize};

use crate::ids::OpId;
use crate::op::Op;

pub const MAX_PUSH_OPS: usize = 500;
/// The response header of `GET /v1/grids` carrying the map's version (the
/// `grid_map_version` of sync answers).
pub const GRID_MAP_VERSION_HEADER: &str = "gridcase-grid-map-version";
pub const MAX_PULL_OPS: u32 = 1_000;
/// The largest photo file the server takes (the terminal makes ~0.3–1 MB).
pub const MAX_PHOTO_BYTES: u64 = 20 * 1024 * 1024;
/// How long after a code's first use the same terminal may repeat the exchange.
pub const ENROL_REPEAT_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub code: String,
    pub device_name: String,
    /// A secret the terminal makes once and sends with every enrolment. If
    /// the answer is lost, the same code with the same key may be exchanged
    /// again for a little while (the device gets a fresh token; the lost one
    /// stops working), so one bar of signal cannot burn a one-time code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub token: String,
    pub device_id: String,
    /// The grid leader's account; ops from this device carry it as actor id.
    pub account_id: String,
    pub grid_ids: Vec<String>,
    /// The deployment's time zone (IANA name, see [`crate::zone`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
    /// The grid leader's name as the centre knows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Ops in the order they were recorded on the device.
    #[serde(default)]
    pub push: Vec<Op>,
    /// The last server sequence number this device has pulled (0 at first).
    #[serde(default)]
    pub cursor: u64,
    /// Most ops to pull; 0 means push only.
    #[serde(default)]
    pub pull_limit: u32,
    /// The server history the cursor belongs to (from the last answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Applied now, or earlier (a retry): `server_seq` is its number.
    Accepted,
    /// The rules refuse it; the device keeps it, marks it and shows the reason.
    Rejected,
    /// Not now: a photo it refers to is not on the server yet. Upload, then push again.
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResult {
    pub op_id: OpId,
    pub status: PushStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_seq: Option<u64>,
    /// A stable code (`not_allowed`, `invalid_input`, `not_visible`, `photo_missing`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledOp {
    pub server_seq: u64,
    /// The grid the case is in on the server (decided with the server's map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_id: Option<String>,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// One result per pushed op, in the same order; a push stops at the first
    /// deferred op, and the ops after it get no result (push them again).
    pub results: Vec<PushResult>,
    pub ops: Vec<PulledOp>,
    /// The cursor to send next time.
    pub cursor: u64,
    /// More ops are waiting after this page.
    pub more: bool,
    /// Cases that left the device's grids (a new map moved them), in the
    /// same numbering as `ops`: the device drops them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<CaseLeft>,
    /// The server's history id; a different one means the server was
    /// restored from a backup (see `reset`).
    #[serde(default)]
    pub history: String,
    /// The cursor does not belong to the server's history: nothing was pushed
    /// or pulled. The device forgets every server number it holds, puts its
    /// own ops back in the outbox, and pulls again from 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// The version of the server's grid map; when it is not the one the device
    /// holds, the device downloads `GET /v1/grids` again.
    #[serde(default)]
    pub grid_map_version: u64,
    /// The deployment's time zone (IANA name, see [`crate::zone`]): the
    /// terminal shows every time, and counts every day, on this clock.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
    /// The names people read for the ids this page's ops mention: the staff
    /// and grid leaders who acted, the departments cases went to. A terminal
    /// keeps them, so its timeline says 王调度, not an account id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<DisplayName>,
}

/// What an id in an op stands for, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName {
    pub id: String,
    pub kind: NameKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameKind {
    /// An `Actor::id`: a grid leader's account or a member of staff.
    Actor,
    /// A department a case is dispatched to (`OpKind::Dispatch::department`).
    Department,
}

/// A case the device no longer sees (`server_seq` orders it among the ops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLeft {
    pub server_seq: u64,
    pub case_id: crate::ids::CaseId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub sha256: String,
    /// Bytes the server holds.
    pub received: u64,
    /// The whole file is there and its hash checked.
    pub complete: bool,
}

/// A resident's one-time rating link, as the terminal shows it: the address
/// and its QR code, to scan off the screen. Each request makes a new link; a
/// link rates once, and only while the case waits for a rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingLink {
    pub url: String,
    /// When the link stops working (UTC ms).
    pub expires_at: crate::time::Millis,
    /// The QR code of `url`, as a standalone SVG document.
    pub qr_svg: String,
}

/// Whether sending a refused op again (as a new op) can get a different
/// answer: the case's state, the device's grids or the case itself may have
/// changed since. The same input is refused again (`invalid_input`), a second
/// create of a case stays one (`case_exists`), and a terminal cannot change
/// whom it acts for by itself (`forbidden`; steps recorded before enrolment
/// are adopted and sent again automatically).
pub fn resending_may_help(code: &str) -> bool {
    !matches!(code, "invalid_input" | "case_exists" | "forbidden")
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable, for programs: `unauthorised`, `invalid_request`, `too_large`,
    /// `not_found`, `photo_hash_mismatch`, `upload_offset_mismatch`, `unavailable`, ...
    pub code: String,
    /// For people; never contains case content.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, as a stable code a page or a terminal translates (`required`,
    /// `in_the_past`, `no_such_department`, …): `code` is the kind of error,
    /// `reason` the particular rule, so nobody shows `message` to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
