//! Sync through a misbehaving network. Four terminals (two grid leaders in
//! G01, two in G02) enrol and then record a seeded random stream of at least
//! 1,000 ops (cases created and edited, photos attached, some larger than an
//! upload chunk, drafts submitted or cancelled, resolved cases verified,
//! verified cases rated), each syncing through its own fault-injecting proxy,
//! while the centre dispatches, chases and resolves on the server (admin
//! commands). The proxies drop requests half-way (in the head or inside the
//! body, the terminal still sending), lose responses after the server
//! committed, cut responses mid-body (a pull page, a photo download),
//! stall briefly or past the terminal's request timeout, answer 503
//! themselves, and hold answers until the test abandons the sync; enrolment
//! meets faults too. Sync errors are expected. Then the faults stop, every
//! terminal syncs until it has nothing left, and:
//!
//! - every case's steps, in order, are what the test's own log says its
//!   terminal and the centre did (nothing lost, nothing doubled, nothing
//!   added), on the server and on the terminal that recorded them;
//! - every terminal holds exactly what the server shows its account: the same
//!   cases, in the same state, with the same ops in the same order, and every
//!   photo file with the right content; no op was refused;
//! - every photo file the server refers to is complete, with the right hash,
//!   and no partial upload is left; both sides' databases pass integrity_check;
//! - each kind of fault landed where it matters (a lost push answer, a drop
//!   inside an upload body, a cut pull page and photo download, a stall past
//!   the timeout, a fault during enrolment).
//!
//! Reproducible: each fault is drawn from (seed, terminal, that terminal's
//! request number), the terminals sync one after another in a seeded order,
//! their retry jitter is seeded, and the run never depends on a timer racing
//! a request (stalls past the timeout are well past it, and syncs are
//! abandoned at a request the proxy picked, not after a random time). On
//! failure the list of fates is written out; `GRIDCASE_FAULT_SEED=N` replays
//! it, and a test checks that two runs with one seed meet the same fates.
//!
//! `GRIDCASE_FAULT_SEED` (default fixed) and `GRIDCASE_FAULT_OPS` (default
//! 1,000) make bigger runs on demand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gridcase_core::case::{CaseEdit, CaseStatus, Face};
use gridcase_core::ids::{CaseId, OpId};
use gridcase_core::op::OpKind;
use gridcase_core::photo::sha256_hex;
use gridcase_core::TerminalConfig;
use gridcase_tests::device::{compare_with_server, integrity_check, point_in, SimDevice, G01, G02};
use gridcase_tests::fault_proxy::{Fate, Fault, FaultConfig, FaultProxy};
use gridcase_tests::sample_jpeg;
use gridcase_tests::server::{ListedCase, ServerProcess};

const DEFAULT_SEED: u64 = 0x6772_6964_6361_7365;
const DEFAULT_OPS: usize = 1_000;
/// Share of new cases with a photo (photos are the expensive part: intake,
/// upload, download by grid-mates).
const PHOTO_SHARE: f64 = 0.2;
/// Share of photos from a camera (200-400 KB: more than one upload chunk).
const CAMERA_SHARE: f64 = 0.3;
/// The terminals' request timeout, and the stall that outlasts it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const LONG_STALL_MS: u64 = 4_500;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16)
                    .ok()
                    .and_then(|n| n.to_string().parse().ok()),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

/// Seeds derived from the run's seed, one per use.
fn derive(seed: u64, what: u64) -> u64 {
    let mut z = seed ^ what.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Terminal {
    device: SimDevice,
    /// This terminal's own proxy: its faults follow its own requests.
    proxy: FaultProxy,
    grid: &'static str,
    /// Cases this terminal reported.
    mine: Vec<CaseId>,
}

#[derive(Default, Debug)]
struct Tally {
    ops: usize,
    cases: usize,
    photos: usize,
    camera_photos: usize,
    edits: usize,
    submits: usize,
    cancels: usize,
    verifies: usize,
    rates: usize,
    syncs: usize,
    sync_errors: usize,
    syncs_abandoned: usize,
    enrol_attempts: usize,
    admin_steps: usize,
}

/// The test's own log of what was done to each case, in order: the steps
/// its terminal recorded, and the centre's steps.
#[derive(Default, Debug)]
struct Log {
    terminal: BTreeMap<CaseId, Vec<&'static str>>,
    centre: BTreeMap<CaseId, Vec<&'static str>>,
}

impl Log {
    fn terminal(&mut self, case: CaseId, kind: &'static str) {
        self.terminal.entry(case).or_default().push(kind);
    }
}

/// What a run met, for the report and for comparing two runs.
struct Outcome {
    /// Per terminal, every request's fate in its order.
    fates: Vec<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_doubled_when_the_network_misbehaves() -> Result<()> {
    let seed: u64 = env_or("GRIDCASE_FAULT_SEED", DEFAULT_SEED);
    let target_ops: usize = env_or("GRIDCASE_FAULT_OPS", DEFAULT_OPS);
    eprintln!("seed {seed:#x}, {target_ops} ops (GRIDCASE_FAULT_SEED, GRIDCASE_FAULT_OPS)");
    let started = Instant::now();
    let outcome = run_once(seed, target_ops, true).await?;
    eprintln!(
        "sync under faults: {:.1} s, {} requests",
        started.elapsed().as_secs_f64(),
        outcome.fates.iter().map(Vec::len).sum::<usize>()
    );
    Ok(())
}

/// The same seed twice, a short run each: the same fates, request by request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_seed_replays_the_same_fates() -> Result<()> {
    let seed: u64 = env_or("GRIDCASE_FAULT_SEED", DEFAULT_SEED) ^ 0x5eed;
    let first = run_once(seed, 120, false).await?;
    let second = run_once(seed, 120, false).await?;
    for (t, (a, b)) in first.fates.iter().zip(&second.fates).enumerate() {
        if a != b {
            let at = a
                .iter()
                .zip(b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            bail!(
                "terminal {t}: the runs part at request {at}:\n  first:  {:?}\n  second: {:?}",
                &a[at.saturating_sub(3)..(at + 3).min(a.len())],
                &b[at.saturating_sub(3)..(at + 3).min(b.len())]
            );
        }
    }
    let requests: usize = first.fates.iter().map(Vec::len).sum();
    ensure!(requests > 100, "only {requests} requests");
    Ok(())
}

/// A whole run on a fresh server; on failure, the fates are written out.
async fn run_once(seed: u64, target_ops: usize, full_checks: bool) -> Result<Outcome> {
    let server = Arc::new(ServerProcess::start()?);
    let mut terminals = Vec::new();
    let fates_of = |terminals: &[Terminal]| -> Vec<Vec<String>> {
        terminals.iter().map(|t| t.proxy.stats().fates()).collect()
    };
    let result = run(&server, seed, target_ops, full_checks, &mut terminals).await;
    let fates = fates_of(&terminals);
    if let Err(e) = &result {
        eprintln!("server log (tail):\n{}", server.log_tail());
        let path = std::env::temp_dir().join(format!("gridcase-fault-fates-{seed:#x}.txt"));
        let mut text = String::new();
        for (i, f) in fates.iter().enumerate() {
            text += &format!("# terminal {i}\n{}\n", f.join("\n"));
        }
        let _ = std::fs::write(&path, text);
        eprintln!(
            "failed with seed {seed:#x}: {e:#}\nevery request's fate is in {} (replay: GRIDCASE_FAULT_SEED={seed:#x})",
            path.display()
        );
    }
    result?;
    Ok(Outcome { fates })
}

async fn run(
    server: &Arc<ServerProcess>,
    seed: u64,
    target_ops: usize,
    full_checks: bool,
    terminals: &mut Vec<Terminal>,
) -> Result<()> {
    let config = FaultConfig {
        drop_mid_request: 0.07,
        lose_response: 0.07,
        cut_response: 0.05,
        stall: 0.05,
        stall_past_timeout: 0.002,
        answer_503: 0.04,
        abandon: 0.02,
        stall_ms: (20, 250),
        long_stall_ms: LONG_STALL_MS,
    };
    let mut tally = Tally::default();
    for (i, grid) in [G01, G01, G02, G02].into_iter().enumerate() {
        let name = format!(
            "terminal-{}{}",
            if grid == G01 { "g1" } else { "g2" },
            i % 2
        );
        let leader = server.create_leader(&name, &[grid])?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("gridcase-{name}-"))
            .tempdir()?;
        let mut tc = TerminalConfig::new(name.as_str());
        tc.sync_seed = Some(derive(seed, 100 + i as u64));
        tc.request_timeout = REQUEST_TIMEOUT;
        let device = SimDevice::open_with(dir, &name, tc)?;
        let proxy = FaultProxy::start(server.addr, derive(seed, i as u64)).await?;
        proxy.set_config(config.clone());
        proxy.set_faults(true);
        // Enrolment meets faults too: the first try of each terminal meets
        // one for certain (a different one each), then the seeded ones.
        let first = [
            Fault::LoseResponse,
            Fault::DropMidRequest,
            Fault::Answer503,
            Fault::CutResponse,
        ][i];
        proxy.fail_next("/v1/enrol", first, 1);
        proxy.fail_next("/v1/grids", Fault::CutResponse, 1);
        let mut enrolled = false;
        for _ in 0..20 {
            tally.enrol_attempts += 1;
            if device.enrol(&proxy.url, &leader.code).await.is_ok() {
                enrolled = true;
                break;
            }
        }
        ensure!(enrolled, "{name} could not enrol through the faults");
        terminals.push(Terminal {
            device,
            proxy,
            grid,
            mine: Vec::new(),
        });
    }

    let mut rng = fastrand::Rng::with_seed(seed);
    let mut admin_rng = fastrand::Rng::with_seed(seed ^ 0xadd1);
    let mut log = Log::default();
    let mut round = 0u64;
    let mut next_report = 10u64;
    while tally.ops < target_ops {
        round += 1;
        for t in terminals.iter_mut() {
            for _ in 0..rng.usize(2..=8) {
                act(t, &mut rng, &mut tally, &mut log).await?;
            }
        }
        // The terminals sync one after another in a seeded order, and the
        // centre works at a seeded place in that order.
        let mut order: Vec<usize> = (0..terminals.len()).collect();
        rng.shuffle(&mut order);
        let centre_at = rng.usize(0..=order.len());
        for (k, &i) in order.iter().enumerate() {
            if k == centre_at {
                tally.admin_steps += centre_works(server, &mut admin_rng, &mut log).await?;
            }
            let t = &terminals[i];
            t.proxy.clear_abandoned().await;
            tally.syncs += 1;
            tokio::select! {
                r = t.device.sync() => if r.is_err() { tally.sync_errors += 1 },
                _ = t.proxy.abandoned() => tally.syncs_abandoned += 1,
            }
        }
        if centre_at == order.len() {
            tally.admin_steps += centre_works(server, &mut admin_rng, &mut log).await?;
        }
        if round == next_report {
            next_report += 10;
            eprintln!(
                "round {round}: {} ops, {} syncs ({} failed, {} abandoned)",
                tally.ops, tally.syncs, tally.sync_errors, tally.syncs_abandoned,
            );
        }
    }
    let mut faulty = gridcase_tests::fault_proxy::ProxyStats::default();
    for t in terminals.iter() {
        let s = t.proxy.stats();
        faulty.connections += s.connections;
        faulty.exchanges.extend(s.exchanges);
    }
    eprintln!("with faults: {tally:?}\nproxies: {}", faulty.summary());
    if full_checks {
        eprintln!("by endpoint and fate: {:?}", faulty.by_endpoint());
        // Each kind of fault landed where it matters.
        let landed = [
            (
                "a lost push answer",
                faulty.count_at("push", Fate::LostResponse),
            ),
            (
                "a drop inside an upload body",
                faulty
                    .exchanges
                    .iter()
                    .filter(|e| e.endpoint == "upload" && e.dropped_inside_body())
                    .count() as u64,
            ),
            (
                "a pull page cut mid-body",
                faulty.count_at("pull", Fate::CutResponse),
            ),
            (
                "a photo download cut mid-body",
                faulty.count_at("download", Fate::CutResponse),
            ),
            (
                "a stall past the timeout",
                faulty.count(Fate::StalledPastTimeout),
            ),
            ("an abandoned sync", faulty.count(Fate::Abandoned)),
            ("a 503", faulty.count(Fate::Answered503)),
            (
                "a fault during enrolment",
                faulty
                    .exchanges
                    .iter()
                    .filter(|e| e.endpoint == "enrol" && e.fate != Fate::Relayed)
                    .count() as u64,
            ),
        ];
        let missing: Vec<&str> = landed
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(w, _)| *w)
            .collect();
        ensure!(missing.is_empty(), "faults that never landed: {missing:?}");
        ensure!(
            tally.camera_photos > 0,
            "no photo larger than an upload chunk"
        );
    }

    // The network heals: everyone syncs until a whole round has nothing to do.
    for t in terminals.iter() {
        t.proxy.set_faults(false);
    }
    let settle_started = Instant::now();
    let mut settled = false;
    for _ in 0..20 {
        let mut idle = true;
        for t in terminals.iter() {
            let r = t
                .device
                .sync()
                .await
                .with_context(|| format!("{} syncing with faults off", t.device.name))?;
            let downloads = t.device.terminal.store().photo_downloads()?.len();
            idle &= r.ops_pushed == 0 && r.ops_pulled == 0 && r.ops_waiting == 0 && downloads == 0;
        }
        if idle {
            settled = true;
            break;
        }
    }
    ensure!(settled, "the terminals did not settle in 20 rounds");
    eprintln!("settled in {:.1} s", settle_started.elapsed().as_secs_f64());

    check(server, terminals, &tally, &log)
}

/// The centre's work this round, decided on the server's list and logged.
async fn centre_works(
    server: &Arc<ServerProcess>,
    rng: &mut fastrand::Rng,
    log: &mut Log,
) -> Result<usize> {
    let listed = {
        let s = server.clone();
        tokio::task::spawn_blocking(move || s.list_cases()).await??
    };
    let steps = admin_plan(&listed, rng);
    for (case, step, status) in &steps {
        let entry = log.centre.entry(*case).or_default();
        match *step {
            "dispatch" => entry.push("dispatch"),
            "chase" => entry.push("chase"),
            _ => {
                // The department accepts first unless it already had.
                if status != "in_progress" {
                    entry.push("accept");
                }
                entry.push("resolve");
            }
        }
    }
    let s = server.clone();
    let n = steps.len();
    tokio::task::spawn_blocking(move || -> Result<()> {
        for (case, step, _) in &steps {
            match *step {
                "dispatch" => s.dispatch(case, "市政管理处", 48)?,
                "chase" => s.chase(case, "请尽快处理")?,
                _ => s.resolve(case, "已处理完毕")?,
            }
        }
        Ok(())
    })
    .await??;
    Ok(n)
}

/// One random action a grid leader can take on their terminal now, weighted.
async fn act(
    t: &mut Terminal,
    rng: &mut fastrand::Rng,
    tally: &mut Tally,
    log: &mut Log,
) -> Result<()> {
    let d = &t.device;
    let mut by_status: HashMap<CaseStatus, Vec<CaseId>> = HashMap::new();
    let mut alive = Vec::new();
    for id in &t.mine {
        let case = d.terminal.store().case(id)?.context("a case I recorded")?;
        by_status.entry(case.status).or_default().push(*id);
        if !case.status.is_final() {
            alive.push(*id);
        }
    }
    let some = |s: CaseStatus| {
        by_status
            .get(&s)
            .map_or(0.0, |v| !v.is_empty() as u8 as f64)
    };
    let has_draft = some(CaseStatus::Draft);
    let choices = [
        ("create", 3.0),
        ("submit", 3.0 * has_draft),
        ("edit", 1.5 * has_draft),
        ("cancel", 0.15 * has_draft),
        ("verify", 4.0 * some(CaseStatus::Resolved)),
        ("rate", 4.0 * some(CaseStatus::Verified)),
        ("photo", 0.3 * (!alive.is_empty()) as u8 as f64),
    ];
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let mut r = rng.f64() * total;
    let mut action = "create";
    for (name, w) in choices {
        if r < w {
            action = name;
            break;
        }
        r -= w;
    }
    let mut pick = |s: CaseStatus| {
        let v = &by_status[&s];
        v[rng.usize(..v.len())]
    };
    match action {
        "submit" => {
            let id = pick(CaseStatus::Draft);
            d.terminal.submit_case(&id)?;
            log.terminal(id, "submit");
            tally.submits += 1;
        }
        "edit" => {
            let id = pick(CaseStatus::Draft);
            let edit = CaseEdit {
                description: Some(format!("补充说明 {}", rng.u32(..))),
                ..Default::default()
            };
            d.terminal.edit_case(&id, edit)?;
            log.terminal(id, "edit");
            tally.edits += 1;
        }
        "cancel" => {
            let id = pick(CaseStatus::Draft);
            d.terminal.cancel_case(&id, "重复上报")?;
            log.terminal(id, "cancel");
            tally.cancels += 1;
        }
        "verify" => {
            let id = pick(CaseStatus::Resolved);
            let done = rng.f64() < 0.85;
            d.terminal
                .verify_case(&id, done, "现场核查", vec![], None)?;
            log.terminal(id, "verify");
            tally.verifies += 1;
        }
        "rate" => {
            let id = pick(CaseStatus::Verified);
            let face = if rng.f64() < 0.85 {
                Face::Smiley
            } else {
                Face::Frowny
            };
            d.terminal.rate_case(&id, face, "居民评价")?;
            log.terminal(id, "rate");
            tally.rates += 1;
        }
        "photo" => {
            // A follow-up photo on a case still alive.
            let id = alive[rng.usize(..alive.len())];
            return add_photo(d, &id, rng, tally, log).await;
        }
        _ => {
            let n = t.mine.len() as u64 + 1000 * (t.grid == G02) as u64;
            let case = d.new_case(&format!("{} 的第{n}件事", d.name), point_in(t.grid, n))?;
            t.mine.push(case.id);
            log.terminal(case.id, "create");
            tally.cases += 1;
            tally.ops += 1;
            if rng.f64() < PHOTO_SHARE {
                add_photo(d, &case.id, rng, tally, log).await?;
            }
            return Ok(());
        }
    }
    tally.ops += 1;
    Ok(())
}

async fn add_photo(
    d: &SimDevice,
    id: &CaseId,
    rng: &mut fastrand::Rng,
    tally: &mut Tally,
    log: &mut Log,
) -> Result<()> {
    let jpeg = if rng.f64() < CAMERA_SHARE {
        tally.camera_photos += 1;
        gridcase_tests::load::camera_photo(rng.u64(..))
    } else {
        sample_jpeg(rng.u32(320..=560), rng.u32(240..=420), rng.u32(..))
    };
    d.add_photo(id, jpeg).await?;
    log.terminal(*id, "attach_photo");
    tally.photos += 1;
    tally.ops += 1;
    Ok(())
}

/// The centre's work this round, decided on the server's list: (case,
/// step, the case's status when it was decided).
fn admin_plan(
    listed: &[ListedCase],
    rng: &mut fastrand::Rng,
) -> Vec<(CaseId, &'static str, String)> {
    let mut steps = Vec::new();
    // The server lists in its own order; decide in a fixed one.
    let mut listed: Vec<&ListedCase> = listed.iter().collect();
    listed.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    for c in listed {
        let Ok(id) = CaseId::parse(&c.case_id) else {
            continue;
        };
        let status = c.status.clone();
        match c.status.as_str() {
            "received" if rng.f64() < 0.6 => steps.push((id, "dispatch", status)),
            "dispatched" | "in_progress" => {
                if rng.f64() < 0.15 {
                    steps.push((id, "chase", status.clone()));
                }
                if rng.f64() < 0.5 {
                    steps.push((id, "resolve", status));
                }
            }
            "reopened" if rng.f64() < 0.6 => steps.push((id, "resolve", status)),
            _ => {}
        }
    }
    // Bound the admin processes per round.
    steps.truncate(16);
    steps
}

fn check(server: &ServerProcess, terminals: &[Terminal], tally: &Tally, log: &Log) -> Result<()> {
    let snap = server.snapshot()?;
    let mut problems = Vec::new();

    // Each terminal against the server.
    for t in terminals {
        match compare_with_server(&t.device, &snap)? {
            Ok(n) => {
                eprintln!(
                    "{}: {} cases, {} ops, {} photo files match the server",
                    t.device.name, n.cases, n.ops, n.photos
                );
                if n.rejected > 0 {
                    problems.push(format!("{}: {} ops refused", t.device.name, n.rejected));
                }
            }
            Err(diffs) => problems.extend(diffs),
        }
    }

    // Each case, step by step, against the test's own log: the terminal that
    // recorded it holds exactly its logged steps in order; the server holds
    // those same ops (by id, in that order), the centre's logged steps in
    // order, a receive right after each submit, and nothing else.
    let mut terminal_ops: BTreeMap<CaseId, Vec<(OpId, &'static str)>> = BTreeMap::new();
    for t in terminals {
        for (id, c) in t.device.view()?.cases {
            let mine: Vec<(OpId, &'static str)> = c
                .ops
                .iter()
                .filter(|o| o.origin == "local")
                .map(|o| (o.op.id, o.op.kind.code()))
                .collect();
            if !mine.is_empty() && terminal_ops.insert(id, mine).is_some() {
                problems.push(format!("case {id}: steps recorded on two terminals"));
            }
        }
    }
    let logged_ops: usize = log.terminal.values().map(Vec::len).sum();
    if logged_ops != tally.ops {
        problems.push(format!(
            "the log holds {logged_ops} steps, the tally {}",
            tally.ops
        ));
    }
    let cases: BTreeSet<CaseId> = log
        .terminal
        .keys()
        .chain(snap.cases.keys())
        .chain(terminal_ops.keys())
        .copied()
        .collect();
    for id in &cases {
        let logged = log.terminal.get(id).cloned().unwrap_or_default();
        let held = terminal_ops.get(id).cloned().unwrap_or_default();
        let held_kinds: Vec<&str> = held.iter().map(|(_, k)| *k).collect();
        if held_kinds != logged {
            problems.push(format!(
                "case {id}: its terminal holds {held_kinds:?}, the test did {logged:?}"
            ));
        }
        let ops = snap.ops_of(id);
        let from_devices: Vec<OpId> = ops
            .iter()
            .filter(|o| o.device_id.is_some())
            .map(|o| o.op.id)
            .collect();
        let held_ids: Vec<OpId> = held.iter().map(|(op, _)| *op).collect();
        if from_devices != held_ids {
            problems.push(format!(
                "case {id}: the server holds {} device steps {:?}, the terminal {held_kinds:?}",
                from_devices.len(),
                ops.iter()
                    .filter(|o| o.device_id.is_some())
                    .map(|o| o.op.kind.code())
                    .collect::<Vec<_>>()
            ));
        }
        let centre: Vec<&str> = ops
            .iter()
            .filter(|o| o.device_id.is_none() && o.op.kind.code() != "receive")
            .map(|o| o.op.kind.code())
            .collect();
        let logged_centre = log.centre.get(id).cloned().unwrap_or_default();
        if centre != logged_centre {
            problems.push(format!(
                "case {id}: the server holds the centre's {centre:?}, the test did {logged_centre:?}"
            ));
        }
        let kinds: Vec<&str> = ops.iter().map(|o| o.op.kind.code()).collect();
        let receives_follow_submits = kinds.iter().enumerate().all(|(i, k)| match *k {
            "submit" => kinds.get(i + 1) == Some(&"receive"),
            "receive" => i > 0 && kinds[i - 1] == "submit",
            _ => true,
        });
        if !receives_follow_submits {
            problems.push(format!(
                "case {id}: receives and submits do not pair: {kinds:?}"
            ));
        }
    }
    for o in snap.ops.iter().filter(|o| o.device_id.is_some()) {
        match snap.outcomes.get(&o.op.id.to_string()) {
            Some((dev, status, _)) if Some(dev) == o.device_id.as_ref() && status == "accepted" => {
            }
            other => problems.push(format!("op {}: push outcome {other:?}", o.op.id)),
        }
    }
    let rejected = snap
        .outcomes
        .values()
        .filter(|(_, s, _)| s != "accepted")
        .count();
    if rejected > 0 {
        problems.push(format!("the server refused {rejected} ops"));
    }

    // Cases: each once, with a sane history.
    let reported: BTreeSet<CaseId> = terminals
        .iter()
        .flat_map(|t| t.mine.iter().copied())
        .collect();
    let on_server_cases: BTreeSet<CaseId> = snap.cases.keys().copied().collect();
    if reported != on_server_cases || reported.len() != tally.cases {
        problems.push(format!(
            "{} cases recorded ({} counted), {} on the server",
            reported.len(),
            tally.cases,
            on_server_cases.len()
        ));
    }
    let mut photo_files = BTreeSet::new();
    for (id, c) in &snap.cases {
        let ops = snap.ops_of(id);
        let photo_ops: Vec<_> = ops
            .iter()
            .filter_map(|o| match &o.op.kind {
                OpKind::AttachPhoto { photo, .. } => Some(photo.clone()),
                _ => None,
            })
            .collect();
        let ids: BTreeSet<_> = photo_ops.iter().map(|p| p.id).collect();
        if ids.len() != photo_ops.len() || c.state.photo_ids.len() != photo_ops.len() {
            problems.push(format!(
                "case {id}: {} photo ops, {} distinct, {} in the case",
                photo_ops.len(),
                ids.len(),
                c.state.photo_ids.len()
            ));
        }
        for p in photo_ops {
            photo_files.insert((p.sha256, p.bytes));
            photo_files.insert((p.thumb_sha256, p.thumb_bytes));
        }
    }
    for (sha, bytes) in &photo_files {
        match server.photo_file(sha) {
            None => problems.push(format!("server: photo file {sha} missing")),
            Some(path) => {
                let data = std::fs::read(&path)?;
                if data.len() as u64 != *bytes || sha256_hex(&data) != *sha {
                    problems.push(format!("server: photo file {sha} is wrong"));
                }
            }
        }
    }
    let partial = server.partial_uploads();
    if !partial.is_empty() {
        problems.push(format!("server: partial uploads left: {partial:?}"));
    }
    let listed = server.list_cases()?;
    for l in &listed {
        let id = CaseId::parse(&l.case_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        match snap.cases.get(&id) {
            Some(c) if c.status == l.status => {}
            other => problems.push(format!(
                "list-cases says {} is {}, the database {:?}",
                l.case_id,
                l.status,
                other.map(|c| &c.status)
            )),
        }
    }
    for db in std::iter::once(server.db_path()).chain(terminals.iter().map(|t| t.device.db_path()))
    {
        let ok = integrity_check(&db)?;
        if ok != "ok" {
            problems.push(format!("{}: integrity_check: {ok}", db.display()));
        }
    }

    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &listed {
        *statuses.entry(l.status.as_str()).or_default() += 1;
    }
    eprintln!(
        "server: {} cases {statuses:?}, {} ops, {} photo files",
        snap.cases.len(),
        snap.ops.len(),
        photo_files.len()
    );
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(40);
        bail!("{n} problems:\n{}", problems.join("\n"));
    }
    Ok(())
}
