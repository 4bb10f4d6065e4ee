//! Admin commands: accounts, devices, the grid map, and (until the centre's
//! dashboard exists) the centre's steps on a case. They open the database
//! themselves, so they work while the server runs (SQLite in WAL: a write
//! waits for the server's writer up to the busy timeout; PostgreSQL: one more
//! client), and they record the centre's steps as ops through the same rules,
//! and the same checks, as the dashboard: a department, unit, grid, login or
//! case they name must exist (and a department must serve the case's area),
//! or the command is refused and nothing is written.
//!
//! The commands of domains on the store run on either backend; the others
//! (staff, the deadline pass, Open311 keys, exports) still need SQLite and
//! answer [`AdminError::NotOnPostgres`] on PostgreSQL. Errors are the
//! admin's own ([`AdminError`]): what was refused and why, by field (the CLI
//! names the flag), never an HTTP status.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use gridcase_core::case::{Case, CaseStatus};
use gridcase_core::grid::GridMap;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::time::{now_millis, Millis, HOUR};
use gridcase_core::zone::Zone;
use serde::Serialize;

use crate::accounts::{self, IssuedCode};
use crate::calendar::Period;
use crate::cases;
use crate::centre::scheduler::{self, TickSummary};
use crate::centre::staff::{self, Department, NewStaff, Staff};
use crate::centre::{actions, CentreConfig};
use crate::db::Db;
use crate::error::{reasons, refused, AppError};
use crate::export::{self, ExportQuery, Output};
use crate::grids::{self, GridCache, ImportSummary};
use crate::names::{Departments, DEPARTMENT_ACTOR_PREFIX};
use crate::open311;
use crate::open311::keys::{IssuedKey, KeyInfo};
use crate::public::Reader;
use crate::store::devices::NewAccount;
use crate::store::{BackendKind, ReadTx, Store, StoreError, Tx};

/// The actor id of the centre's steps recorded by these commands.
pub const ADMIN_ACTOR_ID: &str = "admin";
pub const MAX_ACCOUNT_NAME_CHARS: usize = 100;

/// Why an admin command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input was refused: the field (the CLI names its flag), the rule
    /// (a stable reason code, [`crate::error::reasons`]), and a message.
    #[error("{message}")]
    Refused {
        /// What kind of refusal, as the API's `code` ([`crate::error::codes`]).
        code: String,
        field: Option<String>,
        reason: Option<String>,
        message: String,
    },
    /// The command needs a part of the server that does not run on
    /// PostgreSQL yet (issue 11).
    #[error("{command} does not run on PostgreSQL yet (issue 11): run it against the SQLite data folder")]
    NotOnPostgres { command: &'static str },
    /// The database failed (or could not be opened).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (the server log has more).
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    /// The rule that refused it ([`crate::error::reasons`]).
    pub fn reason(&self) -> Option<&str> {
        match self {
            AdminError::Refused { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// What kind of refusal ([`crate::error::codes`]), when refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The field refused.
    pub fn field(&self) -> Option<&str> {
        match self {
            AdminError::Refused { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// The rules the admin shares with the API refuse in the API's terms; the
/// admin keeps the field, the reason and the message, never the HTTP status.
impl From<AppError> for AdminError {
    fn from(e: AppError) -> Self {
        if e.status.is_server_error() {
            return AdminError::Failed(e.body.message);
        }
        AdminError::Refused {
            code: e.body.code,
            field: e.body.field,
            reason: e.body.reason,
            message: e.body.message,
        }
    }
}

fn failed(field: &'static str, reason: &'static str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, reason, message)
}

pub struct Admin {
    store: Store,
    db: Db,
    grids: Arc<GridCache>,
    zone: Zone,
    /// The admin's calls are synchronous; its database work runs here.
    /// Last, so the store is dropped before it.
    runtime: AdminRuntime,
}

/// The admin's runtime, shut down without waiting when the admin is dropped:
/// a test (or a tool) may drop an [`Admin`] inside its own runtime, where a
/// runtime's blocking shutdown is not allowed. Nothing is left running on
/// it: every call ran to completion in [`on`].
struct AdminRuntime(Option<tokio::runtime::Runtime>);

impl AdminRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the admin's runtime lives as long as the admin")
    }
}

impl Drop for AdminRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
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

/// A centre's step an admin records on a case.
#[derive(Debug, Clone)]
enum Step {
    Dispatch {
        department: String,
        deadline: Millis,
        note: String,
    },
    Chase {
        note: String,
    },
    /// The department accepts (if it has not yet) and reports resolved.
    Resolve {
        note: String,
    },
}

impl Admin {
    /// Opens (creating and migrating if needed) the SQLite database in
    /// `data_dir`; times are read and shown on the default zone until
    /// [`Admin::with_zone`].
    pub fn open(data_dir: &Path) -> Result<Admin, AdminError> {
        Admin::open_with(data_dir, None)
    }

    /// Opens the deployment's database: the PostgreSQL at `database_url`
    /// (migrated if needed), else SQLite in `data_dir`.
    pub fn open_with(data_dir: &Path, database_url: Option<&str>) -> Result<Admin, AdminError> {
        let runtime = AdminRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AdminError::Failed(format!("starting the admin's runtime: {e}")))?,
        ));
        if database_url.is_none() {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| AdminError::Failed(format!("creating {}: {e}", data_dir.display())))?;
        }
        // One command at a time: a reader and a writer are plenty.
        let location = crate::database_location(data_dir, database_url, 1, 2);
        let store = on(runtime.get(), Store::open(&location))?;
        Ok(Admin {
            db: Db::over(&store),
            store,
            grids: Arc::new(GridCache::default()),
            zone: Zone::default(),
            runtime,
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

    /// The store, for a test or tool that needs more than the commands.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn run<T: Send>(&self, fut: impl Future<Output = T> + Send) -> T {
        on(self.runtime.get(), fut)
    }

    /// The old path, for the commands whose domain is not on the store yet.
    fn legacy(&self, command: &'static str) -> Result<&Db, AdminError> {
        match self.store.kind() {
            BackendKind::Sqlite => Ok(&self.db),
            BackendKind::Postgres => Err(AdminError::NotOnPostgres { command }),
        }
    }

    /// The map, as the database holds it now.
    pub fn grid_map(&self) -> Result<GridMap, AdminError> {
        let grids = self.grids.clone();
        Ok(self.run(self.store.read(move |tx| {
            let grids = grids.clone();
            Box::pin(async move { grids.current(tx).await })
        }))?)
    }

    /// Creates a grid leader answering for `grid_ids`, and their first code.
    pub fn create_leader(
        &mut self,
        name: &str,
        grid_ids: &[String],
        code_ttl_ms: Millis,
    ) -> Result<NewLeader, AdminError> {
        let mut created =
            self.create_leaders(&[(name.to_string(), grid_ids.to_vec())], code_ttl_ms)?;
        created
            .pop()
            .ok_or_else(|| AdminError::Failed("no leader was created".into()))
    }

    /// Creates many grid leaders at once (a city's rollout), each with their
    /// grids and first code, in one transaction: all or none.
    pub fn create_leaders(
        &mut self,
        leaders: &[(String, Vec<String>)],
        code_ttl_ms: Millis,
    ) -> Result<Vec<NewLeader>, AdminError> {
        let map = self.grid_map()?;
        if map.is_empty() {
            return Err(failed(
                "grid",
                reasons::NO_GRID_MAP,
                "no grid map is imported yet; import one first (import-grids)",
            )
            .into());
        }
        let mut checked = Vec::with_capacity(leaders.len());
        for (name, grids) in leaders {
            gridcase_core::case::check_text("name", name, 1, MAX_ACCOUNT_NAME_CHARS)
                .map_err(|e| AppError::input(&e))?;
            if grids.is_empty() {
                return Err(failed(
                    "grid",
                    reasons::REQUIRED,
                    "a grid leader needs at least one grid",
                )
                .into());
            }
            if let Some(unknown) = grids.iter().find(|g| map.get(g.trim()).is_none()) {
                return Err(failed(
                    "grid",
                    reasons::NOT_A_UNIT,
                    format!("{unknown:?} is not a unit of the imported map"),
                )
                .into());
            }
            let mut grid_ids: Vec<String> = grids.iter().map(|g| g.trim().to_string()).collect();
            grid_ids.sort();
            grid_ids.dedup();
            checked.push((name.trim().to_string(), grid_ids));
        }
        if code_ttl_ms <= 0 {
            return Err(failed(
                "code_ttl_hours",
                reasons::INVALID,
                "the code must be valid for some time",
            )
            .into());
        }
        let now = now_millis();
        // Ids made once: a transaction run again makes the same accounts.
        let leaders: Vec<(String, String, Vec<String>)> = checked
            .into_iter()
            .map(|(name, grids)| (accounts::new_id(), name, grids))
            .collect();
        Ok(self.run(self.store.write(move |tx| {
            let leaders = leaders.clone();
            Box::pin(async move {
                let mut out = Vec::with_capacity(leaders.len());
                for (account_id, name, grid_ids) in leaders {
                    tx.insert_account(
                        &NewAccount {
                            id: &account_id,
                            name: &name,
                            grid_ids: &grid_ids,
                        },
                        now,
                    )
                    .await?;
                    let issued = accounts::issue_code(tx, &account_id, code_ttl_ms, now).await?;
                    out.push(NewLeader {
                        account_id,
                        name,
                        grid_ids,
                        code: issued.code,
                        expires_at: issued.expires_at,
                    });
                }
                Ok::<_, AppError>(out)
            })
        }))?)
    }

    /// A new one-time code for an existing account (a new or replaced terminal).
    pub fn issue_code(
        &mut self,
        account_id: &str,
        code_ttl_ms: Millis,
    ) -> Result<IssuedCode, AdminError> {
        let now = now_millis();
        let account_id = account_id.to_string();
        Ok(self.run(self.store.write(move |tx| {
            let account_id = account_id.clone();
            Box::pin(async move {
                if tx.account_name(&account_id).await?.is_none() {
                    return Err(failed(
                        "account_id",
                        reasons::NO_SUCH_ACCOUNT,
                        "no account has this id (list-devices shows them)",
                    ));
                }
                accounts::issue_code(tx, &account_id, code_ttl_ms, now).await
            })
        }))?)
    }

    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>, AdminError> {
        let rows = self.run(
            self.store
                .read(|tx| Box::pin(async move { tx.list_devices().await })),
        )?;
        Ok(rows
            .into_iter()
            .map(|d| DeviceInfo {
                state: match (d.revoked_at, &d.replaced_by) {
                    (None, _) => DeviceState::Active,
                    (Some(_), Some(_)) => DeviceState::Retired,
                    (Some(_), None) => DeviceState::Revoked,
                },
                device_id: d.device_id,
                device_name: d.device_name,
                account_id: d.account_id,
                account_name: d.account_name,
                created_at: d.created_at,
                last_push_at: d.last_push_at,
                revoked_at: d.revoked_at,
                replaced_by: d.replaced_by,
            })
            .collect())
    }

    /// Revokes a device's token at once. Answers whether it was active before.
    pub fn revoke_device(&mut self, device_id: &str) -> Result<bool, AdminError> {
        let now = now_millis();
        let device_id = device_id.to_string();
        Ok(self.run(self.store.write(move |tx| {
            let device_id = device_id.clone();
            Box::pin(async move {
                if tx.load_device(&device_id).await?.is_none() {
                    return Err(failed(
                        "device_id",
                        reasons::NO_SUCH_DEVICE,
                        "no device has this id (list-devices shows them)",
                    ));
                }
                Ok(tx.revoke_device(&device_id, now).await?)
            })
        }))?)
    }

    /// Replaces the grid map with the GeoJSON `text`, atomically.
    pub fn import_grids(&mut self, text: &str) -> Result<ImportSummary, AdminError> {
        let now = now_millis();
        let text = std::sync::Arc::new(text.to_string());
        Ok(self.run(self.store.write(move |tx| {
            let text = text.clone();
            Box::pin(async move { grids::import(tx, &text, now).await })
        }))?)
    }

    /// The case an admin names: its full id, or the start of it when only
    /// one case's id starts so (at least 4 characters).
    pub fn resolve_case(&self, given: &str) -> Result<CaseId, AdminError> {
        let given = given.to_string();
        Ok(self.run(self.store.read(move |tx| {
            let given = given.clone();
            Box::pin(async move { resolve_case(tx, &given).await })
        }))?)
    }

    /// The centre's step on the case, recorded in one transaction through the
    /// rules: all of its ops, or none.
    fn step(&mut self, case_id: &str, step: Step) -> Result<Recorded, AdminError> {
        let now = now_millis();
        let grids = self.grids.clone();
        let zone = self.zone.clone();
        let case_id = case_id.to_string();
        Ok(self.run(self.store.write(move |tx| {
            let (grids, zone, case_id, step) =
                (grids.clone(), zone.clone(), case_id.clone(), step.clone());
            Box::pin(async move {
                let case_id = resolve_case(tx, &case_id).await?;
                let map = grids.current(tx).await?;
                let case = tx.load_case(&case_id).await?.ok_or_else(no_such_case)?;
                let steps = ops_of_step(tx, &zone, &case, step, now).await?;
                let mut seqs = Vec::new();
                let mut status = String::new();
                for (actor, kind) in steps {
                    match cases::append_server_op(tx, &map, case_id, actor, kind, now).await? {
                        Ok((seq, case)) => {
                            seqs.push(seq);
                            status = case.status.as_str().to_string();
                        }
                        Err(e) => return Err(refused(&e)),
                    }
                }
                let numbering = tx.number().await?;
                let server_seqs = seqs
                    .into_iter()
                    .map(|s| numbering.of(s))
                    .collect::<Result<_, _>>()?;
                Ok(Recorded {
                    case_id: case_id.to_string(),
                    status,
                    server_seqs,
                })
            })
        }))?)
    }

    /// 派单: gives the case to `department` (its id or name) with a deadline
    /// `deadline_hours` from now.
    pub fn dispatch(
        &mut self,
        case_id: &str,
        department: &str,
        deadline_hours: u32,
        note: &str,
    ) -> Result<Recorded, AdminError> {
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
    ) -> Result<Recorded, AdminError> {
        let step = Step::Dispatch {
            department: department.to_string(),
            deadline,
            note: note.to_string(),
        };
        self.step(case_id, step)
    }

    /// 催办
    pub fn chase(&mut self, case_id: &str, note: &str) -> Result<Recorded, AdminError> {
        let note = note.to_string();
        self.step(case_id, Step::Chase { note })
    }

    /// The department the case is dispatched to accepts it (if it has not yet)
    /// and reports it resolved.
    pub fn resolve(&mut self, case_id: &str, note: &str) -> Result<Recorded, AdminError> {
        let note = note.to_string();
        self.step(case_id, Step::Resolve { note })
    }

    /// Creates a department (职能部门), serving `unit_id` and below if given.
    pub fn create_department(
        &mut self,
        name: &str,
        unit_id: Option<&str>,
    ) -> Result<Department, AdminError> {
        let map = self.grid_map()?;
        let now = now_millis();
        let (name, unit_id) = (name.to_string(), unit_id.map(str::to_string));
        Ok(self.run(self.store.write(move |tx| {
            let (map, name, unit_id) = (map.clone(), name.clone(), unit_id.clone());
            Box::pin(async move {
                staff::create_department(tx, &map, &name, unit_id.as_deref(), now).await
            })
        }))?)
    }

    pub fn list_departments(&self) -> Result<Vec<Department>, AdminError> {
        Ok(self.run(
            self.store
                .read(|tx| Box::pin(async move { tx.list_departments().await })),
        )?)
    }

    /// Creates a member of the centre's staff who logs in with `new.password`.
    pub fn create_staff(&mut self, new: &NewStaff) -> Result<Staff, AdminError> {
        let map = self.grid_map()?;
        // Hashing takes a moment on purpose; not while holding the writer.
        let hash = staff::hash_password(&new.password)?;
        let now = now_millis();
        let new = new.clone();
        Ok(self.run(self.store.write(move |tx| {
            let (map, new, hash) = (map.clone(), new.clone(), hash.clone());
            Box::pin(async move { staff::create_staff(tx, &map, &new, &hash, now).await })
        }))?)
    }

    /// A new password for `login`; their sessions end at once.
    pub fn reset_password(&mut self, login: &str, password: &str) -> Result<Staff, AdminError> {
        let hash = staff::hash_password(password)?;
        let login = login.to_string();
        Ok(self.run(self.store.write(move |tx| {
            let (login, hash) = (login.clone(), hash.clone());
            Box::pin(async move { staff::set_password(tx, &login, &hash).await })
        }))?)
    }

    pub fn list_staff(&self) -> Result<Vec<Staff>, AdminError> {
        Ok(self.run(
            self.store
                .read(|tx| Box::pin(async move { staff::list_staff(tx).await })),
        )?)
    }

    /// Moves a dispatcher or supervisor to another unit; the cases waiting
    /// where nobody reads them now go to a queue a dispatcher reads.
    pub fn move_staff(&mut self, login: &str, unit: &str) -> Result<Staff, AdminError> {
        let map = self.grid_map()?;
        let (login, unit) = (login.to_string(), unit.to_string());
        Ok(self.run(self.store.write(move |tx| {
            let (map, login, unit) = (map.clone(), login.clone(), unit.clone());
            Box::pin(async move { staff::move_staff(tx, &map, &login, &unit).await })
        }))?)
    }

    /// One pass of the deadline scheduler at `now` (what `serve` runs
    /// periodically), for a server run without it or a test.
    pub fn run_deadlines(
        &mut self,
        config: &CentreConfig,
        now: Millis,
    ) -> Result<TickSummary, AdminError> {
        let db = self.legacy("run-deadlines")?.clone();
        let map = self.grid_map()?;
        let config = config.clone();
        Ok(self.run(db.write(move |tx| scheduler::tick(tx, &map, &config, now)))?)
    }

    pub fn list_cases(&self) -> Result<Vec<CaseInfo>, AdminError> {
        Ok(self.run(self.store.read(|tx| {
            Box::pin(async move {
                let departments = Departments::load(tx).await?;
                let cases = tx.list_cases().await?;
                Ok::<_, StoreError>(
                    cases
                        .into_iter()
                        .map(|stored| {
                            let case = stored.case;
                            CaseInfo {
                                case_id: case.id.to_string(),
                                status: case.status.as_str().to_string(),
                                deadline: case.effective_deadline(),
                                department_name: departments
                                    .name_of_opt(case.department.as_deref()),
                                grid_id: case.grid_id,
                                reported_by: case.reported_by,
                                title: case.title,
                                department: case.department,
                                updated_at: stored.updated_at,
                            }
                        })
                        .collect(),
                )
            })
        }))?)
    }

    /// Issues an Open311 API key for a client application; the key is
    /// answered once and only its hash is kept.
    pub fn issue_open311_key(&mut self, name: &str) -> Result<IssuedKey, AdminError> {
        let db = self.legacy("open311-key")?.clone();
        let now = now_millis();
        let name = name.to_string();
        Ok(self.run(db.write(move |tx| open311::keys::issue(tx, &name, now)))?)
    }

    /// Revokes an Open311 key at once. Answers whether it was active before.
    pub fn revoke_open311_key(&mut self, key_id: &str) -> Result<bool, AdminError> {
        let db = self.legacy("revoke-open311-key")?.clone();
        let now = now_millis();
        let key_id = key_id.to_string();
        Ok(self.run(db.write(move |tx| open311::keys::revoke(tx, &key_id, now)))?)
    }

    pub fn list_open311_keys(&self) -> Result<Vec<KeyInfo>, AdminError> {
        let db = self.legacy("list-open311-keys")?.clone();
        Ok(self.run(db.read(|tx| open311::keys::list(tx)))?)
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
    ) -> Result<(usize, Vec<u8>), AdminError> {
        let db = self.legacy("export-cases")?.clone();
        let map = self.grid_map()?;
        let zone = self.zone.clone();
        let q = ExportQuery {
            unit: unit.map(str::to_string),
            department: None,
            period,
            reader,
        };
        Ok(self.run(db.read(move |tx| {
            let cases = export::select(tx, &map, &q)?;
            let output = Output {
                map: &map,
                zone: &zone,
                now: now_millis(),
            };
            let bytes = match format {
                ExportFormat::Csv => export::to_csv(&cases, output)?,
                ExportFormat::Geojson => export::to_geojson(&cases, output).into_bytes(),
            };
            Ok((cases.len(), bytes))
        }))?)
    }
}

/// Runs `fut` on the admin's runtime; from inside another runtime (a test's,
/// calling the admin as a separate process would) on a thread of its own.
fn on<T: Send>(runtime: &tokio::runtime::Runtime, fut: impl Future<Output = T> + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(fut);
    }
    std::thread::scope(|s| match s.spawn(|| runtime.block_on(fut)).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn dispatcher() -> Actor {
    Actor {
        role: Role::Dispatcher,
        id: ADMIN_ACTOR_ID.to_string(),
    }
}

/// The ops `step` makes on `case`, checked as the dashboard checks them.
async fn ops_of_step(
    tx: &mut Tx<'_>,
    zone: &Zone,
    case: &Case,
    step: Step,
    now: Millis,
) -> Result<Vec<(Actor, OpKind)>, AppError> {
    Ok(match step {
        Step::Dispatch {
            department,
            deadline,
            note,
        } => {
            let department =
                actions::department_for(tx, "department", case, Some(department)).await?;
            let deadline = actions::dispatch_deadline(zone, case, Some(deadline), None, now)?;
            let kind = OpKind::Dispatch {
                department: department.id,
                deadline,
                note,
            };
            vec![(dispatcher(), kind)]
        }
        Step::Chase { note } => vec![(dispatcher(), OpKind::Chase { note })],
        Step::Resolve { note } => {
            let department = tx
                .load_desk(&case.id)
                .await?
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
            if case.status != CaseStatus::InProgress {
                steps.push((actor.clone(), OpKind::Accept));
            }
            steps.push((actor, OpKind::Resolve { note }));
            steps
        }
    })
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
async fn resolve_case(tx: &mut ReadTx<'_>, given: &str) -> Result<CaseId, AppError> {
    let given = given.trim().to_ascii_lowercase();
    if let Ok(id) = CaseId::parse(&given) {
        return if tx.case_exists(&id).await? {
            Ok(id)
        } else {
            Err(no_such_case())
        };
    }
    if given.chars().count() < 4 || !given.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(failed(
            "case_id",
            reasons::NOT_AN_ID,
            "is not a case id (give the whole id, or at least its first 4 characters)",
        ));
    }
    match tx.case_ids_starting(&given, 2).await?.as_slice() {
        [one] => Ok(*one),
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
