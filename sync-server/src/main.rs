//! `gridcase-server serve` runs the sync server; `gridcase-server admin …` manages
//! accounts, devices, the grid map and (for now) the centre's steps on cases.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gridcase_core::time::{Millis, HOUR};
use gridcase_server::admin::{Admin, ExportFormat};
use gridcase_server::calendar::Period;
use gridcase_server::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, SYNC_BODY_LIMIT};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "gridcase-server", version, about = "Gridcase sync server")]
struct Cli {
    /// The folder with the database and the photo files (created if missing).
    #[arg(long, global = true, env = "GRIDCASE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
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
    /// Largest sync request body, in bytes.
    #[arg(long, env = "GRIDCASE_SYNC_BODY_LIMIT", default_value_t = SYNC_BODY_LIMIT)]
    sync_body_limit: usize,
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
        case_id: String,
        #[arg(long)]
        department: String,
        #[arg(long)]
        deadline_hours: u32,
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
    /// List the cases on the server.
    ListCases {
        #[arg(long)]
        json: bool,
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
    },
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
        Command::Serve(args) => serve(cli.data_dir, args),
        Command::Admin(command) => admin(cli.data_dir, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(data_dir: PathBuf, args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        data_dir,
        listen: args.listen,
        read_connections: args.read_connections,
        sync_body_limit: args.sync_body_limit,
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

fn when(ms: Option<Millis>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| ms.to_string())
}

fn admin(data_dir: PathBuf, command: AdminCommand) -> anyhow::Result<()> {
    let mut admin = Admin::open(&data_dir)?;
    match command {
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
        AdminCommand::ListDevices { json } => {
            let devices = admin.list_devices()?;
            if json {
                print_json(&devices)?;
            } else {
                for d in devices {
                    let state = if d.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {:8}  {}  account {} ({})  enrolled {}  last push {}",
                        d.device_id,
                        state,
                        d.device_name,
                        d.account_id,
                        d.account_name,
                        d.created_at,
                        when(d.last_push_at)
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
            note,
        } => {
            let r = admin.dispatch(&case_id, &department, deadline_hours, &note)?;
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
        AdminCommand::ListCases { json } => {
            let cases = admin.list_cases()?;
            if json {
                print_json(&cases)?;
            } else {
                for c in cases {
                    println!(
                        "{}  {:11}  grid {:10}  dept {:10}  deadline {}  {}",
                        c.case_id,
                        c.status,
                        c.grid_id.as_deref().unwrap_or("-"),
                        c.department.as_deref().unwrap_or("-"),
                        when(c.deadline),
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
                        k.key_id, state, k.name, k.created_at
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
        } => {
            let everything = Period {
                from: 0,
                to: Millis::MAX,
            };
            let period = Period::parse(from.as_deref(), to.as_deref(), everything)
                .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.reason))?;
            let (count, bytes) = admin.export_cases(format, unit.as_deref(), period)?;
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
