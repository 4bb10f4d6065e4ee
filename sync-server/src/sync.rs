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

use axum::extract::State;
use axum::Json;
use gridcase_core::grid::GridMap;
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::{apply, Op, OpKind, Role};
use gridcase_core::protocol::{
    CaseLeft, PulledOp, PushResult, PushStatus, SyncResponse, MAX_PULL_OPS, MAX_PUSH_OPS,
};
use gridcase_core::time::{now_millis, Millis};
use rusqlite::{named_params, params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::accounts::DeviceAuth;
use crate::cases::{self, VISIBLE_TO_ACCOUNT};
use crate::error::{codes, reasons, rejection_code, ApiJson, AppError};
use crate::photos::PhotoStore;
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
        let results = state
            .db
            .write(move |tx| {
                // Nothing is pushed on a stale cursor: the device resets first
                // (its answers would land in a history it is about to forget).
                if check_cursor(tx, sent.as_deref(), cursor)?.is_err() {
                    return Ok(Vec::new());
                }
                let map = grids.current(tx)?;
                push(tx, &map, &photos, &pusher, &pushed, now_millis())
            })
            .await?;
        log_push(&device, &results);
        results
    };
    let page = state
        .db
        .read(move |tx| {
            let grid_map_version: u64 = tx.query_row(
                "SELECT COALESCE((SELECT version FROM grid_map WHERE id = 1), 0)",
                [],
                |r| r.get(0),
            )?;
            match check_cursor(tx, sent_history.as_deref(), cursor)? {
                Ok(history) => Ok((pull(tx, &device, cursor, limit)?, history, grid_map_version)),
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
/// not past the last number. A cursor past the last number comes from a
/// database restored by hand (a file copy, not `admin restore`): it is reset
/// too, or the device would skip what is numbered below its cursor.
pub(crate) fn check_cursor(
    conn: &Connection,
    sent: Option<&str>,
    cursor: u64,
) -> Result<Result<String, String>, AppError> {
    let history: String = conn
        .prepare_cached("SELECT history_id FROM server_history WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let same = sent.is_none_or(|h| h == history);
    if same && cursor <= cases::commit_horizon(conn)? {
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

fn rejected(op_id: OpId, code: &str, reason: impl Into<String>) -> PushResult {
    PushResult {
        op_id,
        status: PushStatus::Rejected,
        server_seq: None,
        code: Some(code.to_string()),
        reason: Some(reason.into()),
    }
}

/// Decides every op of a batch, in order, stopping after the first deferred one.
fn push(
    conn: &Connection,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    ops: &[Pushed],
    now: Millis,
) -> Result<Vec<PushResult>, AppError> {
    let mut results = Vec::with_capacity(ops.len());
    for pushed in ops {
        let result = match pushed {
            Pushed::Op(op) => push_one(conn, map, photos, device, op, now)?,
            Pushed::Unreadable { id, reason } => match stored_outcome(conn, id, device)? {
                Some(stored) => stored,
                None => rejected(*id, codes::INVALID_INPUT, reason.clone()),
            },
        };
        let stop = result.status == PushStatus::Deferred;
        results.push(result);
        if stop {
            break;
        }
    }
    conn.execute(
        "UPDATE devices SET last_push_at = ?1 WHERE id = ?2",
        params![now, device.device_id],
    )?;
    Ok(results)
}

/// The answer already given for this op id, if any. An id another device used
/// is refused without being remembered (op ids are random; this is a bug or a
/// forgery, and must not reveal the other device's answer).
fn stored_outcome(
    conn: &Connection,
    op_id: &OpId,
    device: &DeviceAuth,
) -> Result<Option<PushResult>, AppError> {
    type Row = (String, String, Option<u64>, Option<String>, Option<String>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT device_id, status, server_seq, code, reason FROM push_outcomes WHERE op_id = ?1",
            [op_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((device_id, status, server_seq, code, reason)) = row else {
        // An op the server itself made has no outcome row but exists.
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM ops WHERE id = ?1)",
            [op_id.to_string()],
            |r| r.get(0),
        )?;
        return Ok(exists.then(|| {
            rejected(
                *op_id,
                codes::DUPLICATE_OP_ID,
                "an operation with this id already exists",
            )
        }));
    };
    if device_id != device.device_id
        && !crate::accounts::same_terminal(conn, &device_id, &device.device_id)?
    {
        return Ok(Some(rejected(
            *op_id,
            codes::DUPLICATE_OP_ID,
            "an operation with this id already exists",
        )));
    }
    let status = if status == "accepted" {
        PushStatus::Accepted
    } else {
        PushStatus::Rejected
    };
    Ok(Some(PushResult {
        op_id: *op_id,
        status,
        server_seq,
        code,
        reason,
    }))
}

fn remember(
    conn: &Connection,
    device: &DeviceAuth,
    result: &PushResult,
    now: Millis,
) -> Result<(), AppError> {
    let status = match result.status {
        PushStatus::Accepted => "accepted",
        PushStatus::Rejected => "rejected",
        PushStatus::Deferred => return Ok(()),
    };
    conn.execute(
        "INSERT INTO push_outcomes (op_id, device_id, status, server_seq, code, reason, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            result.op_id.to_string(),
            device.device_id,
            status,
            result.server_seq,
            result.code,
            result.reason,
            now
        ],
    )?;
    Ok(())
}

fn push_one(
    conn: &Connection,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    op: &Op,
    now: Millis,
) -> Result<PushResult, AppError> {
    if let Some(stored) = stored_outcome(conn, &op.id, device)? {
        return Ok(stored);
    }
    let result = decide(conn, map, photos, device, op, now)?;
    remember(conn, device, &result, now)?;
    Ok(result)
}

fn decide(
    conn: &Connection,
    map: &GridMap,
    photos: &PhotoStore,
    device: &DeviceAuth,
    op: &Op,
    now: Millis,
) -> Result<PushResult, AppError> {
    // A terminal acts for its own account, as its grid leader or for a resident
    // standing beside them; the centre's roles are not a terminal's to claim.
    if op.actor.id != device.account_id {
        return Ok(rejected(
            op.id,
            codes::FORBIDDEN,
            "the actor must be this device's account",
        ));
    }
    if !matches!(op.actor.role, Role::GridLeader | Role::Resident) {
        return Ok(rejected(
            op.id,
            codes::FORBIDDEN,
            format!("a terminal may not act as {}", op.actor.role.as_str()),
        ));
    }
    let prev = cases::load_case(conn, &op.case_id)?;
    if prev.is_some() && !cases::is_visible(conn, &op.case_id, &device.account_id)? {
        return Ok(rejected(
            op.id,
            codes::NOT_VISIBLE,
            "this case is not in the device's grids",
        ));
    }
    let next = match apply(prev.as_ref(), op) {
        Ok(next) => next,
        Err(e) => return Ok(rejected(op.id, rejection_code(&e), e.to_string())),
    };
    if let OpKind::AttachPhoto { photo, .. } = &op.kind {
        for (which, sha, bytes) in [
            ("photo", &photo.sha256, photo.bytes),
            ("thumbnail", &photo.thumb_sha256, photo.thumb_bytes),
        ] {
            match photos.complete_size(sha) {
                None => {
                    return Ok(PushResult {
                        op_id: op.id,
                        status: PushStatus::Deferred,
                        server_seq: None,
                        code: Some(codes::PHOTO_MISSING.into()),
                        reason: Some(format!(
                            "the {which} file is not on the server yet; upload it, then push again"
                        )),
                    })
                }
                Some(size) if size != bytes => {
                    return Ok(rejected(
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
        conn,
        map,
        prev.as_ref(),
        next,
        op,
        Some(&device.device_id),
        now,
    )?;
    if matches!(op.kind, OpKind::Submit) {
        cases::receive(conn, map, case.id, now)?;
    }
    Ok(PushResult {
        op_id: op.id,
        status: PushStatus::Accepted,
        server_seq: Some(seq),
        code: None,
        reason: None,
    })
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
fn pull(conn: &Connection, device: &DeviceAuth, cursor: u64, limit: u32) -> Result<Page, AppError> {
    let horizon = cases::commit_horizon(conn)?;
    let sql = format!(
        "SELECT o.seq, o.body, c.grid_id FROM ops o JOIN cases c ON c.id = o.case_id
         WHERE o.seq > :from AND o.seq <= :horizon AND o.device_id IS NOT :device
           AND {}
         ORDER BY o.seq LIMIT :n",
        *VISIBLE_TO_ACCOUNT
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":from": cursor,
            ":horizon": horizon,
            ":device": device.device_id,
            ":account": device.account_id,
            ":n": limit as i64 + 1,
        },
        |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    let mut ops = Vec::new();
    for row in rows {
        let (seq, body, grid_id) = row?;
        let op: Op = serde_json::from_str(&body).map_err(|e| {
            tracing::error!(error = %e, seq, "a stored op does not parse");
            AppError::internal()
        })?;
        ops.push(PulledOp {
            server_seq: seq,
            grid_id,
            op,
        });
    }
    // Departures from the account's grids of cases it no longer sees by any
    // other way (a case that came back is simply delivered again).
    let sql = format!(
        "SELECT DISTINCT d.seq, d.case_id FROM case_departures d
         WHERE d.seq > :from AND d.seq <= :horizon
           AND EXISTS (SELECT 1 FROM account_grids g
                       WHERE g.account_id = :account AND g.grid_id = d.unit_id)
           AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND {})
         ORDER BY d.seq LIMIT :n",
        *VISIBLE_TO_ACCOUNT
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":from": cursor,
            ":horizon": horizon,
            ":account": device.account_id,
            ":n": limit as i64 + 1,
        },
        |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut left = Vec::new();
    for row in rows {
        let (seq, case_id) = row?;
        let case_id = CaseId::parse(&case_id).map_err(|_| AppError::internal())?;
        left.push(CaseLeft {
            server_seq: seq,
            case_id,
        });
    }
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
    let names = crate::names::for_ops(conn, ops.iter().map(|p| &p.op))?;
    Ok(Page {
        ops,
        left,
        cursor,
        more,
        reset: false,
        names,
    })
}
