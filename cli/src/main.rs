//! `gridcase`: a grid leader's field terminal on the command line, over the same
//! core the phone apps use.

mod demo;
mod output;
mod photo_intake;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gridcase_core::case::{CaseStatus, Category, Face};
use gridcase_core::ids::{CaseId, PhotoId};
use gridcase_core::store::{CaseOrder, CaseQuery};
use gridcase_core::terminal::PhotoSource;
use gridcase_core::time::{now_millis, HOUR, MINUTE};
use gridcase_core::{CaseDraft, CaseEdit, GeoPoint, Location, Terminal, TerminalConfig};

#[derive(Parser)]
#[command(name = "gridcase", version, about = "Gridcase field terminal")]
struct Cli {
    /// The terminal's data folder (database and photos).
    #[arg(
        long,
        env = "GRIDCASE_DATA",
        default_value = "gridcase-data",
        global = true
    )]
    data: PathBuf,
    /// The grid leader's account on this terminal.
    #[arg(
        long,
        env = "GRIDCASE_ACTOR",
        default_value = "grid-leader",
        global = true
    )]
    actor: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record a sample case (with a generated photo, on a sample grid map) and show it.
    Demo,
    /// Start a case; with --submit it goes straight to the outbox.
    New(NewArgs),
    /// Change a draft.
    Edit(EditArgs),
    /// Attach camera photos to a case.
    Photo { case: String, files: Vec<PathBuf> },
    /// Submit a draft.
    Submit { case: String },
    /// Withdraw a case (duplicate, mistaken report).
    Cancel {
        case: String,
        #[arg(long)]
        reason: String,
    },
    /// List cases.
    List(ListArgs),
    /// Show a case with its photos and timeline.
    Show { case: String },
    /// Record on site whether a resolved case is really done.
    Verify(VerifyArgs),
    /// Record the resident's smiley or frowny face.
    Rate(RateArgs),
    /// Grid map: load from GeoJSON, or find the grid of a point.
    #[command(subcommand)]
    Grids(GridsCommand),
    /// List the case categories.
    Categories,
    /// Enrol this terminal with the centre's server using a one-time code.
    Enrol {
        /// e.g. http://127.0.0.1:8787
        #[arg(long, env = "GRIDCASE_SERVER")]
        server: String,
        #[arg(long)]
        code: String,
        #[arg(long, default_value = "gridcase-cli")]
        device_name: String,
    },
    /// Push what was recorded, upload photos, pull what the centre changed.
    Sync,
    /// Ask the server for a one-time link for the resident to rate a
    /// verified case on their own phone.
    RatingLink {
        case: String,
        /// Also write the link's QR code to this SVG file.
        #[arg(long, value_name = "FILE")]
        qr_svg: Option<PathBuf>,
    },
    /// Run only the photo intake on a file (to time the photo pipeline).
    PhotoIntake {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1920)]
        max_edge: u32,
        #[arg(long, default_value_t = 320)]
        thumb_edge: u32,
    },
}

#[derive(Args)]
struct PlaceArgs {
    #[arg(long, allow_negative_numbers = true, requires = "lon")]
    lat: Option<f64>,
    #[arg(long, allow_negative_numbers = true, requires = "lat")]
    lon: Option<f64>,
    /// GPS accuracy in metres.
    #[arg(long, default_value_t = 10.0)]
    accuracy: f64,
    #[arg(long)]
    address: Option<String>,
}

impl PlaceArgs {
    fn location(&self) -> Option<Location> {
        Some(Location {
            point: GeoPoint {
                lat: self.lat?,
                lon: self.lon?,
                accuracy_m: self.accuracy,
            },
            address: self.address.clone(),
        })
    }
}

#[derive(Args)]
struct NewArgs {
    /// Category code (see `gridcase categories`).
    #[arg(long)]
    category: String,
    #[arg(long)]
    title: String,
    #[arg(long, default_value = "")]
    description: String,
    #[command(flatten)]
    place: PlaceArgs,
    /// How long ago it happened, in minutes.
    #[arg(long, default_value_t = 0)]
    minutes_ago: i64,
    /// Proposed deadline, in hours from now.
    #[arg(long)]
    deadline_hours: Option<i64>,
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
    #[arg(long)]
    submit: bool,
}

#[derive(Args)]
struct EditArgs {
    case: String,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    place: PlaceArgs,
    #[arg(long)]
    deadline_hours: Option<i64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    Changed,
    Deadline,
}

#[derive(Args)]
struct ListArgs {
    /// Only these states (repeatable): draft, submitted, received, ...
    #[arg(long = "status")]
    statuses: Vec<String>,
    #[arg(long)]
    grid: Option<String>,
    /// Only cases with steps not yet on the server.
    #[arg(long)]
    waiting: bool,
    #[arg(long)]
    overdue: bool,
    #[arg(long)]
    text: Option<String>,
    #[arg(long, value_enum, default_value_t = Order::Changed)]
    order: Order,
    #[arg(long, default_value_t = 20)]
    page_size: u32,
    /// The token printed under the previous page.
    #[arg(long)]
    page: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    case: String,
    #[arg(
        long,
        conflicts_with = "not_done",
        required_unless_present = "not_done"
    )]
    done: bool,
    #[arg(long)]
    not_done: bool,
    #[arg(long, default_value = "")]
    note: String,
    /// Photos on the case that show the result (ids from `show`).
    #[arg(long = "photo-id")]
    photo_ids: Vec<String>,
}

#[derive(Args)]
struct RateArgs {
    case: String,
    #[arg(long, conflicts_with = "frowny", required_unless_present = "frowny")]
    smiley: bool,
    #[arg(long)]
    frowny: bool,
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Subcommand)]
enum GridsCommand {
    Load {
        file: PathBuf,
    },
    Locate {
        #[arg(allow_negative_numbers = true)]
        lat: f64,
        #[arg(allow_negative_numbers = true)]
        lon: f64,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GRIDCASE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::PhotoIntake {
        input,
        out,
        max_edge,
        thumb_edge,
    } = &cli.command
    {
        // No store, no runtime: just the pipeline, so it can be timed as a process.
        return photo_intake::run(input, out, *max_edge, *thumb_edge);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let terminal = Terminal::open(&cli.data, TerminalConfig::new(cli.actor.clone()))
        .with_context(|| format!("opening {}", cli.data.display()))?;
    let out = output::Output { json: cli.json };
    rt.block_on(execute(&terminal, cli.command, &out))
}

async fn execute(t: &Terminal, command: Command, out: &output::Output) -> Result<()> {
    match command {
        Command::Demo => demo::run(t, out).await,
        Command::New(args) => {
            let now = now_millis();
            let draft = CaseDraft {
                category: category(&args.category)?,
                title: args.title,
                description: args.description,
                location: args.place.location(),
                occurred_at: now - args.minutes_ago * MINUTE,
                proposed_deadline: args.deadline_hours.map(|h| now + h * HOUR),
            };
            let case = t.create_case(draft, None)?;
            for file in args.photos {
                t.add_photo(&case.id, PhotoSource::File(file.clone()))
                    .await
                    .with_context(|| format!("photo {}", file.display()))?;
            }
            if args.submit {
                t.submit_case(&case.id)?;
            }
            out.detail(&t.case_detail(&case.id).await?);
            Ok(())
        }
        Command::Edit(args) => {
            let id = case_id(&args.case)?;
            let edit = CaseEdit {
                category: args.category.as_deref().map(category).transpose()?,
                title: args.title,
                description: args.description,
                location: args.place.location().map(Some),
                occurred_at: None,
                proposed_deadline: args.deadline_hours.map(|h| Some(now_millis() + h * HOUR)),
            };
            t.edit_case(&id, edit)?;
            out.detail(&t.case_detail(&id).await?);
            Ok(())
        }
        Command::Photo { case, files } => {
            let id = case_id(&case)?;
            if files.is_empty() {
                bail!("name at least one photo file");
            }
            for file in files {
                let photo = t
                    .add_photo(&id, PhotoSource::File(file.clone()))
                    .await
                    .with_context(|| format!("photo {}", file.display()))?;
                out.photo(&photo);
            }
            Ok(())
        }
        Command::Submit { case } => {
            let id = case_id(&case)?;
            t.submit_case(&id)?;
            out.detail(&t.case_detail(&id).await?);
            Ok(())
        }
        Command::Cancel { case, reason } => {
            let id = case_id(&case)?;
            t.cancel_case(&id, &reason)?;
            out.detail(&t.case_detail(&id).await?);
            Ok(())
        }
        Command::List(args) => {
            let statuses = args
                .statuses
                .iter()
                .map(|s| CaseStatus::parse(s).with_context(|| format!("unknown status {s:?}")))
                .collect::<Result<Vec<_>>>()?;
            let query = CaseQuery {
                statuses,
                grid_id: args.grid,
                waiting_to_sync: args.waiting,
                overdue: args.overdue,
                text: args.text,
                order: match args.order {
                    Order::Changed => CaseOrder::LastChange,
                    Order::Deadline => CaseOrder::Deadline,
                },
                page_size: args.page_size,
                page_token: args.page,
            };
            out.page(&t.list_cases(query).await?);
            Ok(())
        }
        Command::Show { case } => {
            out.detail(&t.case_detail(&case_id(&case)?).await?);
            Ok(())
        }
        Command::Verify(args) => {
            let id = case_id(&args.case)?;
            let photos = args
                .photo_ids
                .iter()
                .map(|p| PhotoId::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            t.verify_case(&id, args.done, &args.note, photos, None)?;
            out.detail(&t.case_detail(&id).await?);
            Ok(())
        }
        Command::Rate(args) => {
            let id = case_id(&args.case)?;
            let face = if args.smiley {
                Face::Smiley
            } else {
                Face::Frowny
            };
            t.rate_case(&id, face, &args.comment)?;
            out.detail(&t.case_detail(&id).await?);
            Ok(())
        }
        Command::Grids(GridsCommand::Load { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let n = t.load_grids(&text)?;
            out.line(
                &format!("loaded {n} grid units"),
                serde_json::json!({ "units": n }),
            );
            Ok(())
        }
        Command::Grids(GridsCommand::Locate { lat, lon }) => {
            let unit = t.grid_of(&GeoPoint::new(lat, lon, 0.0)?)?;
            match unit {
                Some(u) => out.line(
                    &format!("{} {} ({})", u.id, u.name, u.level.as_str()),
                    serde_json::json!({ "id": u.id, "name": u.name, "level": u.level.as_str() }),
                ),
                None => out.line("outside every grid", serde_json::json!(null)),
            }
            Ok(())
        }
        Command::Categories => {
            for c in Category::ALL {
                out.line(
                    &format!("{:<22} {}  {}", c.code(), c.name_zh(), c.name_en()),
                    serde_json::json!({ "code": c.code(), "zh": c.name_zh(), "en": c.name_en() }),
                );
            }
            Ok(())
        }
        Command::Enrol {
            server,
            code,
            device_name,
        } => {
            let a = t.enrol(&server, &code, &device_name).await?;
            out.line(
                &format!(
                    "enrolled as {} (device {}), grids: {}",
                    a.account_id,
                    a.device_id,
                    a.grid_ids.join(", ")
                ),
                serde_json::json!({
                    "account_id": a.account_id, "device_id": a.device_id, "grid_ids": a.grid_ids,
                }),
            );
            Ok(())
        }
        Command::Sync => {
            let r = t.sync_now(None).await?;
            out.line(
                &format!(
                    "pushed {} ({} accepted, {} rejected), pulled {}, photo bytes sent {} received {}, {} requests, {} still waiting",
                    r.ops_pushed,
                    r.ops_accepted,
                    r.ops_rejected,
                    r.ops_pulled,
                    r.photo_bytes_sent,
                    r.photo_bytes_received,
                    r.requests,
                    r.ops_waiting
                ),
                serde_json::json!({
                    "ops_pushed": r.ops_pushed, "ops_accepted": r.ops_accepted,
                    "ops_rejected": r.ops_rejected, "ops_pulled": r.ops_pulled,
                    "photo_bytes_sent": r.photo_bytes_sent,
                    "photo_bytes_received": r.photo_bytes_received,
                    "requests": r.requests, "bytes_sent": r.bytes_sent,
                    "bytes_received": r.bytes_received, "ops_waiting": r.ops_waiting,
                }),
            );
            Ok(())
        }
        Command::RatingLink { case, qr_svg } => {
            let id = case_id(&case)?;
            let link = t.rating_link(&id).await?;
            if let Some(file) = &qr_svg {
                std::fs::write(file, &link.qr_svg)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            out.line(
                &format!(
                    "{}\nexpires {}",
                    link.url,
                    output::format_time(link.expires_at)
                ),
                serde_json::json!({
                    "url": link.url, "expires_at": link.expires_at,
                    "qr_svg_file": qr_svg.as_ref().map(|f| f.display().to_string()),
                }),
            );
            Ok(())
        }
        Command::PhotoIntake { .. } => unreachable!("handled before the store is opened"),
    }
}

fn category(code: &str) -> Result<Category> {
    Category::parse(code)
        .with_context(|| format!("unknown category {code:?}; see `gridcase categories`"))
}

fn case_id(s: &str) -> Result<CaseId> {
    Ok(CaseId::parse(s)?)
}
