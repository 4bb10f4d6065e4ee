//! `gridcase`: a grid leader's field terminal on the command line, over the same
//! core the phone apps use.
//!
//! Every command has one outcome: all it was asked to do is stored, or
//! nothing is. Errors name the flag the user typed and say why, once. Exit
//! status: 0 done, 1 refused or failed (nothing stored), 2 `sync` finished but
//! the server refused some steps (they are listed; `gridcase list --refused`).

mod demo;
mod errors;
mod output;
mod photo_intake;
mod words;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gridcase_core::case::{CaseStatus, Category, Face};
use gridcase_core::ids::CaseId;
use gridcase_core::store::{CaseOrder, CaseQuery};
use gridcase_core::terminal::PhotoSource;
use gridcase_core::time::{now_millis, Millis, HOUR, MINUTE};
use gridcase_core::{
    CaseDraft, CaseEdit, GeoPoint, Location, LocationSource, Terminal, TerminalConfig,
};

use crate::errors::Flags;
use crate::words::{pick, Lang};

#[derive(Parser)]
#[command(
    name = "gridcase",
    version,
    about = "Gridcase field terminal: record cases with photos offline, sync them with the centre",
    after_help = "Exit status: 0 done; 1 refused or failed (nothing was stored); \
                  2 sync finished but the server refused steps (listed; see `list --refused`)."
)]
struct Cli {
    /// The terminal's data folder (database and photos).
    #[arg(
        long,
        env = "GRIDCASE_DATA",
        default_value = "gridcase-data",
        global = true
    )]
    data: PathBuf,
    /// The grid leader's name on this terminal before it is enrolled (the
    /// first enrolment makes what was recorded under it the account's).
    #[arg(
        long,
        env = "GRIDCASE_ACTOR",
        default_value = "grid-leader",
        global = true
    )]
    actor: String,
    /// Print JSON instead of text (times as UTC milliseconds).
    #[arg(long, global = true)]
    json: bool,
    /// The language of what is printed: zh (中文, the default) or en.
    #[arg(long, env = "GRIDCASE_LANG", value_enum, default_value_t = Lang::Zh, global = true)]
    lang: Lang,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record a sample case (with a generated photo, on a sample grid map) and show it.
    Demo,
    /// Start a case, with its photos; with --submit it goes straight to the outbox.
    New(NewArgs),
    /// Change a draft.
    Edit(EditArgs),
    /// Attach camera photos to a case (all of them, or none).
    Photo {
        /// The case: its id, or the first or last characters of it (`list` prints them).
        case: String,
        /// Camera photos (JPEG, PNG or WebP).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Submit a draft.
    Submit {
        /// The case: its id, or the first or last characters of it.
        case: String,
    },
    /// Withdraw a case (duplicate, mistaken report).
    Cancel {
        /// The case: its id, or the first or last characters of it.
        case: String,
        /// Why it is withdrawn (the centre reads it).
        #[arg(long)]
        reason: String,
    },
    /// List cases.
    List(ListArgs),
    /// Show a case: its place, deadlines, notes, photos and timeline.
    Show {
        /// The case: its id, or the first or last characters of it.
        case: String,
    },
    /// Record on site whether a resolved case is really done.
    Verify(VerifyArgs),
    /// Record the resident's smiley or frowny face.
    Rate(RateArgs),
    /// Send a case's refused steps to the server again (see `list --refused`).
    Resend {
        /// The case: its id, or the first or last characters of it.
        case: String,
    },
    /// Grid map: load from GeoJSON, list its units, or find the grid of a point.
    #[command(subcommand)]
    Grids(GridsCommand),
    /// List the case categories (code, Chinese and English name; --category takes any).
    Categories,
    /// Enrol this terminal with the centre's server using a one-time code.
    Enrol {
        /// The centre's server, e.g. http://127.0.0.1:8787
        #[arg(long, env = "GRIDCASE_SERVER")]
        server: String,
        /// The one-time code the centre gave the grid leader (XXXX-XXXX-XXXX).
        #[arg(long)]
        code: String,
        /// How this terminal is listed at the centre.
        #[arg(long, default_value = "gridcase-cli")]
        device_name: String,
    },
    /// Push what was recorded, upload photos, pull what the centre changed.
    Sync,
    /// Ask the server for a one-time link for the resident to rate a
    /// verified case on their own phone.
    RatingLink {
        /// The case: its id, or the first or last characters of it.
        case: String,
        /// Also write the link's QR code to this SVG file.
        #[arg(long, value_name = "FILE")]
        qr_svg: Option<PathBuf>,
    },
    /// Run only the photo intake on a file (to time the photo pipeline).
    PhotoIntake {
        /// The camera photo.
        input: PathBuf,
        /// The folder to write the photo and its thumbnail to.
        #[arg(long)]
        out: PathBuf,
        /// Long edge of the stored photo, pixels.
        #[arg(long, default_value_t = 1920)]
        max_edge: u32,
        /// Long edge of the thumbnail, pixels.
        #[arg(long, default_value_t = 320)]
        thumb_edge: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
    /// Typed in by hand.
    Typed,
    /// The terminal's own GPS.
    DeviceGps,
    /// Tapped on a map.
    MapTap,
}

impl From<Source> for LocationSource {
    fn from(s: Source) -> Self {
        match s {
            Source::Typed => LocationSource::Typed,
            Source::DeviceGps => LocationSource::DeviceGps,
            Source::MapTap => LocationSource::MapTap,
        }
    }
}

#[derive(Args)]
struct PlaceArgs {
    /// Latitude of the place, degrees (WGS-84).
    #[arg(long, allow_negative_numbers = true, requires = "lon")]
    lat: Option<f64>,
    /// Longitude of the place, degrees (WGS-84).
    #[arg(long, allow_negative_numbers = true, requires = "lat")]
    lon: Option<f64>,
    /// GPS accuracy in metres; unknown if not given (edit: kept as it was).
    #[arg(long, allow_negative_numbers = true)]
    accuracy: Option<f64>,
    /// Where the point came from.
    #[arg(long, value_enum, default_value_t = Source::Typed)]
    source: Source,
    /// The address, as people say it (street, building, door).
    #[arg(long)]
    address: Option<String>,
}

#[derive(Args)]
struct DeadlineArgs {
    /// Proposed deadline, in hours from now (e.g. 72, or 1.5).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "deadline")]
    deadline_hours: Option<f64>,
    /// Proposed deadline as a local date and time on the deployment's clock
    /// ("2026-12-01 18:00", or a date: its first minute).
    #[arg(long)]
    deadline: Option<String>,
}

impl DeadlineArgs {
    /// The deadline asked for, in UTC ms; checked for sense here (a past
    /// deadline is a typo), and against the horizon by the core.
    fn resolve(&self, zone: &gridcase_core::Zone, now: Millis) -> Result<Option<Millis>> {
        if let Some(h) = self.deadline_hours {
            if !h.is_finite() {
                bail!("--deadline-hours: must be a number of hours, like 72 or 1.5");
            }
            if h <= 0.0 {
                bail!(
                    "--deadline-hours: must be in the future: {h} hours is {} (give how many hours from now, like 72)",
                    if h == 0.0 { "now" } else { "in the past" }
                );
            }
            let ms = h * HOUR as f64;
            if ms > 1e15 {
                bail!("--deadline-hours: {h} hours is no deadline at all");
            }
            return Ok(Some(now + ms.round() as Millis));
        }
        if let Some(text) = &self.deadline {
            let at = zone.parse_local("deadline", text)?;
            if at <= now {
                bail!(
                    "--deadline: must be in the future ({} is past; now is {})",
                    zone.format_minute(at),
                    zone.format_minute(now)
                );
            }
            return Ok(Some(at));
        }
        Ok(None)
    }

    fn flag(&self) -> &'static str {
        if self.deadline.is_some() {
            "--deadline"
        } else {
            "--deadline-hours"
        }
    }
}

#[derive(Args)]
struct NewArgs {
    /// Category: its code, or its Chinese or English name (see `gridcase categories`).
    #[arg(long)]
    category: String,
    /// A one-line title (at most 100 characters).
    #[arg(long)]
    title: String,
    /// What the resident said, what you saw.
    #[arg(long, default_value = "")]
    description: String,
    #[command(flatten)]
    place: PlaceArgs,
    /// How long ago it happened, in minutes.
    #[arg(long, default_value_t = 0)]
    minutes_ago: i64,
    #[command(flatten)]
    deadline: DeadlineArgs,
    /// A camera photo of the scene (repeat for several). Without --lat and
    /// --lon, the first photo with GPS gives the place.
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
    /// Submit at once (needs a place).
    #[arg(long)]
    submit: bool,
}

#[derive(Args)]
struct EditArgs {
    /// The case: its id, or the first or last characters of it.
    case: String,
    /// New category: its code, or its Chinese or English name.
    #[arg(long)]
    category: Option<String>,
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    place: PlaceArgs,
    #[command(flatten)]
    deadline: DeadlineArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    /// Most recently changed first.
    Changed,
    /// Soonest deadline first.
    Deadline,
}

#[derive(Args)]
struct ListArgs {
    /// Only these states (repeatable): draft, submitted, received, dispatched, ...
    #[arg(long = "status")]
    statuses: Vec<String>,
    /// Only cases in this grid (its id; see `gridcase grids list`).
    #[arg(long)]
    grid: Option<String>,
    /// Only cases with steps not yet on the server.
    #[arg(long)]
    waiting: bool,
    /// Only cases with steps the server refused (to look at, or `resend`).
    #[arg(long)]
    refused: bool,
    /// Only cases past their deadline and still awaiting handling.
    #[arg(long)]
    overdue: bool,
    /// Only cases recorded on this day of the deployment's clock: a date
    /// (2026-12-01) or `today`.
    #[arg(long)]
    day: Option<String>,
    /// Only cases whose title, description or address contain these words.
    #[arg(long)]
    text: Option<String>,
    /// The order of the list.
    #[arg(long, value_enum, default_value_t = Order::Changed)]
    order: Order,
    /// How many cases per page.
    #[arg(long, default_value_t = 20)]
    page_size: u32,
    /// The token printed under the previous page.
    #[arg(long)]
    page: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The case: its id, or the first or last characters of it.
    case: String,
    /// It is really done.
    #[arg(long, conflicts_with = "not_done")]
    done: bool,
    /// It is not done: the case goes back to its department (say why in --note).
    #[arg(long)]
    not_done: bool,
    /// What you found on site (required with --not-done).
    #[arg(long, default_value = "")]
    note: String,
    /// A photo already on the case that shows the result (repeatable; the
    /// first or last characters of its id are enough).
    #[arg(long = "photo-id")]
    photo_ids: Vec<String>,
    /// A new photo of the result, taken now (repeatable).
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
}

#[derive(Args)]
struct RateArgs {
    /// The case: its id, or the first or last characters of it.
    case: String,
    /// The resident is satisfied (笑脸).
    #[arg(long, conflicts_with = "frowny", required_unless_present = "frowny")]
    smiley: bool,
    /// The resident is not satisfied (苦脸): the case is reopened.
    #[arg(long)]
    frowny: bool,
    /// What the resident said.
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Subcommand)]
enum GridsCommand {
    /// Replace the grid map with a GeoJSON FeatureCollection file.
    Load {
        /// The GeoJSON file.
        file: PathBuf,
    },
    /// List the units of the grid map, as a tree (* marks this terminal's grids).
    List,
    /// Name the grid a point falls in.
    Locate {
        /// Latitude, degrees.
        #[arg(allow_negative_numbers = true)]
        lat: f64,
        /// Longitude, degrees.
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
    let flags = Flags::of(&cli.command);
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", errors::render(&e, &flags));
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if let Command::PhotoIntake {
        input,
        out,
        max_edge,
        thumb_edge,
    } = &cli.command
    {
        // No store, no runtime: just the pipeline, so it can be timed as a process.
        photo_intake::run(input, out, *max_edge, *thumb_edge)?;
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let terminal = Terminal::open(&cli.data, TerminalConfig::new(cli.actor.clone()))
        .with_context(|| format!("opening {}", cli.data.display()))?;
    let out = output::Output {
        json: cli.json,
        lang: cli.lang,
        zone: terminal.zone(),
    };
    rt.block_on(execute(&terminal, cli.command, &out))
}

/// A case a typed id stands for.
fn case_id(t: &Terminal, text: &str) -> Result<CaseId> {
    Ok(t.find_case(text)?)
}

fn show(t: &Terminal, out: &output::Output, id: &CaseId) -> Result<()> {
    let d = t.case_detail_blocking(id)?;
    out.detail(&d, &t.short_id(id)?, &t.grids());
    Ok(())
}

async fn execute(t: &Terminal, command: Command, out: &output::Output) -> Result<i32> {
    let l = out.lang;
    match command {
        Command::Demo => demo::run(t, out).await?,
        Command::New(args) => {
            let now = now_millis();
            let location = match (args.place.lat, args.place.lon) {
                (Some(lat), Some(lon)) => Some(Location {
                    point: GeoPoint {
                        lat,
                        lon,
                        accuracy_m: args.place.accuracy,
                    },
                    address: args.place.address.clone(),
                    source: args.place.source.into(),
                }),
                _ => {
                    if args.place.address.is_some() || args.place.accuracy.is_some() {
                        bail!(
                            "--address and --accuracy go with --lat and --lon (a photo's GPS gives only the point; add the address later with `gridcase edit --address`)"
                        );
                    }
                    None
                }
            };
            let draft = CaseDraft {
                category: category(&args.category)?,
                title: args.title,
                description: args.description,
                location,
                occurred_at: now - args.minutes_ago * MINUTE,
                proposed_deadline: args.deadline.resolve(&out.zone, now)?,
            };
            let photos = args
                .photos
                .iter()
                .map(|f| PhotoSource::File(f.clone()))
                .collect();
            let d = t.record_case(draft, photos, args.submit, None).await?;
            out.placement_warning(d.placement.as_ref());
            out.detail(&d, &t.short_id(&d.case.id)?, &t.grids());
        }
        Command::Edit(args) => {
            let id = case_id(t, &args.case)?;
            let current = t.case_detail_blocking(&id)?.case;
            let now = now_millis();
            let p = &args.place;
            let location = match (p.lat, p.lon, &current.location) {
                (Some(lat), Some(lon), old) => Some(Location {
                    point: GeoPoint {
                        lat,
                        lon,
                        // A new point keeps the accuracy it had unless told
                        // otherwise: an edit never resets it silently.
                        accuracy_m: p.accuracy.or(old.as_ref().and_then(|o| o.point.accuracy_m)),
                    },
                    address: p
                        .address
                        .clone()
                        .or_else(|| old.as_ref().and_then(|o| o.address.clone())),
                    source: p.source.into(),
                }),
                (None, None, Some(old)) if p.address.is_some() || p.accuracy.is_some() => {
                    let mut new = old.clone();
                    if let Some(a) = &p.address {
                        new.address = Some(a.clone()).filter(|a| !a.trim().is_empty());
                    }
                    if p.accuracy.is_some() {
                        new.point.accuracy_m = p.accuracy;
                    }
                    Some(new)
                }
                (None, None, None) if p.address.is_some() || p.accuracy.is_some() => {
                    bail!("--address and --accuracy need a place: give --lat and --lon too")
                }
                _ => None,
            };
            let edit = CaseEdit {
                category: args.category.as_deref().map(category).transpose()?,
                title: args.title,
                description: args.description,
                location: location.map(Some),
                occurred_at: None,
                proposed_deadline: args.deadline.resolve(&out.zone, now)?.map(Some),
            };
            if edit.is_empty() {
                bail!("nothing to change: give --title, --category, --description, --lat/--lon, --address, --accuracy or a deadline");
            }
            t.edit_case(&id, edit)?;
            let d = t.case_detail_blocking(&id)?;
            out.placement_warning(d.placement.as_ref());
            show(t, out, &id)?;
        }
        Command::Photo { case, files } => {
            let id = case_id(t, &case)?;
            let sources = files.iter().map(|f| PhotoSource::File(f.clone())).collect();
            for photo in t.add_photos(&id, sources).await? {
                out.photo(&photo);
            }
            let d = t.case_detail_blocking(&id)?;
            out.placement_warning(d.placement.as_ref());
        }
        Command::Submit { case } => {
            let id = case_id(t, &case)?;
            t.submit_case(&id)?;
            let d = t.case_detail_blocking(&id)?;
            out.placement_warning(d.placement.as_ref());
            show(t, out, &id)?;
        }
        Command::Cancel { case, reason } => {
            let id = case_id(t, &case)?;
            t.cancel_case(&id, &reason)?;
            show(t, out, &id)?;
        }
        Command::List(args) => {
            let statuses = args
                .statuses
                .iter()
                .map(|s| {
                    CaseStatus::parse(s).ok_or_else(|| {
                        anyhow!(
                            "--status: unknown status {s:?}; one of {}",
                            CaseStatus::ALL.map(|s| s.as_str()).join(", ")
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let (recorded_from, recorded_before) = match args.day.as_deref() {
                None => (None, None),
                Some(day) => {
                    let z = &out.zone;
                    let start = if day.trim().eq_ignore_ascii_case("today") {
                        z.day_start(now_millis())
                    } else {
                        z.parse_local("day", day)
                            .map(|ms| z.day_start(ms))
                            .map_err(|_| anyhow!("--day: give a date like 2026-12-01, or today"))?
                    };
                    (Some(start), Some(z.next_day_start(start)))
                }
            };
            let query = CaseQuery {
                statuses,
                grid_id: args.grid,
                waiting_to_sync: args.waiting,
                refused: args.refused,
                recorded_from,
                recorded_before,
                overdue: args.overdue,
                text: args.text,
                order: match args.order {
                    Order::Changed => CaseOrder::LastChange,
                    Order::Deadline => CaseOrder::Deadline,
                },
                page_size: args.page_size,
                page_token: args.page,
            };
            let page = t.list_cases(query).await?;
            out.page(&page, &|id| {
                t.short_id(id).unwrap_or_else(|_| id.to_string())
            });
        }
        Command::Show { case } => {
            let id = case_id(t, &case)?;
            show(t, out, &id)?;
        }
        Command::Verify(args) => {
            if !args.done && !args.not_done {
                bail!("say --done or --not-done: is it really done on site?");
            }
            let id = case_id(t, &args.case)?;
            let photo_ids = args
                .photo_ids
                .iter()
                .map(|p| t.find_photo(&id, p))
                .collect::<Result<Vec<_>, _>>()?;
            if args.not_done && args.note.trim().is_empty() {
                bail!("--note: say what is not done; the case goes back to its department with it");
            }
            let photos = args
                .photos
                .iter()
                .map(|f| PhotoSource::File(f.clone()))
                .collect();
            t.verify_with_photos(&id, args.done, &args.note, photo_ids, photos, None)
                .await?;
            show(t, out, &id)?;
        }
        Command::Rate(args) => {
            let id = case_id(t, &args.case)?;
            let face = if args.smiley {
                Face::Smiley
            } else {
                Face::Frowny
            };
            t.rate_case(&id, face, &args.comment)?;
            show(t, out, &id)?;
        }
        Command::Resend { case } => {
            let id = case_id(t, &case)?;
            let n = t.resend_refused(&id)?;
            if !out.json {
                out.line(
                    &match l {
                        Lang::Zh => {
                            format!("已重新放入待上传：{n} 步（下次 gridcase sync 时发送）")
                        }
                        Lang::En => format!(
                            "{n} step(s) back in the outbox (sent at the next gridcase sync)"
                        ),
                    },
                    serde_json::json!(null),
                );
            }
            show(t, out, &id)?;
        }
        Command::Grids(GridsCommand::Load { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let n = t.load_grids(&text)?;
            out.line(
                &match l {
                    Lang::Zh => format!("已载入 {n} 个网格单元"),
                    Lang::En => format!("loaded {n} grid units"),
                },
                serde_json::json!({ "units": n }),
            );
        }
        Command::Grids(GridsCommand::List) => grids_list(t, out)?,
        Command::Grids(GridsCommand::Locate { lat, lon }) => {
            let point = GeoPoint::new(lat, lon, None)?;
            let unit = t.grid_of(&point)?;
            let placement = t.placement_of(&point)?;
            match unit {
                Some(u) => out.line(
                    &format!("{} {} ({})", u.id, u.name, u.level.as_str()),
                    serde_json::json!({
                        "id": u.id, "name": u.name, "level": u.level.as_str(),
                        "placement": output::placement_json(&placement),
                    }),
                ),
                None => out.line(
                    &format!(
                        "{} {}",
                        output::point(&point),
                        pick!(l, "不在任何网格内", "is outside every grid")
                    ),
                    serde_json::json!(null),
                ),
            }
            out.placement_warning(Some(&placement));
        }
        Command::Categories => {
            for c in Category::ALL {
                out.line(
                    &format!("{:<22} {}  {}", c.code(), c.name_zh(), c.name_en()),
                    serde_json::json!({ "code": c.code(), "zh": c.name_zh(), "en": c.name_en() }),
                );
            }
        }
        Command::Enrol {
            server,
            code,
            device_name,
        } => {
            let a = t.enrol(&server, &code, &device_name).await?;
            let name = t.names()?.actor(&a.account_id).map(str::to_owned);
            out.line(
                &match l {
                    Lang::Zh => format!(
                        "已登记：{}（账号 {}，设备 {}），网格：{}；时区 {}",
                        name.as_deref().unwrap_or("-"),
                        a.account_id,
                        a.device_id,
                        a.grid_ids.join("、"),
                        t.zone().name()
                    ),
                    Lang::En => format!(
                        "enrolled as {} (account {}, device {}), grids: {}; time zone {}",
                        name.as_deref().unwrap_or("-"),
                        a.account_id,
                        a.device_id,
                        a.grid_ids.join(", "),
                        t.zone().name()
                    ),
                },
                serde_json::json!({
                    "account_id": a.account_id, "device_id": a.device_id, "grid_ids": a.grid_ids,
                    "account_name": name, "time_zone": t.zone().name(),
                }),
            );
        }
        Command::Sync => {
            let r = t.sync_now(None).await?;
            // The answer may have brought the deployment's clock.
            let out = output::Output {
                json: out.json,
                lang: out.lang,
                zone: t.zone(),
            };
            out.sync_report(&r, &|s| {
                let short = t.short_id(&s.case_id).unwrap_or_default();
                let title = t
                    .store()
                    .case(&s.case_id)
                    .ok()
                    .flatten()
                    .map(|c| c.title)
                    .unwrap_or_default();
                (short, title)
            });
            if !r.refused.is_empty() {
                eprintln!(
                    "{}",
                    match l {
                        Lang::Zh => format!(
                            "服务器退回了 {} 步（原因见上）；gridcase list --refused 查看，gridcase resend <事件> 重新发送",
                            r.refused.len()
                        ),
                        Lang::En => format!(
                            "the server refused {} step(s) (reasons above); see gridcase list --refused, send again with gridcase resend <case>",
                            r.refused.len()
                        ),
                    }
                );
                return Ok(2);
            }
        }
        Command::RatingLink { case, qr_svg } => {
            // The link is the server's: say so before looking for the case.
            if t.store().sync_account()?.is_none() {
                return Err(gridcase_core::sync::SyncError::NotEnrolled.into());
            }
            let id = case_id(t, &case)?;
            let link = t.rating_link(&id).await?;
            if let Some(file) = &qr_svg {
                std::fs::write(file, &link.qr_svg)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            out.line(
                &format!(
                    "{}\n{} {}",
                    link.url,
                    pick!(l, "有效期至", "expires"),
                    out.time(link.expires_at)
                ),
                serde_json::json!({
                    "url": link.url, "expires_at": link.expires_at,
                    "qr_svg_file": qr_svg.as_ref().map(|f| f.display().to_string()),
                }),
            );
        }
        Command::PhotoIntake { .. } => unreachable!("handled before the store is opened"),
    }
    Ok(0)
}

fn grids_list(t: &Terminal, out: &output::Output) -> Result<()> {
    let map = t.grids();
    let own = t
        .store()
        .sync_account()?
        .map(|a| a.grid_ids)
        .unwrap_or_default();
    if map.is_empty() {
        out.line(
            pick!(
                out.lang,
                "本机还没有网格地图（先登记设备，或 gridcase grids load）",
                "no grid map on this terminal yet (enrol, or gridcase grids load)"
            ),
            serde_json::json!([]),
        );
        return Ok(());
    }
    fn walk(
        map: &gridcase_core::grid::GridMap,
        unit: &gridcase_core::grid::GridUnit,
        depth: usize,
        own: &[String],
        out: &output::Output,
    ) {
        let mark = if own.contains(&unit.id) { "*" } else { " " };
        out.line(
            &format!(
                "{mark} {}{} {} ({})",
                "  ".repeat(depth),
                unit.id,
                unit.name,
                unit.level.as_str()
            ),
            serde_json::json!({
                "id": unit.id, "name": unit.name, "level": unit.level.as_str(),
                "parent": unit.parent_id, "yours": own.contains(&unit.id),
            }),
        );
        for child in map.children(&unit.id) {
            walk(map, child, depth + 1, own, out);
        }
    }
    for root in map.units().iter().filter(|u| u.parent_id.is_none()) {
        walk(&map, root, 0, &own, out);
    }
    Ok(())
}

fn category(text: &str) -> Result<Category> {
    Category::find(text).ok_or_else(|| {
        anyhow!("--category: unknown category {text:?}; give a code or a name from `gridcase categories` (e.g. leaking_house or 房屋漏水)")
    })
}
