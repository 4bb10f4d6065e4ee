//! The terminal's local SQLite store: never loses what the grid leader saved.
//!
//! One writer connection, serialised by a mutex, makes every change in one
//! transaction: the case row, its operation, the outbox entry and any photo row
//! commit together or not at all. Readers have their own connections; with WAL
//! they read the last committed state and are never blocked by the writer.
//! `synchronous = FULL`: a commit that returned survives a dead battery.

mod attention;
mod error;
mod migrations;
mod names;
mod photos;
mod query;
mod sync;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use gridcase_sql::{Access, Readers};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use attention::RefusedStep;
pub use error::StoreError;
pub use names::Names;
pub use photos::PhotoRow;
pub use query::{CaseOrder, CasePage, CaseQuery, CaseSummary, IdMatch};
pub use sync::{EnrolExtras, SyncAccount, SyncApplied};
pub use timeline::{OpSyncState, TimelineEntry};

use crate::case::Case;
use crate::ids::CaseId;
use crate::op::Op;
use crate::time::Millis;

const DB_FILE: &str = "gridcase.sqlite3";
/// Readers kept open for reuse; more may be opened briefly under load.
const IDLE_READERS: usize = 4;
/// How long a write waits for another (a second process on the same folder).
const BUSY_TIMEOUT: std::time::Duration = gridcase_sql::DEFAULT_BUSY_TIMEOUT;

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Readers,
    /// Every connection's interrupt handle, so shutdown can stop long work.
    interrupts: Mutex<Vec<rusqlite::InterruptHandle>>,
    closed: AtomicBool,
}

/// What one committed write changed.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub case: Case,
    pub op: Op,
}

impl Store {
    /// Opens (creating if needed) the database in `dir` and brings its schema up
    /// to date.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        let mut writer = open_connection(&path, false)?;
        migrations::run(&mut writer)?;
        let interrupts = vec![writer.get_interrupt_handle()];
        Ok(Self {
            readers: Readers::new(&path, Access::ReadOnly, BUSY_TIMEOUT, IDLE_READERS),
            path,
            writer: Mutex::new(writer),
            interrupts: Mutex::new(interrupts),
            closed: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops long work in progress and refuses further calls. Committed data is
    /// safe; an interrupted transaction rolls back as a whole.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for handle in self
            .interrupts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            handle.interrupt();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Runs `f` inside one immediate transaction on the writer connection.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_open()?;
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        crate::failpoint::hit(crate::failpoint::STORE_BEFORE_COMMIT);
        tx.commit()?;
        crate::failpoint::hit(crate::failpoint::STORE_AFTER_COMMIT);
        Ok(out)
    }

    /// Runs `f` on a reader connection; it sees the last committed state.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_open()?;
        let conn = self.readers.take(|c| {
            self.interrupts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c.get_interrupt_handle());
        })?;
        let out = f(&conn);
        if !self.is_closed() {
            self.readers.give_back(conn);
        }
        out
    }

    /// Records one operation: checks it against the case's current state with
    /// the domain rules, then writes the new case state, the op (timeline) and
    /// its outbox entry in one transaction. `place` decides the case's grid when
    /// its location is new or changed. `extra` runs in the same transaction (a
    /// photo row, say) before commit.
    pub fn record(
        &self,
        op: Op,
        place: &dyn Fn(&Case) -> Option<String>,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<Recorded, StoreError> {
        self.write(|tx| {
            let recorded = record_in(tx, op, place)?;
            extra(tx)?;
            Ok(recorded)
        })
    }

    /// Records many operations in one transaction: all or none. For imports
    /// and for applying a batch of ops as one unit.
    pub fn record_batch(
        &self,
        ops: Vec<Op>,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<Vec<Recorded>, StoreError> {
        self.write(|tx| ops.into_iter().map(|op| record_in(tx, op, place)).collect())
    }

    /// Records several steps, each with the photo row it brings, in one
    /// transaction: all of them, or none (one command, one outcome).
    pub fn record_steps(
        &self,
        steps: Vec<(Op, Option<PhotoRow>)>,
        place: &dyn Fn(&Case) -> Option<String>,
    ) -> Result<Vec<Recorded>, StoreError> {
        self.write(|tx| {
            let mut out = Vec::with_capacity(steps.len());
            for (op, row) in steps {
                out.push(record_in(tx, op, place)?);
                if let Some(row) = row {
                    row.insert(tx)?;
                }
            }
            Ok(out)
        })
    }

    pub fn case(&self, id: &CaseId) -> Result<Option<Case>, StoreError> {
        self.read(|conn| load_case(conn, id))
    }

    /// The saved grid map, as GeoJSON.
    pub fn grid_map(&self) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT geojson FROM grid_map", [], |r| r.get(0))
                .optional()?)
        })
    }

    /// Replaces the grid map. Cases keep the grid they were placed in: a case's
    /// grid is where it was when recorded, and the centre re-places if needed.
    pub fn save_grid_map(&self, geojson: &str, now: Millis) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO grid_map (only_one, geojson, loaded_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (only_one) DO UPDATE SET geojson = ?1, loaded_at = ?2",
                params![geojson, now],
            )?;
            Ok(())
        })
    }

    /// Number of cases on this terminal.
    pub fn case_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?))
    }
}

fn record_in(
    tx: &Connection,
    op: Op,
    place: &dyn Fn(&Case) -> Option<String>,
) -> Result<Recorded, StoreError> {
    let current = load_case(tx, &op.case_id)?;
    let mut case = crate::op::apply(current.as_ref(), &op)?;
    if current.as_ref().map(|c| &c.location) != Some(&case.location) {
        case.grid_id = place(&case);
    }
    save_case(tx, &case, current.is_none())?;
    let seq = insert_op(tx, &op)?;
    tx.prepare_cached("INSERT INTO outbox (op_seq) VALUES (?1)")?
        .execute([seq])?;
    tx.prepare_cached("UPDATE cases SET pending_ops = pending_ops + 1 WHERE id = ?1")?
        .execute([op.case_id.to_string()])?;
    Ok(Recorded { case, op })
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let access = if read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    Ok(gridcase_sql::open_connection(path, access, BUSY_TIMEOUT)?)
}

pub(crate) fn load_case(conn: &Connection, id: &CaseId) -> Result<Option<Case>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM cases WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    body.map(|b| serde_json::from_str(&b).map_err(StoreError::corrupt))
        .transpose()
}

fn save_case(tx: &Connection, case: &Case, is_new: bool) -> Result<(), StoreError> {
    let body = serde_json::to_string(case).map_err(StoreError::corrupt)?;
    let (lat, lon, address) = match &case.location {
        Some(l) => (Some(l.point.lat), Some(l.point.lon), l.address.clone()),
        None => (None, None, None),
    };
    let sql = if is_new {
        "INSERT INTO cases (id, status, category, title, description, address, lat, lon,
             grid_id, occurred_at, proposed_deadline, deadline, updated_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    } else {
        "UPDATE cases SET status = ?2, category = ?3, title = ?4, description = ?5,
             address = ?6, lat = ?7, lon = ?8, grid_id = ?9, occurred_at = ?10,
             proposed_deadline = ?11, deadline = ?12, updated_at = ?13, body = ?14
         WHERE id = ?1"
    };
    tx.prepare_cached(sql)?.execute(params![
        case.id.to_string(),
        case.status.as_str(),
        case.category.code(),
        case.title,
        case.description,
        address,
        lat,
        lon,
        case.grid_id,
        case.occurred_at,
        case.proposed_deadline,
        case.deadline,
        case.updated_at,
        body,
    ])?;
    Ok(())
}

fn insert_op(tx: &Connection, op: &Op) -> Result<i64, StoreError> {
    let body = serde_json::to_string(op).map_err(StoreError::corrupt)?;
    tx.prepare_cached(
        "INSERT INTO ops (id, case_id, kind, device_time, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        op.id.to_string(),
        op.case_id.to_string(),
        op_kind_code(op),
        op.device_time,
        body
    ])?;
    Ok(tx.last_insert_rowid())
}

/// The `kind` tag as it appears in the op's JSON.
pub fn op_kind_code(op: &Op) -> &'static str {
    op.kind.code()
}

#[cfg(test)]
mod tests;
