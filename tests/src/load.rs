//! A city's terminals against one server: N real terminals (each a
//! [`Terminal`] on its own SQLite folder, syncing with the same engine the
//! phones use) enrol with the real server binary, then each syncs on its own
//! clock with jitter, sometimes recording a case with 1–3 photos first, and
//! verifying and rating the cases the centre resolved. The centre dispatches
//! and resolves some received cases as it goes (admin commands), so terminals
//! pull others' changes. Latencies are those of each HTTP request as the sync
//! engine sees it (its `gridcase::request` debug events); the ceiling is the
//! same server's `/healthz`, probed during the run (open loop, at the rate the
//! terminals' syncs are offered), so it sees the same load at the same moment.
//! Rates count the syncs that completed within the measured window.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gridcase_core::case::{CaseStatus, Category, Face};
use gridcase_core::time::{now_millis, DAY};
use gridcase_core::{CaseId, GeoPoint, Terminal, TerminalConfig};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

use crate::centre::{staff_the_centre, CentreClient};
use crate::server::{admin_in, ServerProcess};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub devices: usize,
    /// Each terminal syncs this often (with ±50% jitter).
    pub sync_every: Duration,
    /// The run stops after this long, or after `max_syncs`.
    pub duration: Duration,
    pub max_syncs: u64,
    /// Share of syncs preceded by recording a case with 1–3 photos. Three
    /// cases a day at a sync every 5 minutes is about 1 in 100.
    pub case_share: f64,
    /// Terminals per grid (colleagues pull each other's cases).
    pub leaders_per_grid: usize,
    pub seed: u64,
    /// Keep the terminals' data folders in memory (`/dev/shm`) rather than on
    /// the server's disk. On the street every phone fsyncs its own flash; on
    /// one machine, 2,000 terminals' fsyncs would queue on the disk the server
    /// writes to and measure the simulation, not the server.
    pub terminals_in_memory: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            devices: 2_000,
            sync_every: Duration::from_secs(300),
            duration: Duration::from_secs(120),
            max_syncs: u64::MAX,
            case_share: 0.01,
            leaders_per_grid: 2,
            seed: 1,
            terminals_in_memory: true,
        }
    }
}

/// Latencies of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pub samples: Vec<f64>,
    pub errors: BTreeMap<String, u64>,
}

impl Latencies {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
        s[i.min(s.len() - 1)]
    }

    pub fn max(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub config: LoadConfig,
    pub wall: Duration,
    /// Syncs started.
    pub syncs: u64,
    /// Syncs that completed (successfully) within the measured window.
    pub completed_in_window: u64,
    /// The measured window: from the start to the configured end.
    pub window: Duration,
    pub cases_recorded: u64,
    pub photos: u64,
    pub ratings: u64,
    pub by_kind: BTreeMap<String, Latencies>,
    /// Server CPU seconds used during the run / wall seconds (1.0 = one core).
    pub server_cores: f64,
    /// The same for the load generator itself (the terminals and the centre).
    pub generator_cores: f64,
    pub server_peak_rss_mib: f64,
    /// Requests in flight at once, at most.
    pub peak_in_flight: u64,
    /// `/healthz` probes sent during the run, open loop, per second.
    pub ceiling_rps: f64,
    /// Their latencies.
    pub ceiling: Latencies,
}

impl LoadReport {
    pub fn errors(&self) -> u64 {
        self.by_kind
            .values()
            .map(|l| l.errors.values().sum::<u64>())
            .sum()
    }

    pub fn p99(&self, kind: &str) -> f64 {
        self.by_kind.get(kind).map_or(0.0, |l| l.percentile(99.0))
    }

    /// Syncs per second the run offered, and what that is in terminals syncing
    /// every 5 minutes.
    pub fn equivalent_devices(&self) -> f64 {
        self.rate() * 300.0
    }

    pub fn markdown(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let mut out = format!(
            "{} terminals, a sync every {} s each (±50%), {:.0} s (last answers in at {secs:.1} s): {} syncs started, {} completed in the window ({:.1}/s achieved, {:.1}/s offered; = {:.0} terminals at one sync per 5 min), {} cases with {} photos, {} ratings\n\n",
            self.config.devices,
            self.config.sync_every.as_secs_f64(),
            self.config.duration.as_secs_f64(),
            self.syncs,
            self.completed_in_window,
            self.rate(),
            self.offered_rate(),
            self.equivalent_devices(),
            self.cases_recorded,
            self.photos,
            self.ratings
        );
        out += "| request | count | per s | p50 ms | p95 ms | p99 ms | max ms | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
        let mut rows: Vec<(&String, &Latencies)> = self.by_kind.iter().collect();
        let ceiling_name = "healthz (ceiling, probed during the run)".to_string();
        rows.push((&ceiling_name, &self.ceiling));
        for (kind, l) in rows {
            let errors = if l.errors.is_empty() {
                "0".to_string()
            } else {
                l.errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rate = if kind == &ceiling_name {
                self.ceiling_rps
            } else {
                l.samples.len() as f64 / secs
            };
            out += &format!(
                "| {kind} | {} | {rate:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {errors} |\n",
                l.samples.len(),
                l.percentile(50.0),
                l.percentile(95.0),
                l.percentile(99.0),
                l.max()
            );
        }
        out += &format!(
            "\nserver: {:.2} cores busy on average, peak RSS {:.1} MiB; load generator: {:.2} cores; at most {} requests in flight\n",
            self.server_cores, self.server_peak_rss_mib, self.generator_cores, self.peak_in_flight
        );
        out
    }
}

/// Collects the sync engine's per-request debug events.
#[derive(Clone, Default)]
pub struct RequestRecorder {
    inner: Arc<Mutex<HashMap<String, Latencies>>>,
}

#[derive(Default)]
struct RequestFields {
    kind: String,
    ms: f64,
    error: String,
}

impl Visit for RequestFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "ms" {
            self.ms = value;
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "kind" => self.kind = value.to_string(),
            "error" => self.error = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for RequestRecorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        if event.metadata().target() != gridcase_core::sync::REQUEST_LOG_TARGET {
            return;
        }
        let mut f = RequestFields::default();
        event.record(&mut f);
        let mut all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(f.kind).or_default();
        if f.error.is_empty() {
            entry.samples.push(f.ms);
        } else {
            *entry.errors.entry(f.error).or_default() += 1;
        }
    }
}

impl RequestRecorder {
    /// Installs the recorder as the process's tracing subscriber.
    pub fn install() -> Result<RequestRecorder> {
        let recorder = RequestRecorder::default();
        let filter = tracing_subscriber::filter::Targets::new().with_target(
            gridcase_core::sync::REQUEST_LOG_TARGET,
            tracing::Level::DEBUG,
        );
        let subscriber = tracing_subscriber::registry().with(recorder.clone().with_filter(filter));
        tracing::subscriber::set_global_default(subscriber)
            .context("installing the request recorder")?;
        Ok(recorder)
    }

    /// A request timed outside the sync engine (the centre's).
    pub fn record(&self, kind: &str, ms: f64, error: Option<String>) {
        let mut all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(kind.to_string()).or_default();
        match error {
            None => entry.samples.push(ms),
            Some(e) => *entry.errors.entry(e).or_default() += 1,
        }
    }

    fn take(&self) -> HashMap<String, Latencies> {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A square city of `grids` grids under one county, township and village
/// (the unit tree the server checks), as GeoJSON.
pub fn city_map(grids: usize) -> String {
    let side = (grids as f64).sqrt().ceil() as usize;
    let cell = 0.002;
    let (lat0, lon0) = (42.80, 125.00);
    let square = |la: f64, lo: f64, w: f64, h: f64| {
        format!(
            "[[[{lo},{la}],[{},{la}],[{},{}],[{lo},{}],[{lo},{la}]]]",
            lo + w,
            lo + w,
            la + h,
            la + h
        )
    };
    let whole = square(lat0, lon0, side as f64 * cell, side as f64 * cell);
    let mut features = vec![
        r#"{"type":"Feature","properties":{"id":"city","name":"城","level":"city","parent":null},"geometry":null}"#.to_string(),
    ];
    for (id, level, parent) in [
        ("county", "county", "city"),
        ("town", "township", "county"),
        ("village", "village", "town"),
    ] {
        features.push(format!(
            r#"{{"type":"Feature","properties":{{"id":"{id}","name":"{id}","level":"{level}","parent":"{parent}"}},"geometry":{{"type":"Polygon","coordinates":{whole}}}}}"#
        ));
    }
    for g in 0..grids {
        let (r, c) = (g / side, g % side);
        let poly = square(lat0 + r as f64 * cell, lon0 + c as f64 * cell, cell, cell);
        features.push(format!(
            r#"{{"type":"Feature","properties":{{"id":"g{g}","name":"网格{g}","level":"grid","parent":"village"}},"geometry":{{"type":"Polygon","coordinates":{poly}}}}}"#
        ));
    }
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
}

/// A point inside grid `g` of [`city_map`] with `grids` grids.
pub fn point_in_city_grid(grids: usize, g: usize, i: u64) -> GeoPoint {
    let side = (grids as f64).sqrt().ceil() as usize;
    let (r, c) = (g / side, g % side);
    let f = 0.1 + (i % 8) as f64 * 0.1;
    GeoPoint::new(
        42.80 + (r as f64 + f) * 0.002,
        125.00 + (c as f64 + 0.9 - f * 0.8) * 0.002,
        8.0,
    )
    .expect("inside the city")
}

/// A camera-like photo that comes out of intake at roughly 200–400 KB: fine
/// noise over gradients, different for every `seed`. Smaller than a phone's
/// 12 megapixels: intake's cost grows with pixels, and on one machine the
/// terminals' intake would take the server's CPU; what the server sees (the
/// size of the upload) is what matters.
pub fn camera_photo(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (w, h) = (CAMERA_W, CAMERA_H);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = rng.u8(..) / CAMERA_NOISE_DIV;
        image::Rgb([
            ((x * 255 / w) as u8).wrapping_add(n),
            ((y * 255 / h) as u8).wrapping_add(n / 2),
            (((x ^ y) & 0x3f) as u8).wrapping_add(n),
        ])
    });
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            img.as_raw(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding to memory");
    out
}

const CAMERA_W: u32 = 1280;
const CAMERA_H: u32 = 960;
const CAMERA_NOISE_DIV: u8 = 8;

struct Device {
    terminal: Terminal,
    grid: usize,
    /// Cases this terminal reported, to check on site and have rated.
    reported: Mutex<Vec<CaseId>>,
}

struct Counters {
    syncs: AtomicU64,
    completed_in_window: AtomicU64,
    cases: AtomicU64,
    photos: AtomicU64,
    ratings: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// Cases terminals saw received, for the centre to handle.
#[derive(Default)]
struct Received {
    waiting: Vec<CaseId>,
    handed: std::collections::HashSet<CaseId>,
}

/// The centre's staff at work over the HTTP API, as on the dashboard: the
/// dispatcher sends each new case to the department, which resolves it.
struct Centre {
    dispatcher: CentreClient,
    handler: CentreClient,
    department_id: String,
}

impl Centre {
    async fn handle(&self, case_id: &str) -> Result<()> {
        let deadline = now_millis() + 2 * DAY;
        self.dispatcher
            .act(
                case_id,
                "dispatch",
                serde_json::json!({ "department_id": self.department_id, "deadline": deadline,
                                    "note": "请尽快处置" }),
            )
            .await?;
        self.handler
            .act(case_id, "resolve", serde_json::json!({ "note": "已处理" }))
            .await?;
        Ok(())
    }
}

/// Camera photos made before the clock starts. Making a noisy 3-megapixel
/// JPEG costs more CPU than the server spends taking its upload, and it is
/// the phone's camera's work, not the terminal's: on one machine it would
/// only take CPU from the server. Each photo is used once (the server keeps
/// photos by content, so a repeated one would cost it nothing).
struct Camera {
    ready: Mutex<Vec<Vec<u8>>>,
    next_seed: AtomicU64,
}

impl Camera {
    fn new(seed: u64) -> Camera {
        Camera {
            ready: Mutex::new(Vec::new()),
            next_seed: AtomicU64::new(seed << 32),
        }
    }

    /// A photo not used before; made now if none is ready.
    fn take(&self) -> Vec<u8> {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner()).pop();
        ready.unwrap_or_else(|| camera_photo(self.next_seed.fetch_add(1, Ordering::Relaxed)))
    }

    /// Makes photos until `n` are ready, on every core.
    async fn fill(self: &Arc<Self>, n: usize) -> Result<()> {
        let have = self.ready.lock().unwrap_or_else(|e| e.into_inner()).len();
        let missing = n.saturating_sub(have);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut joins = Vec::new();
        for w in 0..workers {
            let camera = self.clone();
            let count = missing / workers + usize::from(w < missing % workers);
            joins.push(tokio::task::spawn_blocking(move || {
                for _ in 0..count {
                    let photo = camera_photo(camera.next_seed.fetch_add(1, Ordering::Relaxed));
                    camera
                        .ready
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(photo);
                }
            }));
        }
        for j in joins {
            j.await?;
        }
        Ok(())
    }
}

/// A server and its enrolled terminals, ready to be driven at any rate.
pub struct Fleet {
    server: ServerProcess,
    devices: Vec<Arc<Device>>,
    grids: usize,
    recorder: RequestRecorder,
    centre: Arc<Centre>,
    camera: Arc<Camera>,
    /// Dropped last: the terminals' folders when they are kept in memory.
    _terminals: Option<tempfile::TempDir>,
}

/// Runs the load once against a fresh server and terminals under `work`.
pub async fn run(config: LoadConfig, work: &Path) -> Result<LoadReport> {
    let fleet = setup(&config, work).await?;
    drive(&fleet, config).await
}

/// Starts a fresh server (the binary found as usual) on a data folder under
/// `work`, with a city map and the centre's staff, and enrols
/// `config.devices` terminals.
pub async fn setup(config: &LoadConfig, work: &Path) -> Result<Fleet> {
    static RECORDER: std::sync::OnceLock<RequestRecorder> = std::sync::OnceLock::new();
    let recorder = match RECORDER.get() {
        Some(r) => r.clone(),
        None => {
            let r = RequestRecorder::install()?;
            RECORDER.get_or_init(|| r).clone()
        }
    };
    recorder.take();
    std::fs::create_dir_all(work)?;
    let grids = config.devices.div_ceil(config.leaders_per_grid).max(1);
    let data = work.join("server");
    let map = work.join("city.geojson");
    std::fs::write(&map, city_map(grids))?;
    admin_in(&data, &["admin", "import-grids", path_str(&map)?])?;
    let leaders: Vec<serde_json::Value> = (0..config.devices)
        .map(|i| {
            serde_json::json!({
                "name": format!("网格员{i}"),
                "grids": [format!("g{}", i / config.leaders_per_grid)],
            })
        })
        .collect();
    let leaders_file = work.join("leaders.json");
    std::fs::write(&leaders_file, serde_json::to_vec(&leaders)?)?;
    let issued: Vec<serde_json::Value> = serde_json::from_str(&admin_in(
        &data,
        &["admin", "create-leaders", path_str(&leaders_file)?],
    )?)?;
    let server = ServerProcess::start_in(&data)?;
    let url = server.url.clone();
    let department_id = staff_the_centre(&server, "county", "市政")?;
    let centre = Arc::new(Centre {
        dispatcher: CentreClient::login(&server, "dispatcher").await?,
        handler: CentreClient::login(&server, "handler").await?,
        department_id,
    });

    let (terminals_root, terminals_tmp) =
        if config.terminals_in_memory && Path::new("/dev/shm").is_dir() {
            let t = tempfile::Builder::new()
                .prefix("gridcase-load-terminals-")
                .tempdir_in("/dev/shm")?;
            (t.path().to_path_buf(), Some(t))
        } else {
            (work.join("terminals"), None)
        };
    let mut devices = Vec::with_capacity(config.devices);
    for (i, leader) in issued.iter().enumerate() {
        let dir = terminals_root.join(i.to_string());
        std::fs::create_dir_all(&dir)?;
        let account = leader["account_id"].as_str().context("account id")?;
        let terminal = Terminal::open(&dir, TerminalConfig::new(account))?;
        devices.push(Arc::new(Device {
            terminal,
            grid: i / config.leaders_per_grid,
            reported: Mutex::new(Vec::new()),
        }));
    }
    // Enrol every terminal, a few at a time.
    let enrol = Arc::new(tokio::sync::Semaphore::new(16));
    let mut joins = Vec::new();
    for (d, leader) in devices.iter().zip(&issued) {
        let (d, url, enrol) = (d.clone(), url.clone(), enrol.clone());
        let code = leader["code"].as_str().context("code")?.to_string();
        joins.push(tokio::spawn(async move {
            let _permit = enrol.acquire().await;
            d.terminal.enrol(&url, &code, "load").await.map(|_| ())
        }));
    }
    for j in joins {
        j.await??;
    }
    recorder.take(); // enrolment is not what is measured
    Ok(Fleet {
        server,
        devices,
        grids,
        recorder,
        centre,
        camera: Arc::new(Camera::new(config.seed)),
        _terminals: terminals_tmp,
    })
}

/// Drives the fleet's terminals at `config.sync_every` for `config.duration`.
pub async fn drive(fleet: &Fleet, config: LoadConfig) -> Result<LoadReport> {
    let (server, devices, grids, recorder) =
        (&fleet.server, &fleet.devices, fleet.grids, &fleet.recorder);
    let url = server.url.clone();
    // Photos for the cases expected in this run, and a margin.
    let syncs_expected =
        config.devices as f64 * config.duration.as_secs_f64() / config.sync_every.as_secs_f64();
    let cases_expected = (syncs_expected * config.case_share).ceil() as usize;
    fleet.camera.fill(cases_expected * 5 / 2 + 4).await?;
    recorder.take();
    let counters = Arc::new(Counters {
        syncs: AtomicU64::new(0),
        completed_in_window: AtomicU64::new(0),
        cases: AtomicU64::new(0),
        photos: AtomicU64::new(0),
        ratings: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
    });
    let pid = server.pid().context("the server runs")?;
    let cpu_before = process_cpu_seconds(pid)?;
    let own_cpu_before = process_cpu_seconds(std::process::id())?;
    let started = Instant::now();
    let stop_at = started + config.duration;
    let received: Arc<Mutex<Received>> = Default::default();

    // The centre dispatches and resolves what terminals report, in batches.
    let centre = {
        let (centre, received, recorder) =
            (fleet.centre.clone(), received.clone(), recorder.clone());
        tokio::spawn(async move {
            while Instant::now() < stop_at {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let batch: Vec<CaseId> = {
                    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
                    let n = r.waiting.len().min(50);
                    r.waiting.drain(..n).collect()
                };
                for id in batch {
                    let t = Instant::now();
                    let result = centre.handle(&id.to_string()).await;
                    if let Err(e) = &result {
                        eprintln!("the centre could not handle case {id}: {e:#}");
                    }
                    recorder.record(
                        "centre dispatch + resolve",
                        t.elapsed().as_secs_f64() * 1000.0,
                        result.err().map(|_| "refused".to_string()),
                    );
                }
            }
        })
    };

    // The ceiling, probed during the run at the rate the syncs are offered.
    let prober = tokio::spawn(probe_healthz(
        url.clone(),
        config.devices as f64 / config.sync_every.as_secs_f64(),
        stop_at,
        config.seed,
    ));

    let mut joins = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let d = d.clone();
        let (counters, camera, received) =
            (counters.clone(), fleet.camera.clone(), received.clone());
        let config = config.clone();
        joins.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(config.seed ^ (i as u64 * 0x9e37_79b9));
            let every = config.sync_every.as_secs_f64();
            // Terminals come online spread over one period.
            let mut next = started + Duration::from_secs_f64(rng.f64() * every);
            loop {
                if next >= stop_at {
                    return Ok::<(), anyhow::Error>(());
                }
                tokio::time::sleep_until(next.into()).await;
                if counters.syncs.fetch_add(1, Ordering::Relaxed) >= config.max_syncs {
                    return Ok(());
                }
                if rng.f64() < config.case_share {
                    record_case(&d, grids, &mut rng, &camera, &counters).await?;
                }
                counters
                    .ratings
                    .fetch_add(check_and_rate(&d, &mut rng)?, Ordering::Relaxed);
                let now = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                counters.peak_in_flight.fetch_max(now, Ordering::Relaxed);
                let result = d.terminal.sync_now(None).await;
                counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                if result.is_ok() && Instant::now() <= stop_at {
                    counters.completed_in_window.fetch_add(1, Ordering::Relaxed);
                }
                if result.is_ok() {
                    let mut mine = d.reported.lock().unwrap_or_else(|e| e.into_inner());
                    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
                    for id in mine.iter() {
                        let status = d.terminal.case_detail_blocking(id).map(|c| c.case.status);
                        // The terminal may show a case as received until it
                        // pulls what the centre did: hand each over once.
                        if matches!(status, Ok(CaseStatus::Received)) && r.handed.insert(*id) {
                            r.waiting.push(*id);
                        }
                    }
                    mine.retain(|id| {
                        d.terminal.case_detail_blocking(id).is_ok_and(|c| {
                            !c.case.status.is_final() && c.case.status != CaseStatus::Rated
                        })
                    });
                }
                next += Duration::from_secs_f64(every * (0.5 + rng.f64()));
            }
        }));
    }
    for j in joins {
        j.await??;
    }
    let wall = started.elapsed();
    let _ = centre.await;
    let cpu = process_cpu_seconds(pid)? - cpu_before;
    let own_cpu = process_cpu_seconds(std::process::id())? - own_cpu_before;
    let peak_rss = process_peak_rss_mib(pid)?;
    let peak = counters.peak_in_flight.load(Ordering::Relaxed).max(1);
    let by_kind: BTreeMap<String, Latencies> = recorder.take().into_iter().collect();
    let (ceiling_rps, ceiling) = prober.await??;
    Ok(LoadReport {
        window: config.duration,
        config,
        wall,
        syncs: counters.syncs.load(Ordering::Relaxed),
        completed_in_window: counters.completed_in_window.load(Ordering::Relaxed),
        cases_recorded: counters.cases.load(Ordering::Relaxed),
        photos: counters.photos.load(Ordering::Relaxed),
        ratings: counters.ratings.load(Ordering::Relaxed),
        by_kind,
        server_cores: cpu / wall.as_secs_f64(),
        generator_cores: own_cpu / wall.as_secs_f64(),
        server_peak_rss_mib: peak_rss,
        peak_in_flight: peak as u64,
        ceiling_rps,
        ceiling,
    })
}

async fn record_case(
    d: &Device,
    grids: usize,
    rng: &mut fastrand::Rng,
    camera: &Camera,
    counters: &Counters,
) -> Result<()> {
    let point = point_in_city_grid(grids, d.grid, rng.u64(..));
    let photos: Vec<Vec<u8>> = (0..rng.usize(1..=3)).map(|_| camera.take()).collect();
    let n = photos.len() as u64;
    let id = crate::record_case(
        &d.terminal,
        Category::Environment,
        "路灯不亮",
        point,
        photos,
    )
    .await?;
    d.reported
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(id);
    counters.photos.fetch_add(n, Ordering::Relaxed);
    counters.cases.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The grid leader checks resolved cases on site and has verified ones rated.
fn check_and_rate(d: &Device, rng: &mut fastrand::Rng) -> Result<u64> {
    let mine: Vec<CaseId> = d.reported.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut rated = 0;
    for id in mine {
        match d.terminal.case_detail_blocking(&id)?.case.status {
            CaseStatus::Resolved => {
                d.terminal
                    .verify_case(&id, true, "已现场核实", vec![], None)?;
            }
            CaseStatus::Verified => {
                let face = if rng.f64() < 0.9 {
                    Face::Smiley
                } else {
                    Face::Frowny
                };
                d.terminal.rate_case(&id, face, "")?;
                rated += 1;
            }
            _ => {}
        }
    }
    Ok(rated)
}

/// `/healthz` probed open loop at `rate` per second (exponential gaps,
/// seeded) until `stop_at`, each probe on its own task so a slow answer does
/// not hold back the next: the latency a trivial request sees under the load
/// of the same moment. Answers the probes' rate and latencies.
async fn probe_healthz(
    url: String,
    rate: f64,
    stop_at: Instant,
    seed: u64,
) -> Result<(f64, Latencies)> {
    let client = reqwest::Client::new();
    let url = format!("{url}/healthz");
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6865_616c_7468);
    let started = Instant::now();
    let mut next = started;
    let mut probes = tokio::task::JoinSet::new();
    while next < stop_at {
        tokio::time::sleep_until(next.into()).await;
        let (client, url) = (client.clone(), url.clone());
        probes.spawn(async move {
            let t = Instant::now();
            match client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Ok(t.elapsed().as_secs_f64() * 1000.0)
                }
                Ok(r) => Err(r.status().to_string()),
                Err(_) => Err("transport".to_string()),
            }
        });
        // Exponential gaps: arrivals as independent as the terminals'.
        next += Duration::from_secs_f64(-(1.0 - rng.f64()).ln() / rate.max(0.1));
    }
    let window = started.elapsed().as_secs_f64();
    let mut all = Latencies::default();
    while let Some(done) = probes.join_next().await {
        match done? {
            Ok(ms) => all.samples.push(ms),
            Err(e) => *all.errors.entry(e).or_default() += 1,
        }
    }
    let sent = all.samples.len() as u64 + all.errors.values().sum::<u64>();
    Ok((sent as f64 / window.max(1e-3), all))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("a UTF-8 path")
}

/// User + system CPU seconds a process has used (Linux `/proc`).
pub fn process_cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let rest = stat.rsplit_once(')').context("/proc stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// A process's peak resident memory in MiB (Linux `VmHWM`).
pub fn process_peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// Where the load generator keeps its terminals and server data.
pub fn work_dir(keep: Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match keep {
        Some(p) => {
            std::fs::create_dir_all(&p)?;
            Ok((p, None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("gridcase-load-")
                .tempdir()?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

/// A province's terminals, each syncing every 5 minutes: the rate the server
/// must carry on two cores (333 syncs per second).
pub const PROVINCE_TERMINALS: f64 = 100_000.0;
/// The province's rate the server must achieve, in syncs per second.
pub const PROVINCE_RATE: f64 = 333.0;

/// Runs `config` (a city), then the same terminals at a province's rate
/// ([`PROVINCE_TERMINALS`] syncing every 5 minutes), then twice that each
/// round (`round_duration` each), until the p99 of pushes or pulls passes one
/// second or a request fails. Returns every report (the city first, the
/// province second) and the round that broke, if any did within `max_rounds`.
pub async fn find_breaking_point(
    config: LoadConfig,
    round_duration: Duration,
    max_rounds: usize,
    work: &Path,
) -> Result<(Vec<LoadReport>, Option<usize>)> {
    let fleet = setup(&config, work).await?;
    let mut reports = vec![drive(&fleet, config.clone()).await?];
    let mut c = config;
    c.duration = round_duration;
    c.sync_every = Duration::from_secs_f64(c.devices as f64 * 300.0 / PROVINCE_TERMINALS);
    for round in 1..=max_rounds {
        let r = drive(&fleet, c.clone()).await?;
        let broke = r.broke();
        reports.push(r);
        if broke {
            return Ok((reports, Some(round)));
        }
        c.sync_every /= 2;
    }
    Ok((reports, None))
}

impl LoadReport {
    /// The p99 of pushes or pulls passed one second, or a request failed.
    pub fn broke(&self) -> bool {
        self.p99("push").max(self.p99("pull")) > 1_000.0 || self.errors() > 0
    }

    /// Syncs per second achieved: those that completed within the measured
    /// window, over the window.
    pub fn rate(&self) -> f64 {
        self.completed_in_window as f64 / self.window.as_secs_f64()
    }

    /// Syncs per second the terminals were set to offer.
    pub fn offered_rate(&self) -> f64 {
        self.config.devices as f64 / self.config.sync_every.as_secs_f64()
    }

    /// The city's target: no errors, pushes and pulls under 100 ms at p99,
    /// and the offered rate achieved (within 5%: the terminals' phases are
    /// random, so a window holds a few syncs more or less than the average).
    pub fn city_met(&self) -> bool {
        self.errors() == 0
            && self.p99("push") < 100.0
            && self.p99("pull") < 100.0
            && self.rate() >= 0.95 * self.offered_rate()
    }

    /// The province's target: at least 333 syncs/s achieved, with the p99 of
    /// pushes and pulls under one second and no errors.
    pub fn province_met(&self) -> bool {
        !self.broke() && self.rate() >= PROVINCE_RATE
    }

    /// The benchmark table's rows: the city against the target and the
    /// ceiling, the province, and the breaking point.
    pub fn markdown_rows(reports: &[LoadReport], broke: Option<usize>) -> Vec<String> {
        let mut rows = Vec::new();
        let Some(first) = reports.first() else {
            return rows;
        };
        let ceiling_p99 = first.ceiling.percentile(99.0);
        for kind in ["push", "pull"] {
            let p99 = first.p99(kind);
            rows.push(format!(
                "| load: {} terminals, a sync each every {:.0} s: {kind} p99 (target < 100 ms, 0 errors: {} errors) | {p99:.1} ms | /healthz p99 probed during the run ({:.1}/s): {ceiling_p99:.1} ms | {:.1}× |",
                first.config.devices,
                first.config.sync_every.as_secs_f64(),
                first.errors(),
                first.ceiling_rps,
                if ceiling_p99 > 0.0 { p99 / ceiling_p99 } else { 0.0 }
            ));
        }
        rows.push(format!(
            "| load: the city's rate (target: {:.2} syncs/s offered, achieved within 5%, p99 < 100 ms, 0 errors) | {:.2} syncs/s completed; server {:.2} cores, peak RSS {:.1} MiB | at most {} requests in flight | {} |",
            first.offered_rate(),
            first.rate(),
            first.server_cores,
            first.server_peak_rss_mib,
            first.peak_in_flight,
            if first.city_met() { "met" } else { "NOT met" }
        ));
        if let Some(p) = reports.get(1) {
            rows.push(format!(
                "| load: a province ({:.0} terminals syncing every 5 min, target ≥ {PROVINCE_RATE:.0} syncs/s achieved with p99 < 1 s, 0 errors) | {:.1} syncs/s completed ({:.1} offered): push p99 {:.1} ms, pull p99 {:.1} ms, {} errors; server {:.2} cores, generator {:.2} cores | /healthz p99 probed during the run ({:.1}/s): {:.1} ms | {} |",
                PROVINCE_TERMINALS,
                p.rate(),
                p.offered_rate(),
                p.p99("push"),
                p.p99("pull"),
                p.errors(),
                p.server_cores,
                p.generator_cores,
                p.ceiling_rps,
                p.ceiling.percentile(99.0),
                if p.province_met() { "met" } else { "NOT met" }
            ));
        }
        match broke.and_then(|i| reports.get(i)) {
            Some(r) => rows.push(format!(
                "| load: breaking point (p99 of pushes or pulls > 1 s, or errors) | {:.1} syncs/s = {:.0} terminals syncing every 5 min (p99 push {:.0} ms, pull {:.0} ms, {} errors; server {:.2} cores, generator {:.2} cores) | last rate below it: {:.0} terminals | |",
                r.rate(),
                r.equivalent_devices(),
                r.p99("push"),
                r.p99("pull"),
                r.errors(),
                r.server_cores,
                r.generator_cores,
                reports[reports.len() - 2].equivalent_devices()
            )),
            None => rows.push(format!(
                "| load: breaking point | not reached up to {:.0} terminals syncing every 5 min | | |",
                reports.last().map_or(0.0, LoadReport::equivalent_devices)
            )),
        }
        rows
    }
}

/// Thousands of terminals hold files open.
pub fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(devices: usize, every_secs: f64, completed: u64, p99_ms: f64) -> LoadReport {
        let mut by_kind = BTreeMap::new();
        for kind in ["push", "pull"] {
            by_kind.insert(
                kind.to_string(),
                Latencies {
                    samples: vec![p99_ms; 10],
                    errors: BTreeMap::new(),
                },
            );
        }
        LoadReport {
            config: LoadConfig {
                devices,
                sync_every: Duration::from_secs_f64(every_secs),
                duration: Duration::from_secs(30),
                ..LoadConfig::default()
            },
            wall: Duration::from_secs(31),
            syncs: completed + 50,
            completed_in_window: completed,
            window: Duration::from_secs(30),
            cases_recorded: 0,
            photos: 0,
            ratings: 0,
            by_kind,
            server_cores: 1.0,
            generator_cores: 1.0,
            server_peak_rss_mib: 50.0,
            peak_in_flight: 10,
            ceiling_rps: 300.0,
            ceiling: Latencies::default(),
        }
    }

    #[test]
    fn met_needs_the_rate_as_well_as_the_latency() {
        // 333.3 offered, fast answers: met only when the syncs completed.
        assert!(report(2000, 6.0, 10_000, 20.0).province_met());
        assert!(!report(2000, 6.0, 9_000, 20.0).province_met(), "300/s");
        assert!(!report(2000, 6.0, 10_000, 1_500.0).province_met(), "slow");
        // The city: 6.67 offered over 30 s is 200 syncs.
        assert!(report(2000, 300.0, 198, 20.0).city_met());
        assert!(!report(2000, 300.0, 150, 20.0).city_met(), "5/s");
        assert!(!report(2000, 300.0, 200, 120.0).city_met(), "slow");
        let rows = LoadReport::markdown_rows(&[report(2000, 300.0, 150, 20.0)], None);
        assert!(rows.iter().any(|r| r.contains("NOT met")), "{rows:?}");
    }

    #[test]
    fn camera_photos_come_out_of_intake_at_200_to_400_kb() {
        let config = gridcase_core::photo::PhotoConfig::default();
        for seed in 0..3 {
            let photo = gridcase_core::photo::intake_bytes(&camera_photo(seed), &config)
                .expect("a camera photo passes intake");
            let kb = photo.jpeg.len() / 1024;
            eprintln!("seed {seed}: {}x{} {kb} KB", photo.width, photo.height);
            assert!((200..=400).contains(&kb), "{kb} KB");
        }
        assert_ne!(camera_photo(1), camera_photo(2), "every photo is new");
    }
}
