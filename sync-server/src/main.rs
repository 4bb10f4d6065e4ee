//! `gridcase-server serve` runs the sync server; `gridcase-server admin …` manages
//! accounts, devices, the grid map and (for now) the centre's steps on cases.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gridcase_core::time::{now_millis, Millis, DAY, HOUR};
use gridcase_core::zone::{Zone, DEFAULT_ZONE};
use gridcase_server::admin::{Admin, AdminError, ExportFormat};
use gridcase_server::calendar::Period;
use gridcase_server::centre::staff::{NewStaff, StaffRole};
use gridcase_server::centre::CentreConfig;
use gridcase_server::error::AppError;
use gridcase_server::public::Reader;
use gridcase_server::{
    Config, DEFAULT_DATABASE_CONNECTIONS, DEFAULT_DATA_DIR, DEFAULT_LISTEN, SYNC_BODY_LIMIT,
};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "gridcase-server", version, about = "Gridcase sync server")]
struct Cli {
    /// The folder with the database and the photo files (created if missing).
    #[arg(long, global = true, env = "GRIDCASE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead of SQLite in the
    /// data folder (which still holds the photo files):
    /// postgres://user:password@host:port/db. No TLS: loopback or a private
    /// network.
    #[arg(
        long,
        global = true,
        env = "GRIDCASE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The deployment's time zone (an IANA name): every time people read,
    /// every day and month counted, and what terminals show.
    #[arg(long, global = true, env = "GRIDCASE_TIME_ZONE", default_value = DEFAULT_ZONE,
          value_parser = parse_zone)]
    time_zone: Zone,
    #[command(subcommand)]
    command: Command,
}

fn parse_zone(name: &str) -> Result<Zone, String> {
    Zone::named(name).map_err(|e| e.reason)
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Manage accounts, devices, grids and cases.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "GRIDCASE_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Read connections to the database.
    #[arg(long, env = "GRIDCASE_READ_CONNECTIONS", default_value_t = 4)]
    read_connections: usize,
    /// Connections to PostgreSQL this instance keeps at most (with
    /// --database-url).
    #[arg(long, env = "GRIDCASE_DATABASE_CONNECTIONS", default_value_t = DEFAULT_DATABASE_CONNECTIONS)]
    database_connections: usize,
    /// Largest sync request body, in bytes.
    #[arg(long, env = "GRIDCASE_SYNC_BODY_LIMIT", default_value_t = SYNC_BODY_LIMIT)]
    sync_body_limit: usize,
    #[command(flatten)]
    centre: CentreArgs,
}

/// The centre's settings (sessions, deadline chasing, rating links).
#[derive(Args)]
struct CentreArgs {
    /// How long a dashboard login lasts, in hours.
    #[arg(long, env = "GRIDCASE_SESSION_HOURS", default_value_t = 12)]
    session_hours: u32,
    /// How often the deadline scheduler runs, in seconds; 0 turns it off.
    #[arg(long, env = "GRIDCASE_DEADLINE_PERIOD_SECS", default_value_t = 60)]
    deadline_period_secs: u64,
    /// How long before its deadline a case is chased as near, in hours.
    #[arg(long, env = "GRIDCASE_NEAR_DEADLINE_HOURS", default_value_t = 24)]
    near_deadline_hours: u32,
    /// Chases after which an unfinished case goes to the level above; 0: never.
    #[arg(long, env = "GRIDCASE_ESCALATE_AFTER_CHASES", default_value_t = 3)]
    escalate_after_chases: u32,
    /// How long a resident's rating link stays valid, in days.
    #[arg(long, env = "GRIDCASE_RATING_LINK_DAYS", default_value_t = 7)]
    rating_link_days: u32,
    /// The server's address as residents' phones reach it, e.g.
    /// https://centre.example.cn (rating links); also marks the session
    /// cookie Secure when https.
    #[arg(long, env = "GRIDCASE_PUBLIC_URL")]
    public_url: Option<String>,
}

impl CentreArgs {
    fn config(self) -> anyhow::Result<CentreConfig> {
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!("--public-url must start with https:// or http://");
            }
        }
        Ok(CentreConfig {
            session_ttl: hours(self.session_hours),
            scheduler_period: (self.deadline_period_secs > 0)
                .then(|| std::time::Duration::from_secs(self.deadline_period_secs)),
            near_deadline: hours(self.near_deadline_hours),
            escalate_after_chases: self.escalate_after_chases,
            rating_link_ttl: self.rating_link_days as Millis * DAY,
            public_url: self.public_url,
            ..CentreConfig::default()
        })
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a grid leader with their grids and print a one-time enrolment code.
    CreateLeader {
        #[arg(long)]
        name: String,
        /// A grid (or any unit) the leader answers for; repeat for several.
        #[arg(long = "grid", required = true)]
        grids: Vec<String>,
        /// How long the code stays valid.
        #[arg(long, default_value_t = 7 * 24)]
        code_ttl_hours: u32,
        #[arg(long)]
        json: bool,
    },
    /// Create many grid leaders from a JSON file of `[{"name": …, "grids": […]}]`
    /// in one transaction, and print their codes as JSON.
    CreateLeaders {
        file: PathBuf,
        #[arg(long, default_value_t = 7 * 24)]
        code_ttl_hours: u32,
    },
    /// Print a new one-time enrolment code for an existing account.
    NewCode {
        account_id: String,
        #[arg(long, default_value_t = 7 * 24)]
        code_ttl_hours: u32,
        #[arg(long)]
        json: bool,
    },
    /// List enrolled devices.
    ListDevices {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device's token at once.
    RevokeDevice { device_id: String },
    /// Replace the grid map with a GeoJSON FeatureCollection file.
    ImportGrids {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Dispatch (派单) a case to a department with a deadline.
    Dispatch {
        /// The case's id (or its first characters).
        case_id: String,
        /// The department: its id or its name; it must serve the case's area.
        #[arg(long)]
        department: String,
        /// The deadline, this many hours from now.
        #[arg(
            long,
            required_unless_present = "deadline",
            conflicts_with = "deadline"
        )]
        deadline_hours: Option<u32>,
        /// The deadline as a local time ("2026-12-01 18:00", on --time-zone).
        #[arg(long)]
        deadline: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Chase (催办) a case.
    Chase {
        case_id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record the department accepting and resolving a case.
    Resolve {
        case_id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Copy the database (consistently, while the server runs) and the photo
    /// files into a new folder.
    Backup {
        to: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Put a backup back in place (stop the server first). Terminals synced
    /// past the backup start their pull over and send again what it lacks.
    Restore {
        from: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the cases on the server.
    ListCases {
        #[arg(long)]
        json: bool,
    },
    /// Create a department (职能部门) cases can be dispatched to.
    CreateDepartment {
        #[arg(long)]
        name: String,
        /// The unit whose cases it serves (all, if omitted).
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        json: bool,
    },
    ListDepartments {
        #[arg(long)]
        json: bool,
    },
    /// Create a member of the centre's staff. The password is read from
    /// GRIDCASE_STAFF_PASSWORD, or else from the first line of standard input.
    CreateStaff {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        /// dispatcher, department or supervisor.
        #[arg(long)]
        role: String,
        /// The unit of a dispatcher or supervisor.
        #[arg(long)]
        unit: Option<String>,
        /// The department id of a department handler.
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        json: bool,
    },
    ListStaff {
        #[arg(long)]
        json: bool,
    },
    /// Give a member of staff a new password (read like create-staff's) and
    /// end their sessions.
    ResetPassword {
        #[arg(long)]
        login: String,
    },
    /// Move a dispatcher or supervisor to another unit; cases waiting where
    /// no dispatcher reads them any more move to a queue one reads.
    MoveStaff {
        #[arg(long)]
        login: String,
        #[arg(long)]
        unit: String,
    },
    /// Chase the cases near or past their deadline once now (what `serve`
    /// does every period).
    RunDeadlines {
        #[arg(long, default_value_t = 24)]
        near_deadline_hours: u32,
        #[arg(long, default_value_t = 3)]
        escalate_after_chases: u32,
        /// Run the pass as of this local time instead of now (a rehearsal:
        /// the chases it makes carry that time).
        #[arg(long)]
        at: Option<String>,
    },
    /// Issue an Open311 API key for a client application (shown once).
    Open311Key {
        /// Who the key is for, e.g. "市民热线 App".
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an Open311 API key at once.
    RevokeOpen311Key { key_id: String },
    /// List the Open311 API keys (never the keys themselves).
    ListOpen311Keys {
        #[arg(long)]
        json: bool,
    },
    /// Write the cases of an area and period to a CSV or GeoJSON file.
    ExportCases {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// A unit of the grid map: its cases and everything under it (default: all).
        #[arg(long)]
        unit: Option<String>,
        /// Reported from this date or W3C datetime (default: the first case).
        #[arg(long)]
        from: Option<String>,
        /// Reported up to this date (inclusive) or W3C datetime (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// The file to write (replaced whole, never left half-written).
        #[arg(long)]
        out: PathBuf,
        /// Only what the public may see (Open311's view): the words and
        /// place of private categories withheld, as the `withheld` column says.
        #[arg(long)]
        public: bool,
    },
}

/// The new member's password: from the environment (scripts), else one line
/// of standard input (typed, or piped).
fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("GRIDCASE_STAFF_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GRIDCASE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(cli.data_dir, cli.database_url, cli.time_zone, args),
        Command::Admin(command) => admin(
            cli.data_dir,
            cli.database_url.as_deref(),
            cli.time_zone,
            command,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    data_dir: PathBuf,
    database_url: Option<String>,
    time_zone: Zone,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let config = Config {
        data_dir,
        database_url,
        database_connections: args.database_connections,
        listen: args.listen,
        read_connections: args.read_connections,
        sync_body_limit: args.sync_body_limit,
        time_zone,
        centre: args.centre.config()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(gridcase_server::serve(
        config,
        gridcase_server::shutdown_signal(),
    ))
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn hours(h: u32) -> Millis {
    h as Millis * HOUR
}

/// A time as people read it, on the deployment's clock.
fn when(zone: &Zone, ms: Option<Millis>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| zone.format_minute(ms))
}

/// An admin command's refusal in the words of its command line: the flag
/// (or argument) the user typed, then why.
fn flag_error(e: AdminError) -> anyhow::Error {
    let AdminError::Refused { field, message, .. } = &e else {
        return anyhow::anyhow!("{e}");
    };
    let flag = match field.as_deref() {
        Some("department" | "department_id") => "--department",
        Some("deadline") => "--deadline",
        Some("unit") => "--unit",
        Some("grid" | "grid_id") => "--grid",
        Some("login") => "--login",
        Some("name") => "--name",
        Some("password") => "the password",
        Some("role") => "--role",
        Some("from") => "--from",
        Some("to") => "--to",
        Some("note") => "--note",
        Some("case_id" | "case") => "CASE_ID",
        Some("account_id") => "ACCOUNT_ID",
        Some("device_id") => "DEVICE_ID",
        Some("code_ttl_hours") => "--code-ttl-hours",
        Some(other) => return anyhow::anyhow!("{other}: {message}"),
        None => return anyhow::anyhow!("{message}"),
    };
    anyhow::anyhow!("{flag}: {message}")
}

fn admin(
    data_dir: PathBuf,
    database_url: Option<&str>,
    zone: Zone,
    command: AdminCommand,
) -> anyhow::Result<()> {
    admin_command(data_dir, database_url, zone, command).map_err(|e| {
        match e.downcast::<AdminError>() {
            Ok(admin) => flag_error(admin),
            Err(other) => match other.downcast::<AppError>() {
                Ok(app) => flag_error(app.into()),
                Err(other) => other,
            },
        }
    })
}

fn admin_command(
    data_dir: PathBuf,
    database_url: Option<&str>,
    zone: Zone,
    command: AdminCommand,
) -> anyhow::Result<()> {
    if database_url.is_some() {
        if let AdminCommand::Backup { .. } | AdminCommand::Restore { .. } = &command {
            let command = if matches!(command, AdminCommand::Backup { .. }) {
                "backup"
            } else {
                "restore"
            };
            return Err(AdminError::NotOnPostgres { command }.into());
        }
    }
    // These two handle the database file themselves; a restore must not find
    // it open, not even by this process.
    match &command {
        AdminCommand::Backup { to, json } => {
            let summary = gridcase_server::backup::backup(&data_dir, to)?;
            if *json {
                print_json(&summary)?;
            } else {
                println!(
                    "backed up the database ({} bytes) to {} and {} photo files",
                    summary.database_bytes,
                    summary.database.display(),
                    summary.photo_files_copied
                );
            }
            return Ok(());
        }
        AdminCommand::Restore { from, json } => {
            let summary = gridcase_server::backup::restore(&data_dir, from)?;
            if *json {
                print_json(&summary)?;
            } else {
                println!(
                    "restored {} ops, {} photo files brought back; new history {}",
                    summary.ops, summary.photo_files_copied, summary.history_id
                );
            }
            return Ok(());
        }
        _ => {}
    }
    let mut admin = Admin::open_with(&data_dir, database_url)?.with_zone(zone.clone());
    match command {
        AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => {}
        AdminCommand::CreateLeader {
            name,
            grids,
            code_ttl_hours,
            json,
        } => {
            let leader = admin.create_leader(&name, &grids, hours(code_ttl_hours))?;
            if json {
                print_json(&leader)?;
            } else {
                println!(
                    "account {} ({}), grids {}",
                    leader.account_id,
                    leader.name,
                    leader.grid_ids.join(", ")
                );
                println!(
                    "enrolment code (one use, valid {code_ttl_hours} h): {}",
                    leader.code
                );
            }
        }
        AdminCommand::NewCode {
            account_id,
            code_ttl_hours,
            json,
        } => {
            let issued = admin.issue_code(&account_id, hours(code_ttl_hours))?;
            if json {
                print_json(&issued)?;
            } else {
                println!(
                    "enrolment code (one use, valid {code_ttl_hours} h): {}",
                    issued.code
                );
            }
        }
        AdminCommand::CreateLeaders {
            file,
            code_ttl_hours,
        } => {
            #[derive(serde::Deserialize)]
            struct LeaderLine {
                name: String,
                grids: Vec<String>,
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let lines: Vec<LeaderLine> = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a list of leaders: {e}", file.display()))?;
            let lines: Vec<(String, Vec<String>)> =
                lines.into_iter().map(|l| (l.name, l.grids)).collect();
            let leaders = admin.create_leaders(&lines, hours(code_ttl_hours))?;
            print_json(&leaders)?;
        }
        AdminCommand::ListDevices { json } => {
            let devices = admin.list_devices()?;
            if json {
                print_json(&devices)?;
            } else {
                for d in devices {
                    let replaced = d
                        .replaced_by
                        .as_deref()
                        .map(|r| format!("  replaced by {r}"))
                        .unwrap_or_default();
                    println!(
                        "{}  {:8}  {}  account {} ({})  enrolled {}  last push {}{replaced}",
                        d.device_id,
                        d.state.as_str(),
                        d.device_name,
                        d.account_id,
                        d.account_name,
                        when(&zone, Some(d.created_at)),
                        when(&zone, d.last_push_at)
                    );
                }
            }
        }
        AdminCommand::RevokeDevice { device_id } => {
            if admin.revoke_device(&device_id)? {
                println!("device {device_id} revoked");
            } else {
                println!("device {device_id} was already revoked");
            }
        }
        AdminCommand::ImportGrids { file, json } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let summary = admin.import_grids(&text)?;
            if json {
                print_json(&summary)?;
            } else {
                println!(
                    "imported {} units (map version {}); {} cases moved to another grid",
                    summary.units, summary.version, summary.cases_moved
                );
            }
        }
        AdminCommand::Dispatch {
            case_id,
            department,
            deadline_hours,
            deadline,
            note,
        } => {
            let r = match (deadline_hours, deadline) {
                (Some(hours), _) => admin.dispatch(&case_id, &department, hours, &note)?,
                (None, Some(text)) => {
                    let at = zone
                        .parse_local("deadline", &text)
                        .map_err(|e| AppError::input(&e))?;
                    admin.dispatch_until(&case_id, &department, at, &note)?
                }
                (None, None) => anyhow::bail!("--deadline-hours or --deadline is required"),
            };
            println!(
                "case {} is {} (op {:?})",
                r.case_id, r.status, r.server_seqs
            );
        }
        AdminCommand::Chase { case_id, note } => {
            let r = admin.chase(&case_id, &note)?;
            println!(
                "case {} chased, {} (op {:?})",
                r.case_id, r.status, r.server_seqs
            );
        }
        AdminCommand::Resolve { case_id, note } => {
            let r = admin.resolve(&case_id, &note)?;
            println!(
                "case {} is {} (ops {:?})",
                r.case_id, r.status, r.server_seqs
            );
        }
        AdminCommand::CreateDepartment { name, unit, json } => {
            let d = admin.create_department(&name, unit.as_deref())?;
            if json {
                print_json(&d)?;
            } else {
                println!("department {} ({})", d.id, d.name);
            }
        }
        AdminCommand::ListDepartments { json } => {
            let list = admin.list_departments()?;
            if json {
                print_json(&list)?;
            } else {
                for d in list {
                    println!(
                        "{}  {}  unit {}",
                        d.id,
                        d.name,
                        d.unit_id.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        AdminCommand::CreateStaff {
            login,
            name,
            role,
            unit,
            department,
            json,
        } => {
            let role = StaffRole::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role must be dispatcher, department or supervisor")
            })?;
            let password = read_password()?;
            let staff = admin.create_staff(&NewStaff {
                login,
                name,
                role,
                unit_id: unit,
                department_id: department,
                password,
            })?;
            if json {
                print_json(&staff)?;
            } else {
                println!(
                    "staff {} ({}, {})",
                    staff.id,
                    staff.login,
                    staff.role.as_str()
                );
            }
        }
        AdminCommand::ListStaff { json } => {
            let list = admin.list_staff()?;
            if json {
                print_json(&list)?;
            } else {
                for s in list {
                    println!(
                        "{}  {:12}  {:10}  {}  {}",
                        s.id,
                        s.login,
                        s.role.as_str(),
                        s.unit_id.or(s.department_id).unwrap_or_default(),
                        s.name
                    );
                }
            }
        }
        AdminCommand::ResetPassword { login } => {
            let password = read_password()?;
            let staff = admin.reset_password(&login, &password)?;
            println!("new password set for {}; their sessions ended", staff.login);
        }
        AdminCommand::MoveStaff { login, unit } => {
            let staff = admin.move_staff(&login, &unit)?;
            println!(
                "staff {} ({}) now answers for {}",
                staff.login,
                staff.role.as_str(),
                staff.unit_id.unwrap_or_default()
            );
        }
        AdminCommand::RunDeadlines {
            near_deadline_hours,
            escalate_after_chases,
            at,
        } => {
            let config = CentreConfig {
                near_deadline: hours(near_deadline_hours),
                escalate_after_chases,
                ..CentreConfig::default()
            };
            let now = match at {
                Some(text) => zone
                    .parse_local("at", &text)
                    .map_err(|e| anyhow::anyhow!("--at: {}", e.reason))?,
                None => now_millis(),
            };
            let s = admin.run_deadlines(&config, now)?;
            println!(
                "chased {} near their deadline, {} overdue; {} escalated",
                s.near, s.overdue, s.escalated
            );
        }
        AdminCommand::ListCases { json } => {
            let cases = admin.list_cases()?;
            if json {
                print_json(&cases)?;
            } else {
                for c in cases {
                    println!(
                        "{}  {:11}  grid {:10}  dept {:10}  deadline {}  updated {}  {}",
                        c.case_id,
                        c.status,
                        c.grid_id.as_deref().unwrap_or("(unplaced)"),
                        c.department_name.as_deref().unwrap_or("-"),
                        when(&zone, c.deadline),
                        when(&zone, Some(c.updated_at)),
                        c.title
                    );
                }
            }
        }
        AdminCommand::Open311Key { name, json } => {
            let issued = admin.issue_open311_key(&name)?;
            if json {
                print_json(&issued)?;
            } else {
                println!("Open311 key {} ({})", issued.key_id, issued.name);
                println!("api_key (shown once, keep it secret): {}", issued.api_key);
            }
        }
        AdminCommand::RevokeOpen311Key { key_id } => {
            if admin.revoke_open311_key(&key_id)? {
                println!("Open311 key {key_id} revoked");
            } else {
                println!("Open311 key {key_id} was already revoked");
            }
        }
        AdminCommand::ListOpen311Keys { json } => {
            let keys = admin.list_open311_keys()?;
            if json {
                print_json(&keys)?;
            } else {
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {:8}  {}  created {}",
                        k.key_id,
                        state,
                        k.name,
                        when(&zone, Some(k.created_at))
                    );
                }
            }
        }
        AdminCommand::ExportCases {
            format,
            unit,
            from,
            to,
            out,
            public,
        } => {
            let period = Period::parse(&zone, from.as_deref(), to.as_deref(), Period::ALL)
                .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.reason))?;
            let reader = if public {
                Reader::Public
            } else {
                Reader::Staff
            };
            let (count, bytes) = admin.export_cases(format, unit.as_deref(), period, reader)?;
            write_whole(&out, &bytes)?;
            println!("{count} cases written to {}", out.display());
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over
/// `path`: a reader never sees half an export.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("writing {}: {e}", path.display());
    }
    Ok(())
}
