//! Sync through a misbehaving network. Four terminals (two grid leaders in
//! G01, two in G02) record a seeded random stream of at least 1,000 ops
//! (cases created and edited, photos attached, drafts submitted or cancelled,
//! resolved cases verified, verified cases rated), syncing through the
//! fault-injecting proxy, while the centre dispatches, chases and resolves on
//! the server (admin commands, concurrently with the syncs). The proxy drops
//! requests half-way, loses responses after the server committed, stalls, and
//! answers 503 itself; sync errors are expected. Then the faults stop, every
//! terminal syncs until it has nothing left, and:
//!
//! - every terminal holds exactly what the server shows its account: the same
//!   cases, in the same state, with the same ops in the same order, and every
//!   photo file with the right content;
//! - every op any terminal recorded is on the server exactly once, and the
//!   server has no device op that no terminal recorded; no op was refused;
//! - every case is on the server once, with one create, at most one submit
//!   and as many receives as submits, and as many photos as photo ops;
//! - every photo file the server refers to is complete, with the right hash,
//!   and no partial upload is left; both sides' databases pass integrity_check.
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
use gridcase_tests::device::{compare_with_server, integrity_check, point_in, SimDevice, G01, G02};
use gridcase_tests::fault_proxy::{FaultConfig, FaultProxy};
use gridcase_tests::sample_jpeg;
use gridcase_tests::server::{ListedCase, ServerProcess};

const DEFAULT_SEED: u64 = 0x6772_6964_6361_7365;
const DEFAULT_OPS: usize = 1_000;
/// Share of new cases with a photo (photos are the expensive part: intake,
/// upload, download by grid-mates).
const PHOTO_SHARE: f64 = 0.2;
/// Share of syncs the app abandons after a short random time (the future is
/// dropped, as when the grid leader leaves the screen).
const ABANDON_SHARE: f64 = 0.1;

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

struct Terminal {
    device: SimDevice,
    grid: &'static str,
    /// Cases this terminal reported.
    mine: Vec<CaseId>,
}

#[derive(Default, Debug)]
struct Tally {
    ops: usize,
    cases: usize,
    photos: usize,
    edits: usize,
    submits: usize,
    cancels: usize,
    verifies: usize,
    rates: usize,
    syncs: usize,
    sync_errors: usize,
    syncs_abandoned: usize,
    admin_steps: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_doubled_when_the_network_misbehaves() -> Result<()> {
    let seed: u64 = env_or("GRIDCASE_FAULT_SEED", DEFAULT_SEED);
    let target_ops: usize = env_or("GRIDCASE_FAULT_OPS", DEFAULT_OPS);
    eprintln!("seed {seed:#x}, {target_ops} ops (GRIDCASE_FAULT_SEED, GRIDCASE_FAULT_OPS)");
    let started = Instant::now();
    let server = Arc::new(ServerProcess::start()?);
    let result = run(&server, seed, target_ops).await;
    if result.is_err() {
        eprintln!("server log (tail):\n{}", server.log_tail());
    }
    result?;
    eprintln!(
        "sync under faults: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(server: &Arc<ServerProcess>, seed: u64, target_ops: usize) -> Result<()> {
    let proxy = FaultProxy::start(server.addr, seed).await?;
    proxy.set_config(FaultConfig::default());
    let mut terminals = Vec::new();
    for (i, grid) in [G01, G01, G02, G02].into_iter().enumerate() {
        let name = format!(
            "terminal-{}{}",
            if grid == G01 { "g1" } else { "g2" },
            i % 2
        );
        let leader = server.create_leader(&name, &[grid])?;
        let device = SimDevice::open(&name)?;
        // Enrolment is not retried by the terminal: do it with faults off.
        device.enrol(&proxy.url, &leader.code).await?;
        terminals.push(Terminal {
            device,
            grid,
            mine: Vec::new(),
        });
    }
    proxy.set_faults(true);

    let mut rng = fastrand::Rng::with_seed(seed);
    let mut admin_rng = fastrand::Rng::with_seed(seed ^ 0xadd1);
    let mut tally = Tally::default();
    let mut round = 0u64;
    let mut next_report = 10u64;
    while tally.ops < target_ops {
        round += 1;
        for t in terminals.iter_mut() {
            for _ in 0..rng.usize(2..=8) {
                act(t, &mut rng, &mut tally).await?;
            }
        }
        // The terminals sync (through the faults) while the centre works.
        let listed = {
            let s = server.clone();
            tokio::task::spawn_blocking(move || s.list_cases()).await??
        };
        let steps = admin_plan(&listed, &mut admin_rng);
        let admin = {
            let s = server.clone();
            tokio::task::spawn_blocking(move || -> Result<usize> {
                for (case, step) in &steps {
                    match *step {
                        "dispatch" => s.dispatch(case, "市政管理处", 48)?,
                        "chase" => s.chase(case, "请尽快处理")?,
                        _ => s.resolve(case, "已处理完毕")?,
                    }
                }
                Ok(steps.len())
            })
        };
        let limits: Vec<Option<Duration>> = terminals
            .iter()
            .map(|_| (rng.f64() < ABANDON_SHARE).then(|| Duration::from_millis(rng.u64(1..120))))
            .collect();
        let syncs = join_all(terminals.iter().zip(&limits).map(|(t, limit)| async move {
            match limit {
                Some(limit) => tokio::time::timeout(*limit, t.device.sync())
                    .await
                    .map_err(|_| "abandoned".to_string())?
                    .map_err(|e| e.to_string()),
                None => t.device.sync().await.map_err(|e| e.to_string()),
            }
        }))
        .await;
        for r in syncs {
            tally.syncs += 1;
            match r {
                Ok(_) => {}
                Err(e) if e == "abandoned" => tally.syncs_abandoned += 1,
                Err(_) => tally.sync_errors += 1,
            }
        }
        tally.admin_steps += admin.await??;
        if round == next_report {
            next_report += 10;
            eprintln!(
                "round {round}: {} ops, {} syncs ({} failed, {} abandoned), {}",
                tally.ops,
                tally.syncs,
                tally.sync_errors,
                tally.syncs_abandoned,
                proxy.stats().summary()
            );
        }
    }
    let faulty = proxy.stats();
    eprintln!("with faults: {tally:?}\nproxy: {}", faulty.summary());
    ensure!(
        faulty.count(gridcase_tests::fault_proxy::Fate::LostResponse) > 0
            && faulty.count(gridcase_tests::fault_proxy::Fate::DroppedMidRequest) > 0
            && faulty.count(gridcase_tests::fault_proxy::Fate::Answered503) > 0
            && faulty.stalls() > 0,
        "every kind of fault happened"
    );

    // The network heals: everyone syncs until a whole round has nothing to do.
    proxy.set_faults(false);
    let settle_started = Instant::now();
    let mut settled = false;
    for _ in 0..20 {
        let mut idle = true;
        for t in &terminals {
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

    check(server, &terminals, &tally)
}

/// One random action a grid leader can take on their terminal now, weighted.
async fn act(t: &mut Terminal, rng: &mut fastrand::Rng, tally: &mut Tally) -> Result<()> {
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
            d.terminal.submit_case(&pick(CaseStatus::Draft))?;
            tally.submits += 1;
        }
        "edit" => {
            let id = pick(CaseStatus::Draft);
            let edit = CaseEdit {
                description: Some(format!("补充说明 {}", rng.u32(..))),
                ..Default::default()
            };
            d.terminal.edit_case(&id, edit)?;
            tally.edits += 1;
        }
        "cancel" => {
            d.terminal
                .cancel_case(&pick(CaseStatus::Draft), "重复上报")?;
            tally.cancels += 1;
        }
        "verify" => {
            let id = pick(CaseStatus::Resolved);
            let done = rng.f64() < 0.85;
            d.terminal
                .verify_case(&id, done, "现场核查", vec![], None)?;
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
            tally.rates += 1;
        }
        "photo" => {
            // A follow-up photo on a case still alive.
            let id = alive[rng.usize(..alive.len())];
            return add_photo(d, &id, rng, tally).await;
        }
        _ => {
            let n = t.mine.len() as u64 + 1000 * (t.grid == G02) as u64;
            let case = d.new_case(&format!("{} 的第{n}件事", d.name), point_in(t.grid, n))?;
            t.mine.push(case.id);
            tally.cases += 1;
            tally.ops += 1;
            if rng.f64() < PHOTO_SHARE {
                add_photo(d, &case.id, rng, tally).await?;
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
) -> Result<()> {
    let jpeg = sample_jpeg(rng.u32(320..=560), rng.u32(240..=420), rng.u32(..));
    d.add_photo(id, jpeg).await?;
    tally.photos += 1;
    tally.ops += 1;
    Ok(())
}

/// The centre's work this round, decided on the server's list.
fn admin_plan(listed: &[ListedCase], rng: &mut fastrand::Rng) -> Vec<(CaseId, &'static str)> {
    let mut steps = Vec::new();
    for c in listed {
        let Ok(id) = CaseId::parse(&c.case_id) else {
            continue;
        };
        match c.status.as_str() {
            "received" if rng.f64() < 0.6 => steps.push((id, "dispatch")),
            "dispatched" | "in_progress" => {
                if rng.f64() < 0.15 {
                    steps.push((id, "chase"));
                }
                if rng.f64() < 0.5 {
                    steps.push((id, "resolve"));
                }
            }
            "reopened" if rng.f64() < 0.6 => steps.push((id, "resolve")),
            _ => {}
        }
    }
    // Bound the admin processes per round.
    steps.truncate(16);
    steps
}

/// Runs the futures concurrently (on this task) and returns their outputs in order.
async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, res) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *res = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter()
        .map(|r| r.expect("every future finished"))
        .collect()
}

fn check(server: &ServerProcess, terminals: &[Terminal], tally: &Tally) -> Result<()> {
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

    // Every op recorded on a terminal is on the server exactly once, and the
    // server holds no device op that no terminal recorded.
    let mut recorded: BTreeMap<OpId, String> = BTreeMap::new();
    for t in terminals {
        for (_, c) in t.device.view()?.cases {
            for o in c.ops.iter().filter(|o| o.origin == "local") {
                if recorded.insert(o.op.id, t.device.name.clone()).is_some() {
                    problems.push(format!("op {} recorded twice", o.op.id));
                }
            }
        }
    }
    if recorded.len() != tally.ops {
        problems.push(format!(
            "the terminals hold {} ops of their own, the test recorded {}",
            recorded.len(),
            tally.ops
        ));
    }
    let mut on_server: BTreeMap<OpId, usize> = BTreeMap::new();
    for o in &snap.ops {
        *on_server.entry(o.op.id).or_default() += 1;
    }
    for (id, n) in &on_server {
        if *n != 1 {
            problems.push(format!("op {id} is on the server {n} times"));
        }
    }
    for (id, who) in &recorded {
        if !on_server.contains_key(id) {
            problems.push(format!("op {id} recorded on {who} is not on the server"));
        }
    }
    for o in snap.ops.iter().filter(|o| o.device_id.is_some()) {
        if !recorded.contains_key(&o.op.id) {
            problems.push(format!(
                "the server has device op {} no terminal recorded",
                o.op.id
            ));
        }
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
        let count = |name: &str| ops.iter().filter(|o| o.op.kind.name() == name).count();
        if count("create") != 1 || count("submit") > 1 || count("receive") != count("submit") {
            problems.push(format!(
                "case {id}: {} creates, {} submits, {} receives",
                count("create"),
                count("submit"),
                count("receive")
            ));
        }
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
