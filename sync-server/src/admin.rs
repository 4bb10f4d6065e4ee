//! Admin commands: accounts, devices, the grid map, and (until the centre's
//! dashboard exists) the centre's steps on a case. They open the database
//! directly, so they work while the server runs (WAL; a write waits for the
//! server's writer up to the busy timeout), and they record the centre's steps
//! as ops through the same rules as everything else.

use std::path::Path;

use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::time::{now_millis, Millis, HOUR};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::accounts::{self, IssuedCode};
use crate::calendar::Period;
use crate::cases;
use crate::centre::scheduler::{self, TickSummary};
use crate::centre::staff::{self, Department, NewStaff, Staff};
use crate::centre::CentreConfig;
use crate::error::{codes, rejection_code, AppError};
use crate::export::{self, ExportQuery};
use crate::grids::{self, GridCache, ImportSummary};
use crate::open311;
use crate::open311::keys::{IssuedKey, KeyInfo};

/// The actor id of the centre's steps recorded by these commands.
pub const ADMIN_ACTOR_ID: &str = "admin";
pub const MAX_ACCOUNT_NAME_CHARS: usize = 100;

fn failed(message: impl Into<String>) -> AppError {
    AppError::new(
        axum::http::StatusCode::BAD_REQUEST,
        codes::INVALID_REQUEST,
        message,
    )
}

pub struct Admin {
    conn: Connection,
    grids: GridCache,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewLeader {
    pub account_id: String,
    pub name: String,
    pub grid_ids: Vec<String>,
    pub code: String,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub device_name: String,
    pub account_id: String,
    pub account_name: String,
    pub created_at: Millis,
    pub last_push_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseInfo {
    pub case_id: String,
    pub status: String,
    pub grid_id: Option<String>,
    pub reported_by: String,
    pub title: String,
    pub department: Option<String>,
    pub deadline: Option<Millis>,
    pub updated_at: Millis,
}

/// The ops an admin step appended.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub case_id: String,
    pub status: String,
    pub server_seqs: Vec<u64>,
}

impl Admin {
    /// Opens (creating and migrating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Admin, anyhow::Error> {
        std::fs::create_dir_all(data_dir)?;
        let conn = crate::db::open_migrated(&crate::database_path(data_dir))?;
        Ok(Admin {
            conn,
            grids: GridCache::default(),
        })
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Creates a grid leader answering for `grid_ids`, and their first code.
    pub fn create_leader(
        &mut self,
        name: &str,
        grid_ids: &[String],
        code_ttl_ms: Millis,
    ) -> Result<NewLeader, AppError> {
        let mut created =
            self.create_leaders(&[(name.to_string(), grid_ids.to_vec())], code_ttl_ms)?;
        created
            .pop()
            .ok_or_else(|| failed("no grid leader was created"))
    }

    /// Creates many grid leaders at once (a city's rollout), each with their
    /// grids and first code, in one transaction: all or none.
    pub fn create_leaders(
        &mut self,
        leaders: &[(String, Vec<String>)],
        code_ttl_ms: Millis,
    ) -> Result<Vec<NewLeader>, AppError> {
        let map = self.grids.current(&self.conn)?;
        if map.is_empty() {
            tracing::warn!("no grid map imported yet: the grid ids are not checked");
        }
        for (name, grids) in leaders {
            gridcase_core::case::check_text("name", name, 1, MAX_ACCOUNT_NAME_CHARS)
                .map_err(|e| failed(format!("name: {}", e.reason)))?;
            if grids.is_empty() {
                return Err(failed("a grid leader needs at least one grid (--grid)"));
            }
            if let Some(unknown) = grids
                .iter()
                .find(|g| !map.is_empty() && map.get(g).is_none())
            {
                return Err(failed(format!(
                    "grid {unknown:?} is not in the imported map"
                )));
            }
        }
        if code_ttl_ms <= 0 {
            return Err(failed("the code must be valid for some time"));
        }
        let now = now_millis();
        self.write(|tx| {
            let mut out = Vec::with_capacity(leaders.len());
            for (name, grids) in leaders {
                let account_id = accounts::new_id();
                let name = name.trim().to_string();
                tx.execute(
                    "INSERT INTO accounts (id, name, role, created_at) VALUES (?1, ?2, 'grid_leader', ?3)",
                    params![account_id, name, now],
                )?;
                let mut grid_ids = grids.clone();
                grid_ids.sort();
                grid_ids.dedup();
                for grid in &grid_ids {
                    tx.execute(
                        "INSERT INTO account_grids (account_id, grid_id) VALUES (?1, ?2)",
                        params![account_id, grid],
                    )?;
                }
                let issued = accounts::issue_code(tx, &account_id, code_ttl_ms, now)?;
                out.push(NewLeader {
                    account_id,
                    name,
                    grid_ids,
                    code: issued.code,
                    expires_at: issued.expires_at,
                });
            }
            Ok(out)
        })
    }

    /// A new one-time code for an existing account (a new or replaced terminal).
    pub fn issue_code(
        &mut self,
        account_id: &str,
        code_ttl_ms: Millis,
    ) -> Result<IssuedCode, AppError> {
        let now = now_millis();
        self.write(|tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?1)",
                [account_id],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(AppError::not_found("no such account"));
            }
            accounts::issue_code(tx, account_id, code_ttl_ms, now)
        })
    }

    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>, AppError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.id, d.name, d.account_id, a.name, d.created_at, d.last_push_at, d.revoked_at
             FROM devices d JOIN accounts a ON a.id = d.account_id ORDER BY d.created_at, d.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceInfo {
                device_id: r.get(0)?,
                device_name: r.get(1)?,
                account_id: r.get(2)?,
                account_name: r.get(3)?,
                created_at: r.get(4)?,
                last_push_at: r.get(5)?,
                revoked_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a device's token at once. Answers whether it was active before.
    pub fn revoke_device(&mut self, device_id: &str) -> Result<bool, AppError> {
        let now = now_millis();
        self.write(|tx| {
            let revoked: Option<Option<Millis>> = tx
                .query_row(
                    "SELECT revoked_at FROM devices WHERE id = ?1",
                    [device_id],
                    |r| r.get(0),
                )
                .optional()?;
            match revoked {
                None => Err(AppError::not_found("no such device")),
                Some(Some(_)) => Ok(false),
                Some(None) => {
                    tx.execute(
                        "UPDATE devices SET revoked_at = ?1 WHERE id = ?2",
                        params![now, device_id],
                    )?;
                    Ok(true)
                }
            }
        })
    }

    /// Replaces the grid map with the GeoJSON `text`, atomically.
    pub fn import_grids(&mut self, text: &str) -> Result<ImportSummary, AppError> {
        let now = now_millis();
        self.write(|tx| grids::import(tx, text, now))
    }

    pub fn grid_map(&self) -> Result<GridMap, AppError> {
        self.grids.current(&self.conn)
    }

    fn step(&mut self, case_id: &str, steps: Vec<(Actor, OpKind)>) -> Result<Recorded, AppError> {
        let case_id = CaseId::parse(case_id).map_err(|_| failed("not a case id"))?;
        let now = now_millis();
        let grids = &self.grids;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let map = grids.current(&tx)?;
        let mut seqs = Vec::new();
        let mut status = String::new();
        for (actor, kind) in steps {
            match cases::append_server_op(&tx, &map, case_id, actor, kind, now)? {
                Ok((seq, case)) => {
                    seqs.push(seq);
                    status = case.status.as_str().to_string();
                }
                Err(e) => {
                    return Err(AppError::new(
                        axum::http::StatusCode::CONFLICT,
                        rejection_code(&e),
                        e.to_string(),
                    ))
                }
            }
        }
        tx.commit()?;
        Ok(Recorded {
            case_id: case_id.to_string(),
            status,
            server_seqs: seqs,
        })
    }

    fn dispatcher() -> Actor {
        Actor {
            role: Role::Dispatcher,
            id: ADMIN_ACTOR_ID.to_string(),
        }
    }

    /// 派单: gives the case to `department` with a deadline `deadline_hours` from now.
    pub fn dispatch(
        &mut self,
        case_id: &str,
        department: &str,
        deadline_hours: u32,
        note: &str,
    ) -> Result<Recorded, AppError> {
        let deadline = now_millis().saturating_add(deadline_hours as Millis * HOUR);
        let kind = OpKind::Dispatch {
            department: department.trim().to_string(),
            deadline,
            note: note.to_string(),
        };
        self.step(case_id, vec![(Self::dispatcher(), kind)])
    }

    /// 催办
    pub fn chase(&mut self, case_id: &str, note: &str) -> Result<Recorded, AppError> {
        let kind = OpKind::Chase {
            note: note.to_string(),
        };
        self.step(case_id, vec![(Self::dispatcher(), kind)])
    }

    /// The department the case is dispatched to accepts it (if it has not yet)
    /// and reports it resolved.
    pub fn resolve(&mut self, case_id: &str, note: &str) -> Result<Recorded, AppError> {
        let id = CaseId::parse(case_id).map_err(|_| failed("not a case id"))?;
        let case = cases::load_case(&self.conn, &id)?
            .ok_or_else(|| AppError::not_found("no such case"))?;
        let department = case
            .department
            .clone()
            .ok_or_else(|| failed("the case has not been dispatched to a department"))?;
        let actor = Actor {
            role: Role::Department,
            id: format!("department:{department}"),
        };
        let mut steps = Vec::new();
        if case.status != gridcase_core::case::CaseStatus::InProgress {
            steps.push((actor.clone(), OpKind::Accept));
        }
        steps.push((
            actor,
            OpKind::Resolve {
                note: note.to_string(),
            },
        ));
        self.step(case_id, steps)
    }

    /// Creates a department (职能部门), serving `unit_id` and below if given.
    pub fn create_department(
        &mut self,
        name: &str,
        unit_id: Option<&str>,
    ) -> Result<Department, AppError> {
        let map = self.grids.current(&self.conn)?;
        let now = now_millis();
        self.write(|tx| staff::create_department(tx, &map, name, unit_id, now))
    }

    pub fn list_departments(&self) -> Result<Vec<Department>, AppError> {
        staff::list_departments(&self.conn)
    }

    /// Creates a member of the centre's staff who logs in with `new.password`.
    pub fn create_staff(&mut self, new: &NewStaff) -> Result<Staff, AppError> {
        let map = self.grids.current(&self.conn)?;
        // Hashing takes a moment on purpose; not while holding the writer.
        let hash = staff::hash_password(&new.password)?;
        let now = now_millis();
        self.write(|tx| staff::create_staff(tx, &map, new, &hash, now))
    }

    /// A new password for `login`; their sessions end at once.
    pub fn reset_password(&mut self, login: &str, password: &str) -> Result<Staff, AppError> {
        let hash = staff::hash_password(password)?;
        self.write(|tx| staff::set_password(tx, login, &hash))
    }

    pub fn list_staff(&self) -> Result<Vec<Staff>, AppError> {
        staff::list_staff(&self.conn)
    }

    /// One pass of the deadline scheduler at `now` (what `serve` runs
    /// periodically), for a server run without it or a test.
    pub fn run_deadlines(
        &mut self,
        config: &CentreConfig,
        now: Millis,
    ) -> Result<TickSummary, AppError> {
        let grids = &self.grids;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let map = grids.current(&tx)?;
        let summary = scheduler::tick(&tx, &map, config, now)?;
        tx.commit()?;
        Ok(summary)
    }

    pub fn list_cases(&self) -> Result<Vec<CaseInfo>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, updated_at FROM cases ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Millis>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (state, updated_at) = row?;
            let case: gridcase_core::case::Case =
                serde_json::from_str(&state).map_err(|_| AppError::internal())?;
            let deadline = case.effective_deadline();
            out.push(CaseInfo {
                case_id: case.id.to_string(),
                status: case.status.as_str().to_string(),
                grid_id: case.grid_id,
                reported_by: case.reported_by,
                title: case.title,
                department: case.department,
                deadline,
                updated_at,
            });
        }
        Ok(out)
    }

    /// Issues an Open311 API key for a client application; the key is
    /// answered once and only its hash is kept.
    pub fn issue_open311_key(&mut self, name: &str) -> Result<IssuedKey, AppError> {
        let now = now_millis();
        self.write(|tx| open311::keys::issue(tx, name, now))
    }

    /// Revokes an Open311 key at once. Answers whether it was active before.
    pub fn revoke_open311_key(&mut self, key_id: &str) -> Result<bool, AppError> {
        let now = now_millis();
        self.write(|tx| open311::keys::revoke(tx, key_id, now))
    }

    pub fn list_open311_keys(&self) -> Result<Vec<KeyInfo>, AppError> {
        open311::keys::list(&self.conn)
    }

    /// The cases of `unit` (and below) reported in `period`, as CSV or GeoJSON.
    pub fn export_cases(
        &self,
        format: ExportFormat,
        unit: Option<&str>,
        period: Period,
    ) -> Result<(usize, Vec<u8>), AppError> {
        let map = self.grids.current(&self.conn)?;
        let q = ExportQuery {
            unit: unit.map(str::to_string),
            department: None,
            period,
        };
        let cases = export::select(&self.conn, &map, &q)?;
        let now = now_millis();
        let bytes = match format {
            ExportFormat::Csv => export::to_csv(&cases, &map, now)?,
            ExportFormat::Geojson => export::to_geojson(&cases, &map, now).into_bytes(),
        };
        Ok((cases.len(), bytes))
    }
}

/// The file formats of [`Admin::export_cases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Geojson,
}
