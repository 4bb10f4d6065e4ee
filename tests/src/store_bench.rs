//! Local store benchmark: the cost of recording a case through the store
//! against a bare rusqlite insert of the same rows, and the grid leader's list
//! queries on a terminal holding 100,000 cases.

use std::time::{Duration, Instant};

use anyhow::Result;
use gridcase_core::case::{CaseDraft, CaseStatus, Category};
use gridcase_core::ids::{CaseId, OpId, PhotoId};
use gridcase_core::op::{Actor, Op, OpKind, PhotoRef, Role};
use gridcase_core::store::{CaseOrder, CaseQuery, PhotoRow, Store};
use gridcase_core::time::{now_millis, DAY, HOUR};
use gridcase_core::{Case, GeoPoint, Location};

pub struct StoreBenchReport {
    /// Medians over interleaved rounds of one write each way.
    pub record_store: Duration,
    pub record_bare: Duration,
    pub rounds: usize,
    /// The filesystem the databases were on (tmpfs makes fsync free).
    pub filesystem: String,
    pub cases: usize,
    pub queries: Vec<(String, Duration, usize)>,
}

impl StoreBenchReport {
    pub fn markdown_rows(&self) -> Vec<String> {
        let mut rows = vec![format!(
            "| store: record a case + 3 photo rows + op (one transaction, synchronous=FULL, on {}; median of {} interleaved rounds) | {:.3} ms | bare rusqlite, same rows and pragmas: {:.3} ms | {:.2}× |",
            self.filesystem,
            self.rounds,
            ms(self.record_store),
            ms(self.record_bare),
            self.record_store.as_secs_f64() / self.record_bare.as_secs_f64()
        )];
        for (name, t, n) in &self.queries {
            rows.push(format!(
                "| store: {name} at {} cases ({n} rows) | {:.2} ms | | |",
                self.cases,
                ms(*t)
            ));
        }
        rows
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

const TITLES: &[&str] = &[
    "暴雨后下水井塌陷",
    "三楼卫生间漏水到二楼",
    "楼道堆放杂物堵塞通道",
    "拖欠农民工工资",
    "邻里噪音纠纷",
    "教培机构拒不退费",
    "路灯损坏夜间无照明",
];

fn leader() -> Actor {
    Actor {
        role: Role::GridLeader,
        id: "bench-leader".into(),
    }
}

fn create_op(i: usize, now: i64) -> Op {
    let case_id = CaseId::new();
    let draft = CaseDraft {
        category: Category::ALL[i % Category::ALL.len()],
        title: format!("{} {i}", TITLES[i % TITLES.len()]),
        description: format!("第{i}号事件，居民反映情况，需要尽快处理。"),
        location: Some(Location {
            point: GeoPoint {
                lat: 42.8 + (i % 100) as f64 * 0.001,
                lon: 125.1 + (i / 100 % 100) as f64 * 0.001,
                accuracy_m: Some(5.0),
            },
            address: Some(format!("龙山区福民街{}号", i % 500)),
            source: gridcase_core::location::LocationSource::Typed,
        }),
        occurred_at: now - HOUR,
        proposed_deadline: (!i.is_multiple_of(10)).then_some(now + ((i % 90) as i64 + 1) * DAY / 3),
    };
    Op {
        id: OpId::new(),
        case_id,
        actor: leader(),
        device_time: now - (100_000 - i as i64) * 1000,
        at: None,
        recorded_before_enrolment_as: None,
        kind: OpKind::Create { draft },
    }
}

fn photo(i: usize) -> PhotoRef {
    PhotoRef {
        id: PhotoId::new(),
        sha256: format!("{:064x}", i * 2 + 1),
        bytes: 300_000,
        width: 1920,
        height: 1440,
        thumb_sha256: format!("{:064x}", i * 2 + 2),
        thumb_bytes: 20_000,
        captured_at: None,
        captured_at_point: None,
    }
}

fn grid_of(case: &Case) -> Option<String> {
    case.location
        .as_ref()
        .map(|l| format!("grid-{}", ((l.point.lat - 42.8) * 1000.0) as i64 % 20))
}

/// Records cases `from..from + n` with three photo rows each through the
/// store, one transaction per case as the terminal does; the mean per case.
fn record_through_store(store: &Store, from: usize, n: usize, now: i64) -> Result<Duration> {
    let start = Instant::now();
    for i in from..from + n {
        let op = create_op(i, now);
        let rows: Vec<PhotoRow> = (0..3)
            .map(|k| PhotoRow {
                photo: photo(i * 3 + k),
                case_id: op.case_id,
                op_id: op.id,
                added_at: now,
            })
            .collect();
        store.record(op, &grid_of, |tx| {
            for r in &rows {
                r.insert_for_bench(tx)?;
            }
            Ok(())
        })?;
    }
    Ok(start.elapsed() / n as u32)
}

/// The same rows written with plain rusqlite statements, same schema and
/// pragmas, on a connection opened by [`bare_connection`].
fn record_bare(
    conn: &mut rusqlite::Connection,
    from: usize,
    n: usize,
    now: i64,
) -> Result<Duration> {
    let start = Instant::now();
    for i in from..from + n {
        let op = create_op(i, now);
        let OpKind::Create { draft } = &op.kind else {
            unreachable!()
        };
        let tx = conn.transaction()?;
        let id = op.case_id.to_string();
        let loc = draft.location.as_ref().map(|l| l.point);
        let body = serde_json::to_string(&gridcase_core::op::apply(None, &op)?)?;
        tx.prepare_cached(
            "INSERT INTO cases (id, status, category, title, description, address, lat, lon,
                 grid_id, occurred_at, proposed_deadline, deadline, updated_at, body, pending_ops)
             VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, NULL, ?10, ?11, 1)",
        )?
        .execute(rusqlite::params![
            id,
            draft.category.code(),
            draft.title,
            draft.description,
            draft.location.as_ref().and_then(|l| l.address.clone()),
            loc.map(|p| p.lat),
            loc.map(|p| p.lon),
            draft.occurred_at,
            draft.proposed_deadline,
            op.device_time,
            body,
        ])?;
        tx.prepare_cached(
            "INSERT INTO ops (id, case_id, kind, device_time, body) VALUES (?1, ?2, 'create', ?3, ?4)",
        )?
        .execute(rusqlite::params![
            op.id.to_string(),
            id,
            op.device_time,
            serde_json::to_string(&op)?
        ])?;
        let seq = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO outbox (op_seq) VALUES (?1)")?
            .execute([seq])?;
        for k in 0..3 {
            let p = photo(i * 3 + k);
            tx.prepare_cached(
                "INSERT INTO photos (id, case_id, op_id, sha256, bytes, width, height,
                     thumb_sha256, thumb_bytes, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(rusqlite::params![
                p.id.to_string(),
                id,
                op.id.to_string(),
                p.sha256,
                p.bytes as i64,
                p.width,
                p.height,
                p.thumb_sha256,
                p.thumb_bytes as i64,
                now
            ])?;
        }
        tx.commit()?;
    }
    Ok(start.elapsed() / n as u32)
}

fn bare_connection(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The name of the filesystem `path` is on, from `statfs` (Linux magic numbers).
pub fn filesystem_of(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs fills the struct for a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    #[allow(clippy::unnecessary_cast)]
    match st.f_type as i64 {
        0x0102_1994 => "tmpfs (fsync is free)".into(),
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x0102_1997 => "9p".into(),
        other => format!("filesystem 0x{other:x}"),
    }
}

/// Where the store benchmark writes: `GRIDCASE_BENCH_DIR`, else `TMPDIR`.
fn bench_dir() -> Result<tempfile::TempDir> {
    Ok(match std::env::var_os("GRIDCASE_BENCH_DIR") {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    })
}

pub fn run(cases: usize) -> Result<StoreBenchReport> {
    let now = now_millis();
    let dir = bench_dir()?;
    let filesystem = filesystem_of(dir.path());
    eprintln!("store bench: in {} ({filesystem})", dir.path().display());

    // Recording: through the store and bare, each on its own database, in
    // interleaved rounds (so a noisy neighbour or the disk's mood hits both
    // alike); the median of the rounds' means.
    let (rounds, per_round) = (15, 20);
    let store = Store::open(&dir.path().join("record-store"))?;
    let bare_dir = dir.path().join("record-bare");
    drop(Store::open(&bare_dir)?); // same schema
    let mut bare = bare_connection(&bare_dir.join("gridcase.sqlite3"))?;
    let (mut store_rounds, mut bare_rounds) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let from = r * per_round;
        if r % 2 == 0 {
            store_rounds.push(record_through_store(&store, from, per_round, now)?);
            bare_rounds.push(record_bare(&mut bare, from, per_round, now)?);
        } else {
            bare_rounds.push(record_bare(&mut bare, from, per_round, now)?);
            store_rounds.push(record_through_store(&store, from, per_round, now)?);
        }
    }
    drop(store);
    drop(bare);
    let record_store = median(store_rounds);
    let record_bare = median(bare_rounds);

    // Queries at scale: load `cases` cases in large transactions, a fifth
    // of them submitted, then time each list a grid leader opens.
    let big = Store::open(&dir.path().join("big"))?;
    let mut ops = Vec::with_capacity(10_000);
    for i in 0..cases {
        let op = create_op(i, now);
        let id = op.case_id;
        ops.push(op);
        if i.is_multiple_of(5) {
            ops.push(Op {
                id: OpId::new(),
                case_id: id,
                actor: leader(),
                device_time: now - (100_000 - i as i64) * 1000 + 1,
                at: None,
                recorded_before_enrolment_as: None,
                kind: OpKind::Submit,
            });
        }
        if ops.len() >= 10_000 {
            big.record_batch(std::mem::take(&mut ops), &grid_of)?;
        }
    }
    big.record_batch(ops, &grid_of)?;

    let later = now + 10 * DAY;
    let queries: Vec<(&str, CaseQuery, i64)> = vec![
        ("first page, by last change", CaseQuery::default(), now),
        (
            "first page, by deadline",
            CaseQuery {
                order: CaseOrder::Deadline,
                ..Default::default()
            },
            now,
        ),
        (
            "submitted, by deadline",
            CaseQuery {
                statuses: vec![CaseStatus::Submitted],
                order: CaseOrder::Deadline,
                ..Default::default()
            },
            now,
        ),
        (
            "waiting to sync",
            CaseQuery {
                waiting_to_sync: true,
                ..Default::default()
            },
            now,
        ),
        (
            "overdue (10 days on)",
            CaseQuery {
                overdue: true,
                order: CaseOrder::Deadline,
                ..Default::default()
            },
            later,
        ),
        (
            "one grid",
            CaseQuery {
                grid_id: Some("grid-7".into()),
                ..Default::default()
            },
            now,
        ),
        (
            "text search, 3+ characters (index)",
            CaseQuery {
                text: Some("农民工".into()),
                ..Default::default()
            },
            now,
        ),
        (
            "text search, 2 characters (scan)",
            CaseQuery {
                text: Some("漏水".into()),
                ..Default::default()
            },
            now,
        ),
    ];
    let mut results = Vec::new();
    for (name, q, at) in queries {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..15 {
            let t = Instant::now();
            n = big.list_cases(&q, at)?.cases.len();
            times.push(t.elapsed());
        }
        results.push((name.to_string(), median(times), n));
    }
    // Page 100 of the default list, reached by following tokens.
    let mut token = None;
    for _ in 0..99 {
        token = big
            .list_cases(
                &CaseQuery {
                    page_token: token,
                    ..Default::default()
                },
                now,
            )?
            .next_page_token;
    }
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        big.list_cases(
            &CaseQuery {
                page_token: token.clone(),
                ..Default::default()
            },
            now,
        )?;
        times.push(t.elapsed());
    }
    results.push(("page 100, by last change".into(), median(times), 50));
    Ok(StoreBenchReport {
        record_store,
        record_bare,
        rounds,
        filesystem,
        cases,
        queries: results,
    })
}
