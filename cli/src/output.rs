//! How the CLI prints: readable text for a person, or one JSON document for
//! scripts and tests.

pub use chrono_free::format_time;
use gridcase_core::store::{CasePage, OpSyncState};
use gridcase_core::terminal::{CaseDetail, CasePhoto};
use serde_json::{json, Value};

pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn line(&self, text: &str, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{text}");
        }
    }

    pub fn photo(&self, p: &CasePhoto) {
        self.line(
            &format!(
                "photo {} {}x{} {} bytes -> {}",
                p.row.photo.id,
                p.row.photo.width,
                p.row.photo.height,
                p.row.photo.bytes,
                p.path.display()
            ),
            photo_json(p),
        );
    }

    pub fn page(&self, page: &CasePage) {
        if self.json {
            let cases: Vec<Value> = page
                .cases
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id.to_string(), "status": c.status, "category": c.category,
                        "title": c.title, "grid_id": c.grid_id, "deadline": c.deadline,
                        "overdue": c.overdue, "updated_at": c.updated_at,
                        "waiting_to_sync": c.waiting_to_sync, "photo_count": c.photo_count,
                    })
                })
                .collect();
            println!(
                "{}",
                json!({ "cases": cases, "next_page_token": page.next_page_token })
            );
            return;
        }
        if page.cases.is_empty() {
            println!("no cases");
        }
        for c in &page.cases {
            let mut flags = String::new();
            if c.overdue {
                flags.push_str(" OVERDUE");
            }
            if c.waiting_to_sync {
                flags.push_str(" (not synced)");
            }
            println!(
                "{}  {:<11} {:<18} deadline {:<17} {}{}",
                c.id,
                c.status.as_str(),
                c.category.code(),
                c.deadline.map(format_time).unwrap_or_else(|| "-".into()),
                c.title,
                flags
            );
        }
        if let Some(token) = &page.next_page_token {
            println!("more: --page {token}");
        }
    }

    pub fn detail(&self, d: &CaseDetail) {
        let c = &d.case;
        if self.json {
            let mut case = serde_json::to_value(c).unwrap_or(Value::Null);
            case["overdue"] = json!(d.overdue);
            case["waiting_to_sync"] = json!(d.waiting_to_sync);
            case["photos"] = d.photos.iter().map(photo_json).collect();
            case["timeline"] = d
                .timeline
                .iter()
                .map(|e| {
                    let mut op = serde_json::to_value(&e.op).unwrap_or(Value::Null);
                    op["sync"] = json!(sync_name(e.sync));
                    op
                })
                .collect();
            println!("{case}");
            return;
        }
        println!("case {}", c.id);
        println!("  status     {}", c.status);
        println!(
            "  category   {} {}",
            c.category.code(),
            c.category.name_zh()
        );
        println!("  title      {}", c.title);
        if !c.description.is_empty() {
            println!("  details    {}", c.description);
        }
        if let Some(l) = &c.location {
            println!(
                "  place      {:.6}, {:.6} (±{} m){}",
                l.point.lat,
                l.point.lon,
                l.point.accuracy_m,
                l.address
                    .as_ref()
                    .map(|a| format!(" {a}"))
                    .unwrap_or_default()
            );
        }
        println!("  grid       {}", c.grid_id.as_deref().unwrap_or("-"));
        println!("  happened   {}", format_time(c.occurred_at));
        if let Some(d) = c.effective_deadline() {
            println!("  deadline   {}", format_time(d));
        }
        if d.overdue {
            println!("  OVERDUE");
        }
        if let Some(dep) = &c.department {
            println!("  department {dep}");
        }
        for p in &d.photos {
            println!(
                "  photo      {} {}x{} {}",
                p.row.photo.id,
                p.row.photo.width,
                p.row.photo.height,
                p.path.display()
            );
        }
        println!("  timeline");
        for e in &d.timeline {
            println!(
                "    {}  {:<13} {} {}{}",
                format_time(e.op.device_time),
                e.op.kind.name(),
                e.op.actor.role.as_str(),
                e.op.actor.id,
                match e.sync {
                    OpSyncState::Synced => String::new(),
                    s => format!("  [{}]", sync_name(s)),
                }
            );
        }
    }
}

fn sync_name(s: OpSyncState) -> &'static str {
    match s {
        OpSyncState::Pending => "not synced",
        OpSyncState::Rejected => "rejected",
        OpSyncState::Synced => "synced",
    }
}

fn photo_json(p: &CasePhoto) -> Value {
    json!({
        "id": p.row.photo.id.to_string(),
        "sha256": p.row.photo.sha256,
        "width": p.row.photo.width,
        "height": p.row.photo.height,
        "bytes": p.row.photo.bytes,
        "captured_at": p.row.photo.captured_at,
        "gps": p.row.photo.captured_at_point,
        "path": p.path,
        "thumb_path": p.thumb_path,
    })
}

/// UTC times printed without pulling in a date library for one format.
mod chrono_free {
    pub fn format_time(ms: i64) -> String {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60
        )
    }

    // Howard Hinnant's days-to-civil algorithm.
    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn formats_utc() {
            assert_eq!(super::format_time(0), "1970-01-01 00:00Z");
            assert_eq!(super::format_time(1_790_000_000_000), "2026-09-21 14:13Z");
        }
    }
}
