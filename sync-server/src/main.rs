//! `gridcase-server serve` runs the sync server; `gridcase-server admin …` manages
//! accounts, devices, the grid map and (for now) the centre's steps on cases.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gridcase_core::time::{Millis, HOUR};
use gridcase_server::admin::Admin;
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
    let mut admin = Admin::open(&data_dir)?;
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
    }
    Ok(())
}
