//! Admin commands: accounts, devices, the grid map, and (until the centre's
//! dashboard exists) the centre's steps on a case. They open the database
//! directly, so they work while the server runs (WAL; a write waits for the
//! server's writer up to the busy timeout), and they record the centre's steps
//! as ops through the same rules, and the same checks, as the dashboard: a
//! department, unit, grid, login or case they name must exist (and a
//! department must serve the case's area), or the command is refused and
//! nothing is written.

use std::path::Path;

use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::time::{now_millis, Millis, HOUR};
use gridcase_core::zone::Zone;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::accounts::{self, IssuedCode};
use crate::calendar::Period;
use crate::cases;
use crate::centre::scheduler::{self, TickSummary};
use crate::centre::staff::{self, Department, NewStaff, Staff};
use crate::centre::{actions, desk, CentreConfig};
use crate::error::{reasons, refused, AppError};
use crate::export::{self, ExportQuery, Output};
use crate::grids::{self, GridCache, ImportSummary};
use crate::names::{Departments, DEPARTMENT_ACTOR_PREFIX};
use crate::open311;
use crate::open311::keys::{IssuedKey, KeyInfo};
use crate::public::Reader;

/// The actor id of the centre's steps recorded by these commands.
pub const ADMIN_ACTOR_ID: &str = "admin";
pub const MAX_ACCOUNT_NAME_CHARS: usize = 100;

fn failed(field: &'static str, reason: &'static str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, reason, message)
}

pub struct Admin {
    conn: Connection,
    grids: GridCache,
    zone: Zone,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewLeader {
    pub account_id: String,
    pub name: String,
    pub grid_ids: Vec<String>,
    pub code: String,
    pub expires_at: Millis,
}

/// Whether a device's token works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Active,
    /// Revoked by an admin.
    Revoked,
    /// The same terminal enrolled again: the newer device replaced it.
    Retired,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Active => "active",
            DeviceState::Revoked => "revoked",
            DeviceState::Retired => "retired",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub device_name: String,
    pub account_id: String,
    pub account_name: String,
    pub state: DeviceState,
    pub created_at: Millis,
    pub last_push_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// The device that replaced this one (a retired device).
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseInfo {
    pub case_id: String,
    pub status: String,
    /// `None`: in no grid (unplaced).
    pub grid_id: Option<String>,
    pub reported_by: String,
    pub title: String,
    /// The department's id (or, for a dispatch recorded before ids were
    /// stored, its name).
    pub department: Option<String>,
    pub department_name: Option<String>,
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
    /// Opens (creating and migrating if needed) the database in `data_dir`;
    /// times are read and shown on the default zone until [`Admin::with_zone`].
    pub fn open(data_dir: &Path) -> Result<Admin, anyhow::Error> {
        std::fs::create_dir_all(data_dir)?;
        let conn = crate::db::open_migrated(&crate::database_path(data_dir))?;
        Ok(Admin {
            conn,
            grids: GridCache::default(),
            zone: Zone::default(),
        })
    }

    /// The deployment's zone (`--time-zone`), for the times commands read
    /// and print.
    pub fn with_zone(mut self, zone: Zone) -> Admin {
        self.zone = zone;
        self
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
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
        created.pop().ok_or_else(AppError::internal)
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
            return Err(failed(
                "grid",
                reasons::NO_GRID_MAP,
                "no grid map is imported yet; import one first (import-grids)",
            ));
        }
        for (name, grids) in leaders {
            gridcase_core::case::check_text("name", name, 1, MAX_ACCOUNT_NAME_CHARS)
                .map_err(|e| AppError::input(&e))?;
            if grids.is_empty() {
                return Err(failed(
                    "grid",
                    reasons::REQUIRED,
                    "a grid leader needs at least one grid",
                ));
            }
            if let Some(unknown) = grids.iter().find(|g| map.get(g.trim()).is_none()) {
                return Err(failed(
                    "grid",
                    reasons::NOT_A_UNIT,
                    format!("{unknown:?} is not a unit of the imported map"),
                ));
            }
        }
        if code_ttl_ms <= 0 {
            return Err(failed(
                "code_ttl_hours",
                reasons::INVALID,
                "the code must be valid for some time",
            ));
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
                let mut grid_ids: Vec<String> = grids.iter().map(|g| g.trim().to_string()).collect();
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
                return Err(failed(
                    "account_id",
                    reasons::NO_SUCH_ACCOUNT,
                    "no account has this id (list-devices shows them)",
                ));
            }
            accounts::issue_code(tx, account_id, code_ttl_ms, now)
        })
    }

    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>, AppError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.id, d.name, d.account_id, a.name, d.created_at, d.last_push_at, d.revoked_at,
                    d.replaced_by
             FROM devices d JOIN accounts a ON a.id = d.account_id ORDER BY d.created_at, d.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let revoked_at: Option<Millis> = r.get(6)?;
            let replaced_by: Option<String> = r.get(7)?;
            Ok(DeviceInfo {
                device_id: r.get(0)?,
                device_name: r.get(1)?,
                account_id: r.get(2)?,
                account_name: r.get(3)?,
                state: match (revoked_at, &replaced_by) {
                    (None, _) => DeviceState::Active,
                    (Some(_), Some(_)) => DeviceState::Retired,
                    (Some(_), None) => DeviceState::Revoked,
                },
                created_at: r.get(4)?,
                last_push_at: r.get(5)?,
                revoked_at,
                replaced_by,
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
                None => Err(failed(
                    "device_id",
                    reasons::NO_SUCH_DEVICE,
                    "no device has this id (list-devices shows them)",
                )),
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

    /// The case an admin names: its full id, or the start of it when only
    /// one case's id starts so (at least 4 characters).
    pub fn resolve_case(&self, given: &str) -> Result<CaseId, AppError> {
        resolve_case(&self.conn, given)
    }

    /// The centre's steps `make` chooses for the case, recorded in one
    /// transaction through the rules: all of them, or none.
    fn step(
        &mut self,
        case_id: &str,
        make: impl FnOnce(
            &Connection,
            &GridMap,
            &gridcase_core::case::Case,
        ) -> Result<Vec<(Actor, OpKind)>, AppError>,
    ) -> Result<Recorded, AppError> {
        let now = now_millis();
        let grids = &self.grids;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let case_id = resolve_case(&tx, case_id)?;
        let map = grids.current(&tx)?;
        let case = cases::load_case(&tx, &case_id)?.ok_or_else(no_such_case)?;
        let steps = make(&tx, &map, &case)?;
        let mut seqs = Vec::new();
        let mut status = String::new();
        for (actor, kind) in steps {
            match cases::append_server_op(&tx, &map, case_id, actor, kind, now)? {
                Ok((seq, case)) => {
                    seqs.push(seq);
                    status = case.status.as_str().to_string();
                }
                Err(e) => return Err(refused(&e)),
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

    /// 派单: gives the case to `department` (its id or name) with a deadline
    /// `deadline_hours` from now.
    pub fn dispatch(
        &mut self,
        case_id: &str,
        department: &str,
        deadline_hours: u32,
        note: &str,
    ) -> Result<Recorded, AppError> {
        let deadline = now_millis().saturating_add(deadline_hours as Millis * HOUR);
        self.dispatch_until(case_id, department, deadline, note)
    }

    /// 派单 with the deadline as a time (UTC ms): the department must exist
    /// and serve the case's area, the deadline be ahead, exactly as on the
    /// dashboard.
    pub fn dispatch_until(
        &mut self,
        case_id: &str,
        department: &str,
        deadline: Millis,
        note: &str,
    ) -> Result<Recorded, AppError> {
        let zone = self.zone.clone();
        let note = note.to_string();
        let department = department.to_string();
        self.step(case_id, move |conn, _, case| {
            let department = actions::department_for(conn, "department", case, Some(department))?;
            let deadline =
                actions::dispatch_deadline(&zone, case, Some(deadline), None, now_millis())?;
            let kind = OpKind::Dispatch {
                department: department.id,
                deadline,
                note,
            };
            Ok(vec![(Self::dispatcher(), kind)])
        })
    }

    /// 催办
    pub fn chase(&mut self, case_id: &str, note: &str) -> Result<Recorded, AppError> {
        let kind = OpKind::Chase {
            note: note.to_string(),
        };
        self.step(case_id, |_, _, _| Ok(vec![(Self::dispatcher(), kind)]))
    }

    /// The department the case is dispatched to accepts it (if it has not yet)
    /// and reports it resolved.
    pub fn resolve(&mut self, case_id: &str, note: &str) -> Result<Recorded, AppError> {
        let note = note.to_string();
        self.step(case_id, move |conn, _, case| {
            let department = desk::load_desk(conn, &case.id.to_string())?
                .and_then(|d| d.department_id)
                .ok_or_else(|| {
                    failed(
                        "case_id",
                        reasons::NOT_DISPATCHED,
                        "the case is not dispatched to a department",
                    )
                })?;
            let actor = Actor {
                role: Role::Department,
                id: format!("{DEPARTMENT_ACTOR_PREFIX}{department}"),
            };
            let mut steps = Vec::new();
            if case.status != gridcase_core::case::CaseStatus::InProgress {
                steps.push((actor.clone(), OpKind::Accept));
            }
            steps.push((actor, OpKind::Resolve { note }));
            Ok(steps)
        })
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

    /// Moves a dispatcher or supervisor to another unit; the cases waiting
    /// where nobody reads them now go to a queue a dispatcher reads.
    pub fn move_staff(&mut self, login: &str, unit: &str) -> Result<Staff, AppError> {
        let map = self.grids.current(&self.conn)?;
        self.write(|tx| staff::move_staff(tx, &map, login, unit))
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
        let departments = Departments::load(&self.conn)?;
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
                department_name: departments.name_of_opt(case.department.as_deref()),
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

    /// The cases of `unit` (and below) reported in `period`, as CSV or
    /// GeoJSON: everything (the admin answers for the whole centre), or
    /// only what the public may see.
    pub fn export_cases(
        &self,
        format: ExportFormat,
        unit: Option<&str>,
        period: Period,
        reader: Reader,
    ) -> Result<(usize, Vec<u8>), AppError> {
        let map = self.grids.current(&self.conn)?;
        let q = ExportQuery {
            unit: unit.map(str::to_string),
            department: None,
            period,
            reader,
        };
        let cases = export::select(&self.conn, &map, &q)?;
        let output = Output {
            map: &map,
            zone: &self.zone,
            now: now_millis(),
        };
        let bytes = match format {
            ExportFormat::Csv => export::to_csv(&cases, output)?,
            ExportFormat::Geojson => export::to_geojson(&cases, output).into_bytes(),
        };
        Ok((cases.len(), bytes))
    }
}

fn no_such_case() -> AppError {
    failed(
        "case_id",
        reasons::NO_SUCH_CASE,
        "no case has this id (list-cases shows them)",
    )
}

/// A case id as an admin types it: whole, or its first characters (at least
/// 4) when they are one case's.
fn resolve_case(conn: &Connection, given: &str) -> Result<CaseId, AppError> {
    let given = given.trim().to_ascii_lowercase();
    if let Ok(id) = CaseId::parse(&given) {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE id = ?1)",
            [id.to_string()],
            |r| r.get(0),
        )?;
        return if exists { Ok(id) } else { Err(no_such_case()) };
    }
    if given.chars().count() < 4 || !given.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(failed(
            "case_id",
            reasons::NOT_AN_ID,
            "is not a case id (give the whole id, or at least its first 4 characters)",
        ));
    }
    let mut stmt =
        conn.prepare_cached("SELECT id FROM cases WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2")?;
    let found: Vec<String> = stmt
        .query_map([&given], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    match found.as_slice() {
        [one] => CaseId::parse(one).map_err(|_| AppError::internal()),
        [] => Err(no_such_case()),
        _ => Err(failed(
            "case_id",
            reasons::AMBIGUOUS_CASE,
            "more than one case id starts so; give more of it",
        )),
    }
}

/// The file formats of [`Admin::export_cases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Geojson,
}
