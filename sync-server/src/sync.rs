//! `POST /v1/sync`: push a batch of ops, then pull what changed after the cursor.
//!
//! Push: each op is decided once and the answer remembered by op id
//! (`push_outcomes`), so a retried batch gets the same answers and changes
//! nothing. Deferred ops (a photo not on the server yet) are not remembered:
//! they are "not now", and the push stops at the first one. The whole push is
//! one write transaction.
//!
//! Pull: ops after the cursor, up to the commit horizon (see [`crate::cases`]),
//! visible to the device's account, not made by the device itself, in server
//! order, one page at a time.
//!
//! Both run through the store ([`crate::store`]) on either backend. On
//! PostgreSQL a push that races another instance on the same op id or case
//! loses at a constraint or a row lock and is run again whole: it then finds
//! the winner's answer (`push_outcomes`) and gives the same one.

use axum::extract::State;
use axum::Json;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::OpId;
use gridcase_core::op::{apply, Op, OpKind, Role};
use gridcase_core::protocol::{
    CaseLeft, PulledOp, PushResult, PushStatus, SyncResponse, MAX_PULL_OPS, MAX_PUSH_OPS,
};
use gridcase_core::time::{now_millis, Millis};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::accounts::DeviceAuth;
use crate::cases;
use crate::error::{codes, reasons, rejection_code, ApiJson, AppError};
use crate::photos::PhotoStore;
use crate::store::ledger::{NewOutcome, PullQuery};
use crate::store::{Numbering, ReadTx, Seq, StoreError, Tx};
use crate::AppState;

/// [`gridcase_core::protocol::SyncRequest`] as it comes off the wire: the ops
/// are parsed one by one, so that one op this server cannot read (say a kind a
/// newer terminal knows) is rejected alone instead of failing the whole batch.
#[derive(Deserialize)]
pub struct WireSyncRequest {
    #[serde(default)]
    push: Vec<Box<RawValue>>,
    #[serde(default)]
    cursor: u64,
    #[serde(default)]
    pull_limit: u32,
    #[serde(default)]
    history: Option<String>,
}

/// Just the id of an op, to answer even an op that does not parse.
#[derive(Deserialize)]
struct OpHead {
    id: OpId,
}

/// A pushed op: parsed, or refused by the parser (with its id).
#[derive(Clone)]
pub(crate) enum Pushed {
    Op(Box<Op>),
    Unreadable { id: OpId, reason: String },
}

/// A sync request read and checked, before any database work.
pub struct DecodedSync {
    pub(crate) pushed: Vec<Pushed>,
    pub cursor: u64,
    /// Already capped at [`MAX_PULL_OPS`].
    pub pull_limit: u32,
    pub history: Option<String>,
}

impl DecodedSync {
    /// How many pushed ops parsed, and how many were refused by the parser.
    pub fn counts(&self) -> (usize, usize) {
        let ok = self
            .pushed
            .iter()
            .filter(|p| matches!(p, Pushed::Op(_)))
            .count();
        (ok, self.pushed.len() - ok)
    }
}

impl WireSyncRequest {
    /// Checks the batch size and parses each op on its own.
    pub fn decode(self) -> Result<DecodedSync, AppError> {
        if self.push.len() > MAX_PUSH_OPS {
            return Err(
                AppError::too_large(format!("at most {MAX_PUSH_OPS} ops in one push"))
                    .with_field("push"),
            );
        }
        let pushed = self
            .push
            .iter()
            .enumerate()
            .map(|(i, raw)| parse_pushed(i, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DecodedSync {
            pushed,
            cursor: self.cursor,
            pull_limit: self.pull_limit.min(MAX_PULL_OPS),
            history: self.history,
        })
    }
}

/// The body of `POST /v1/sync` as the handler reads it (the fuzzer's entry).
pub fn decode_sync_request(body: &[u8]) -> Result<DecodedSync, AppError> {
    crate::error::parse_json::<WireSyncRequest>(body)?.decode()
}

fn parse_pushed(index: usize, raw: &RawValue) -> Result<Pushed, AppError> {
    let head: OpHead = serde_json::from_str(raw.get()).map_err(|_| {
        AppError::invalid(
            format!("push[{index}].id"),
            reasons::NOT_AN_ID,
            "every op needs a valid id",
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    match serde_path_to_error::deserialize::<_, Op>(&mut de) {
        Ok(op) => Ok(Pushed::Op(Box::new(op))),
        Err(e) => {
            let path = e.path().to_string();
            let what = if e.inner().to_string().starts_with("missing field") {
                e.inner()
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                "a value has the wrong type or is not allowed here".to_string()
            };
            let reason = if path == "." {
                format!("the op does not match the protocol: {what}")
            } else {
                format!("the op does not match the protocol at {path}: {what}")
            };
            Ok(Pushed::Unreadable {
                id: head.id,
                reason,
            })
        }
    }
}

pub(crate) async fn sync_handler(
    State(state): State<AppState>,
    device: DeviceAuth,
    ApiJson(req): ApiJson<WireSyncRequest>,
) -> Result<Json<SyncResponse>, AppError> {
    let DecodedSync {
        pushed,
        cursor,
        pull_limit: limit,
        history: sent_history,
    } = req.decode()?;
    let results = if pushed.is_empty() {
        Vec::new()
    } else {
        let (grids, photos, pusher) = (state.grids.clone(), state.photos.clone(), device.clone());
        let sent = sent_history.clone();
        let pushed = std::sync::Arc::new(pushed);
        let results = state
            .store
            .write(move |tx| {
                let (grids, photos, pusher) = (grids.clone(), photos.clone(), pusher.clone());
                let (pushed, sent) = (pushed.clone(), sent.clone());
                Box::pin(async move {
                    // Nothing is pushed on a stale cursor: the device resets
                    // first (its answers would land in a history it is about
                    // to forget).
                    if check_cursor(tx, sent.as_deref(), cursor).await?.is_err() {
                        return Ok::<_, AppError>(Vec::new());
                    }
                    let map = grids.current(tx).await?;
                    let decided = push(tx, &map, &photos, &pusher, &pushed, now_millis()).await?;
                    let numbering = tx.number().await?;
                    Ok(answers(decided, &numbering)?)
                })
            })
            .await?;
        log_push(&device, &results);
        results
    };
    let page = state
        .store
        .read(move |tx| {
            let (device, sent_history) = (device.clone(), sent_history.clone());
            Box::pin(async move {
                let grid_map_version = tx.grid_map_version().await?.unwrap_or(0).max(0) as u64;
                match check_cursor(tx, sent_history.as_deref(), cursor).await? {
                    Ok(history) => Ok::<_, AppError>((
                        pull(tx, &device, cursor, limit).await?,
                        history,
                        grid_map_version,
                    )),
                    Err(history) => {
                        tracing::info!(device = %device.device_id, "cursor from another history: reset");
                        let page = Page {
                            ops: Vec::new(),
                            left: Vec::new(),
                            cursor: 0,
                            more: false,
                            reset: true,
                            names: Vec::new(),
                        };
                        Ok((page, history, grid_map_version))
                    }
                }
            })
        })
        .await?;
    let (page, history, grid_map_version) = page;
    Ok(Json(SyncResponse {
        results,
        ops: page.ops,
        cursor: page.cursor,
        more: page.more,
        left: page.left,
        history,
        reset: page.reset,
        grid_map_version,
        time_zone: state.zone.name().to_string(),
        names: page.names,
    }))
}

/// The server's history id, `Ok` if the device's cursor belongs to it: the
/// device sent that id (or none, before its first answer) and its cursor is
/// not past the commit horizon. A cursor past it comes from a database
/// restored by hand (a file copy, not `admin restore`): it is reset too, or
/// the device would skip what is numbered below its cursor.
pub(crate) async fn check_cursor(
    tx: &mut ReadTx<'_>,
    sent: Option<&str>,
    cursor: u64,
) -> Result<Result<String, String>, StoreError> {
    let history = tx.history_id().await?;
    let same = sent.is_none_or(|h| h == history);
    if same && cursor <= tx.horizon().await? {
        Ok(Ok(history))
    } else {
        Ok(Err(history))
    }
}

fn log_push(device: &DeviceAuth, results: &[PushResult]) {
    let count = |s: PushStatus| results.iter().filter(|r| r.status == s).count();
    tracing::info!(
        device = %device.device_id,
        accepted = count(PushStatus::Accepted),
        rejected = count(PushStatus::Rejected),
        deferred = count(PushStatus::Deferred),
        "push"
    );
}

/// An op's answer as the push decides it, before the transaction has
/// numbered what it accepted (see [`Seq`]).
#[derive(Debug, Clone)]
struct Decided {
    op_id: OpId,
    status: PushStatus,
    seq: Option<Seq>,
    code: Option<String>,
    reason: Option<String>,
}

impl Decided {
    fn rejected(op_id: OpId, code: &str, reason: impl Into<String>) -> Decided {
        Decided {
            op_id,
            status: PushStatus::Rejected,
            seq: None,
            code: Some(code.to_string()),
            reason: Some(reason.into()),
        }
    }

    fn deferred(op_id: OpId, code: &str, reason: impl Into<String>) -> Decided {
        Decided {
            status: PushStatus::Deferred,
            ..Decided::rejected(op_id, code, reason)
        }
    }

    fn accepted(op_id: OpId, seq: Seq) -> Decided {
        Decided {
            op_id,
            status: PushStatus::Accepted,
            seq: Some(seq),
            code: None,
            reason: None,
        }
    }
}

/// The answers as the device reads them, with the numbers the transaction
/// gave.
fn answers(decided: Vec<Decided>, numbering: &Numbering) -> Result<Vec<PushResult>, StoreError> {
    decided
        .into_iter()
        .map(|d| {
            Ok(PushResult {
                op_id: d.op_id,
                status: d.status,
                server_seq: d.seq.map(|s| numbering.of(s)).transpose()?,
                code: d.code,
                reason: d.reason,
            })
        })
        .collect()
}

/// Decides every op of a batch, in order, stopping after the first deferred one.
async fn push(
    tx: &mut Tx<'_>,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    ops: &[Pushed],
    now: Millis,
) -> Result<Vec<Decided>, StoreError> {
    let mut results = Vec::with_capacity(ops.len());
    for pushed in ops {
        let result = match pushed {
            Pushed::Op(op) => push_one(tx, map, photos, device, op, now).await?,
            Pushed::Unreadable { id, reason } => match stored_outcome(tx, id, device).await? {
                Some(stored) => stored,
                None => Decided::rejected(*id, codes::INVALID_INPUT, reason.clone()),
            },
        };
        let stop = result.status == PushStatus::Deferred;
        results.push(result);
        if stop {
            break;
        }
    }
    tx.touch_device_push(&device.device_id, now).await?;
    Ok(results)
}

/// The answer already given for this op id, if any. An id another device used
/// is refused without being remembered (op ids are random; this is a bug or a
/// forgery, and must not reveal the other device's answer).
async fn stored_outcome(
    tx: &mut Tx<'_>,
    op_id: &OpId,
    device: &DeviceAuth,
) -> Result<Option<Decided>, StoreError> {
    let duplicate = || {
        Decided::rejected(
            *op_id,
            codes::DUPLICATE_OP_ID,
            "an operation with this id already exists",
        )
    };
    let Some(stored) = tx.stored_outcome(op_id).await? else {
        // An op the server itself made has no outcome row but exists.
        return Ok(tx.op_exists(op_id).await?.then(duplicate));
    };
    if stored.device_id != device.device_id
        && !tx
            .same_terminal(&stored.device_id, &device.device_id)
            .await?
    {
        return Ok(Some(duplicate()));
    }
    Ok(Some(Decided {
        op_id: *op_id,
        status: if stored.accepted {
            PushStatus::Accepted
        } else {
            PushStatus::Rejected
        },
        seq: stored.seq,
        code: stored.code,
        reason: stored.reason,
    }))
}

async fn remember(
    tx: &mut Tx<'_>,
    device: &DeviceAuth,
    result: &Decided,
    now: Millis,
) -> Result<(), StoreError> {
    let accepted = match result.status {
        PushStatus::Accepted => true,
        PushStatus::Rejected => false,
        PushStatus::Deferred => return Ok(()),
    };
    tx.remember_outcome(&NewOutcome {
        op_id: result.op_id,
        device_id: &device.device_id,
        accepted,
        seq: result.seq,
        code: result.code.as_deref(),
        reason: result.reason.as_deref(),
        decided_at: now,
    })
    .await
}

async fn push_one(
    tx: &mut Tx<'_>,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    op: &Op,
    now: Millis,
) -> Result<Decided, StoreError> {
    if let Some(stored) = stored_outcome(tx, &op.id, device).await? {
        return Ok(stored);
    }
    let result = decide(tx, map, photos, device, op, now).await?;
    remember(tx, device, &result, now).await?;
    Ok(result)
}

async fn decide(
    tx: &mut Tx<'_>,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    op: &Op,
    now: Millis,
) -> Result<Decided, StoreError> {
    // A terminal acts for its own account, as its grid leader or for a resident
    // standing beside them; the centre's roles are not a terminal's to claim.
    if op.actor.id != device.account_id {
        return Ok(Decided::rejected(
            op.id,
            codes::FORBIDDEN,
            "the actor must be this device's account",
        ));
    }
    if !matches!(op.actor.role, Role::GridLeader | Role::Resident) {
        return Ok(Decided::rejected(
            op.id,
            codes::FORBIDDEN,
            format!("a terminal may not act as {}", op.actor.role.as_str()),
        ));
    }
    let prev = tx.load_case(&op.case_id).await?;
    if prev.is_some() && !tx.case_visible_to(&op.case_id, &device.account_id).await? {
        return Ok(Decided::rejected(
            op.id,
            codes::NOT_VISIBLE,
            "this case is not in the device's grids",
        ));
    }
    let next = match apply(prev.as_ref(), op) {
        Ok(next) => next,
        Err(e) => return Ok(Decided::rejected(op.id, rejection_code(&e), e.to_string())),
    };
    if let OpKind::AttachPhoto { photo, .. } = &op.kind {
        for (which, sha, bytes) in [
            ("photo", &photo.sha256, photo.bytes),
            ("thumbnail", &photo.thumb_sha256, photo.thumb_bytes),
        ] {
            match photos.complete_size(sha) {
                None => {
                    return Ok(Decided::deferred(
                        op.id,
                        codes::PHOTO_MISSING,
                        format!(
                            "the {which} file is not on the server yet; upload it, then push again"
                        ),
                    ))
                }
                Some(size) if size != bytes => {
                    return Ok(Decided::rejected(
                        op.id,
                        codes::INVALID_INPUT,
                        format!("the {which}'s size does not match the uploaded file"),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let (seq, case) = cases::record(
        tx,
        map,
        prev.as_ref(),
        next,
        op,
        Some(&device.device_id),
        now,
    )
    .await?;
    if matches!(op.kind, OpKind::Submit) {
        cases::receive(tx, map, case.id, now).await?;
    }
    Ok(Decided::accepted(op.id, seq))
}

struct Page {
    ops: Vec<PulledOp>,
    left: Vec<CaseLeft>,
    cursor: u64,
    more: bool,
    reset: bool,
    /// The names of the ids the page's ops mention, the pushed ones' too.
    names: Vec<gridcase_core::protocol::DisplayName>,
}

/// One page of ops and departures after `cursor` for the device, merged in
/// number order. The next cursor is the last entry served when the page is
/// full, else the horizon: everything up to it has been looked at, and nothing
/// below it can still appear (numbers commit in order).
async fn pull(
    tx: &mut ReadTx<'_>,
    device: &DeviceAuth,
    cursor: u64,
    limit: u32,
) -> Result<Page, StoreError> {
    let horizon = tx.horizon().await?;
    let q = PullQuery {
        account_id: &device.account_id,
        device_id: &device.device_id,
        after: cursor,
        upto: horizon,
        limit: limit.saturating_add(1),
    };
    let mut ops = tx.pull_ops(&q).await?;
    // Departures from the account's grids of cases it no longer sees by any
    // other way (a case that came back is simply delivered again).
    let mut left = tx.pull_departures(&q).await?;
    // Keep the `limit` lowest-numbered entries of both lists.
    let total = ops.len() + left.len();
    let more = total > limit as usize;
    let mut last = 0;
    if more {
        let (mut i, mut j) = (0, 0);
        for _ in 0..limit {
            let take_op = match (ops.get(i), left.get(j)) {
                (Some(o), Some(l)) => o.server_seq < l.server_seq,
                (Some(_), None) => true,
                _ => false,
            };
            if take_op {
                last = ops[i].server_seq;
                i += 1;
            } else {
                last = left[j].server_seq;
                j += 1;
            }
        }
        ops.truncate(i);
        left.truncate(j);
    }
    let cursor = if more { last.max(cursor) } else { horizon };
    let names = crate::names::for_ops(tx, ops.iter().map(|p| &p.op)).await?;
    Ok(Page {
        ops,
        left,
        cursor,
        more,
        reset: false,
        names,
    })
}
