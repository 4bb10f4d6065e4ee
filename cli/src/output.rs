//! How the CLI prints: readable text for a person (in their language, on the
//! deployment's clock), or one JSON document for scripts and tests (times
//! stay UTC milliseconds there).

use std::io::Write;

use gridcase_core::grid::GridMap;
use gridcase_core::op::{Op, OpKind, Role};
use gridcase_core::store::{CasePage, Names, OpSyncState, RefusedStep, TimelineEntry};
use gridcase_core::sync::SyncReport;
use gridcase_core::terminal::{CaseDetail, CasePhoto, Placement};
use gridcase_core::{GeoPoint, Location, Zone};
use serde_json::{json, Value};

use crate::words::{pick, Lang};

/// Writes a line to standard output. A reader that went away (`gridcase
/// list | head -1`) ends the program quietly, as other command-line tools do.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing the output: {e}");
        std::process::exit(1);
    }
}

pub struct Output {
    pub json: bool,
    pub lang: Lang,
    pub zone: Zone,
}

impl Output {
    pub fn line(&self, text: &str, json: Value) {
        if self.json {
            emit(&json.to_string());
        } else {
            emit(text);
        }
    }

    /// A time as people read it, on the deployment's clock, to the minute.
    pub fn time(&self, ms: i64) -> String {
        self.zone.format_minute(ms)
    }

    pub fn photo(&self, p: &CasePhoto) {
        let l = self.lang;
        self.line(
            &format!(
                "{} {} {}x{} {} {} -> {}",
                pick!(l, "照片", "photo"),
                p.row.photo.id,
                p.row.photo.width,
                p.row.photo.height,
                p.row.photo.bytes,
                pick!(l, "字节", "bytes"),
                p.path.display()
            ),
            photo_json(p),
        );
    }

    /// A list page; `short` gives each case's short id.
    pub fn page(&self, page: &CasePage, short: &dyn Fn(&gridcase_core::CaseId) -> String) {
        let l = self.lang;
        if self.json {
            let cases: Vec<Value> = page
                .cases
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id.to_string(), "short_id": short(&c.id),
                        "status": c.status, "category": c.category,
                        "title": c.title, "grid_id": c.grid_id, "deadline": c.deadline,
                        "overdue": c.overdue, "updated_at": c.updated_at,
                        "created_at": c.created_at,
                        "waiting_to_sync": c.waiting_to_sync,
                        "refused_steps": c.refused_steps, "photo_count": c.photo_count,
                    })
                })
                .collect();
            emit(&json!({ "cases": cases, "next_page_token": page.next_page_token }).to_string());
            return;
        }
        if page.cases.is_empty() {
            emit(pick!(l, "没有事件", "no cases"));
        }
        for c in &page.cases {
            let mut flags = String::new();
            if c.overdue {
                flags.push_str(pick!(l, " 【超期】", " OVERDUE"));
            }
            if c.refused_steps > 0 {
                flags.push_str(&match l {
                    Lang::Zh => format!(" 【被退回 {} 步】", c.refused_steps),
                    Lang::En => format!(" [REFUSED: {} step(s)]", c.refused_steps),
                });
            }
            if c.waiting_to_sync {
                flags.push_str(pick!(l, " （未同步）", " (not synced)"));
            }
            let deadline = c
                .deadline
                .map(|d| self.time(d))
                .unwrap_or_else(|| "-".into());
            emit(&format!(
                "{}  {}  {}  {} {}  {}{}",
                short(&c.id),
                pad(l.status(c.status), 8),
                pad(l.category(c.category), 8),
                pick!(l, "时限", "deadline"),
                pad(&deadline, 16),
                c.title,
                flags
            ));
        }
        if let Some(token) = &page.next_page_token {
            emit(&format!("{} --page {token}", pick!(l, "下一页：", "more:")));
        }
    }

    /// Says when a point falls outside the terminal's grids or its map (on
    /// standard error: a warning, not the answer).
    pub fn placement_warning(&self, placement: Option<&Placement>) {
        let Some(text) = placement.and_then(|p| self.placement_words(p, true)) else {
            return;
        };
        if !self.json {
            eprintln!("{}{text}", pick!(self.lang, "注意：", "warning: "));
        }
    }

    /// The placement in words; `only_warnings` leaves out "in your grid".
    fn placement_words(&self, p: &Placement, only_warnings: bool) -> Option<String> {
        let l = self.lang;
        Some(match p {
            Placement::InYourGrid(g) if !only_warnings => g.name.clone(),
            Placement::InYourGrid(_) => return None,
            Placement::OutsideYourGrids(g) => match l {
                Lang::Zh => format!("不在您的网格内（{}）", g.name),
                Lang::En => format!("outside your grids ({})", g.name),
            },
            Placement::OutsideEveryGrid => pick!(
                l,
                "不在本机地图的任何网格内：中心需要人工确定网格",
                "outside every grid on this terminal's map: the centre must place the case"
            )
            .into(),
            Placement::NoMap => pick!(
                l,
                "本机还没有网格地图（先登记设备，或 gridcase grids load）",
                "this terminal has no grid map yet (enrol, or gridcase grids load)"
            )
            .into(),
        })
    }

    pub fn place(&self, loc: &Location) -> String {
        let l = self.lang;
        let accuracy = match loc.point.accuracy_m {
            Some(m) => format!("±{m} m"),
            None => pick!(l, "精度未知", "accuracy unknown").into(),
        };
        format!(
            "{:.6}, {:.6} ({accuracy}, {}){}",
            loc.point.lat,
            loc.point.lon,
            l.source(loc.source),
            loc.address
                .as_ref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default()
        )
    }

    pub fn detail(&self, d: &CaseDetail, short_id: &str, grids: &GridMap) {
        let c = &d.case;
        if self.json {
            let mut case = serde_json::to_value(c).unwrap_or(Value::Null);
            case["short_id"] = json!(short_id);
            case["overdue"] = json!(d.overdue);
            case["waiting_to_sync"] = json!(d.waiting_to_sync);
            case["photos"] = d.photos.iter().map(photo_json).collect();
            case["placement"] = d.placement.as_ref().map(placement_json).into();
            case["department_name"] = json!(c
                .department
                .as_deref()
                .and_then(|dep| d.names.department(dep)));
            case["refused"] = d.refused.iter().map(refused_json).collect();
            case["timeline"] = d
                .timeline
                .iter()
                .map(|e| {
                    let mut op = serde_json::to_value(&e.op).unwrap_or(Value::Null);
                    op["sync"] = json!(sync_code(e.sync));
                    op["actor_name"] = json!(d.names.actor(&e.op.actor.id));
                    op["reject_code"] = json!(e.reject_code);
                    op["reject_reason"] = json!(e.reject_reason);
                    op["resent_as"] = json!(e.resent_as.map(|i| i.to_string()));
                    op
                })
                .collect();
            emit(&case.to_string());
            return;
        }
        let l = self.lang;
        let row = |label: &str, value: &str| emit(&format!("  {}  {value}", pad(label, 8)));
        emit(&format!(
            "{} {}  ({})",
            pick!(l, "事件", "case"),
            short_id,
            c.id
        ));
        row(pick!(l, "状态", "status"), l.status(c.status));
        row(pick!(l, "类别", "category"), l.category(c.category));
        row(pick!(l, "标题", "title"), &c.title);
        if !c.description.is_empty() {
            row(pick!(l, "情况描述", "details"), &c.description);
        }
        match &c.location {
            Some(loc) => row(pick!(l, "地点", "place"), &self.place(loc)),
            None => row(
                pick!(l, "地点", "place"),
                pick!(l, "（未填写）", "(none yet)"),
            ),
        }
        let grid = c.grid_id.as_deref().map(|g| match grids.get(g) {
            Some(u) => format!("{} ({g})", u.name),
            None => g.to_string(),
        });
        row(
            pick!(l, "网格", "grid"),
            grid.as_deref().unwrap_or(pick!(l, "（未定）", "(none)")),
        );
        if let Some(w) = d
            .placement
            .as_ref()
            .and_then(|p| self.placement_words(p, true))
        {
            row(pick!(l, "注意", "warning"), &w);
        }
        row(pick!(l, "发生时间", "happened"), &self.time(c.occurred_at));
        if let Some(p) = c.proposed_deadline {
            row(pick!(l, "建议时限", "proposed"), &self.time(p));
        }
        if let Some(dl) = c.deadline {
            row(pick!(l, "办结时限", "deadline"), &self.time(dl));
        }
        if d.overdue {
            row("", pick!(l, "【超期】", "OVERDUE"));
        }
        if let Some(dep) = &c.department {
            row(
                pick!(l, "承办部门", "department"),
                d.names.department(dep).unwrap_or(dep),
            );
        }
        if c.chase_count > 0 {
            row(pick!(l, "催办次数", "chased"), &c.chase_count.to_string());
        }
        if let Some(v) = &c.verification {
            let done = if v.done {
                pick!(l, "已办好", "done")
            } else {
                pick!(l, "未办好", "not done")
            };
            row(
                pick!(l, "现场核实", "on site"),
                &with_note(l, done, &v.note),
            );
        }
        if let Some(r) = &c.rating {
            row(
                pick!(l, "群众评价", "rating"),
                &with_note(l, l.face(r.face), &r.comment),
            );
        }
        for p in &d.photos {
            row(
                pick!(l, "照片", "photo"),
                &format!(
                    "{} {}x{} {}",
                    p.row.photo.id,
                    p.row.photo.width,
                    p.row.photo.height,
                    p.path.display()
                ),
            );
        }
        if !d.refused.is_empty() {
            emit(&format!(
                "  {}",
                pick!(
                    l,
                    "需要处理：以下步骤被服务器退回（gridcase resend 重新发送）",
                    "needs attention: the server refused these steps (gridcase resend sends them again)"
                )
            ));
            for s in &d.refused {
                emit(&format!("    {}", self.refusal(s)));
            }
        }
        emit(&format!("  {}", pick!(l, "办理过程", "timeline")));
        for e in &d.timeline {
            emit(&format!("    {}", self.timeline_line(e, &d.names)));
        }
    }

    /// One step in words: when, who (name and role), what, and every note.
    pub fn timeline_line(&self, e: &TimelineEntry, names: &Names) -> String {
        let l = self.lang;
        let op = &e.op;
        let who = self.who(op, names);
        let what = self.what(op, names);
        let mut line = format!("{}  {who}{}{what}", self.time(op.device_time), l.colon());
        if let Some(local) = &op.recorded_before_enrolment_as {
            line.push_str(&match l {
                Lang::Zh => format!("（登记设备前以“{local}”记录）"),
                Lang::En => format!(" (recorded before enrolment as \"{local}\")"),
            });
        }
        match (e.sync, e.resent_as) {
            (OpSyncState::Synced, _) => {}
            (OpSyncState::Pending, _) => line.push_str(pick!(l, "  [未同步]", "  [not synced]")),
            (OpSyncState::Rejected, Some(_)) => line.push_str(pick!(
                l,
                "  [被退回，已重新发送]",
                "  [refused, sent again]"
            )),
            (OpSyncState::Rejected, None) => line.push_str(&match l {
                Lang::Zh => format!("  [被退回：{}]", e.reject_reason.as_deref().unwrap_or("")),
                Lang::En => format!("  [REFUSED: {}]", e.reject_reason.as_deref().unwrap_or("")),
            }),
        }
        line
    }

    fn who(&self, op: &Op, names: &Names) -> String {
        let l = self.lang;
        let role = l.role(op.actor.role);
        if op.actor.role == Role::System {
            return role.to_string();
        }
        let name = names.actor(&op.actor.id).unwrap_or(&op.actor.id);
        match l {
            Lang::Zh => format!("{name}（{role}）"),
            Lang::En => format!("{name} ({role})"),
        }
    }

    fn what(&self, op: &Op, names: &Names) -> String {
        let l = self.lang;
        let note = |verb: &str, text: &str| with_note(l, verb, text);
        match &op.kind {
            OpKind::Create { draft } => {
                let mut s = pick!(l, "登记事件", "recorded the case").to_string();
                if let Some(loc) = &draft.location {
                    s.push_str(&format!(
                        "{}{}",
                        pick!(l, "，位置来自", ", place from "),
                        l.source(loc.source)
                    ));
                }
                s
            }
            OpKind::Edit { edit } => {
                let mut changed = Vec::new();
                if edit.category.is_some() {
                    changed.push(pick!(l, "类别", "category"));
                }
                if edit.title.is_some() {
                    changed.push(pick!(l, "标题", "title"));
                }
                if edit.description.is_some() {
                    changed.push(pick!(l, "描述", "details"));
                }
                if edit.location.is_some() {
                    changed.push(pick!(l, "位置", "place"));
                }
                if edit.occurred_at.is_some() {
                    changed.push(pick!(l, "发生时间", "time it happened"));
                }
                if edit.proposed_deadline.is_some() {
                    changed.push(pick!(l, "建议时限", "proposed deadline"));
                }
                match l {
                    Lang::Zh => format!("修改{}", changed.join("、")),
                    Lang::En => format!("changed the {}", changed.join(", ")),
                }
            }
            OpKind::AttachPhoto { location, .. } => {
                let mut s = pick!(l, "上传照片", "added a photo").to_string();
                if location.is_some() {
                    s.push_str(pick!(
                        l,
                        "（照片GPS定为事件位置）",
                        " (its GPS became the case's place)"
                    ));
                }
                s
            }
            OpKind::Submit => pick!(l, "提交", "submitted the case").into(),
            OpKind::Cancel { reason } => {
                note(pick!(l, "撤销，原因", "cancelled it, because"), reason)
            }
            OpKind::Receive => pick!(l, "中心受理", "the centre received it").into(),
            OpKind::Dispatch {
                department,
                deadline,
                note: text,
            } => {
                let dep = names.department(department).unwrap_or(department);
                let verb = match l {
                    Lang::Zh => format!("派单给 {dep}，时限 {}", self.time(*deadline)),
                    Lang::En => format!("dispatched to {dep}, deadline {}", self.time(*deadline)),
                };
                note(&verb, text)
            }
            OpKind::Accept => pick!(l, "接单", "accepted it").into(),
            OpKind::Progress { note: text } => {
                note(pick!(l, "报告进展", "reported progress"), text)
            }
            OpKind::Resolve { note: text } => note(pick!(l, "办结", "resolved it"), text),
            OpKind::Escalate { reason } => {
                note(pick!(l, "上报上级，原因", "escalated it, because"), reason)
            }
            OpKind::Chase { note: text } => note(pick!(l, "催办", "chased it"), text),
            OpKind::Verify {
                done, note: text, ..
            } => {
                let verb = match (l, done) {
                    (Lang::Zh, true) => "现场核实：已办好",
                    (Lang::Zh, false) => "现场核实：未办好",
                    (Lang::En, true) => "checked on site: done",
                    (Lang::En, false) => "checked on site: not done",
                };
                note(verb, text)
            }
            OpKind::Rate { face, comment } => {
                let verb = match l {
                    Lang::Zh => format!("群众评价：{}", l.face(*face)),
                    Lang::En => format!("the resident rated it {}", l.face(*face)),
                };
                note(&verb, comment)
            }
            OpKind::Close => pick!(l, "结案", "closed it").into(),
            OpKind::Place {
                grid_id,
                note: text,
            } => {
                let verb = match l {
                    Lang::Zh => format!("中心将事件定到网格 {grid_id}"),
                    Lang::En => format!("the centre placed it in grid {grid_id}"),
                };
                note(&verb, text)
            }
        }
    }

    /// A refused step in words, with the server's reason.
    pub fn refusal(&self, s: &RefusedStep) -> String {
        let l = self.lang;
        let names = Names::default();
        let what = self.what(&s.op, &names);
        let hint = if s.resending_may_help {
            ""
        } else {
            pick!(
                l,
                "（重新发送也会被退回）",
                " (sending it again would be refused again)"
            )
        };
        format!(
            "{}  {what} — {}: {}{hint}",
            self.time(s.op.device_time),
            s.code,
            s.reason
        )
    }

    pub fn sync_report(&self, r: &SyncReport, titles: &dyn Fn(&RefusedStep) -> (String, String)) {
        let l = self.lang;
        if self.json {
            emit(
                &json!({
                    "ops_pushed": r.ops_pushed, "ops_accepted": r.ops_accepted,
                    "ops_rejected": r.ops_rejected, "ops_pulled": r.ops_pulled,
                    "photo_bytes_sent": r.photo_bytes_sent,
                    "photo_bytes_received": r.photo_bytes_received,
                    "requests": r.requests, "bytes_sent": r.bytes_sent,
                    "bytes_received": r.bytes_received, "ops_waiting": r.ops_waiting,
                    "refused": r.refused.iter().map(refused_json).collect::<Vec<_>>(),
                    "needs_attention": r.needs_attention,
                })
                .to_string(),
            );
            return;
        }
        emit(&match l {
            Lang::Zh => format!(
                "上传 {} 步（接受 {}，退回 {}），收到 {} 步；照片上传 {} 字节、下载 {} 字节；{} 次请求；仍待上传 {} 步",
                r.ops_pushed, r.ops_accepted, r.ops_rejected, r.ops_pulled,
                r.photo_bytes_sent, r.photo_bytes_received, r.requests, r.ops_waiting
            ),
            Lang::En => format!(
                "pushed {} ({} accepted, {} refused), pulled {}, photo bytes sent {} received {}, {} requests, {} still waiting",
                r.ops_pushed, r.ops_accepted, r.ops_rejected, r.ops_pulled,
                r.photo_bytes_sent, r.photo_bytes_received, r.requests, r.ops_waiting
            ),
        });
        for s in &r.refused {
            let (short, title) = titles(s);
            emit(&format!(
                "{} {short}「{title}」 {}",
                pick!(l, "退回：", "refused:"),
                self.refusal(s)
            ));
        }
        let earlier = r.needs_attention.saturating_sub(r.refused.len() as u64);
        if earlier > 0 {
            emit(&match l {
                Lang::Zh => format!("另有 {earlier} 步早先被退回，仍需处理（gridcase list --refused）"),
                Lang::En => format!(
                    "{earlier} step(s) refused earlier still need attention (gridcase list --refused)"
                ),
            });
        }
    }
}

fn with_note(l: Lang, verb: &str, text: &str) -> String {
    if text.trim().is_empty() {
        verb.to_string()
    } else {
        match l {
            Lang::Zh => format!("{verb}：{text}"),
            Lang::En => format!("{verb}: {text}"),
        }
    }
}

/// Pads to `width` columns, counting a Chinese character as two.
fn pad(text: &str, width: usize) -> String {
    let cols: usize = text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(cols)))
}

fn sync_code(s: OpSyncState) -> &'static str {
    match s {
        OpSyncState::Pending => "not synced",
        OpSyncState::Rejected => "rejected",
        OpSyncState::Synced => "synced",
    }
}

pub fn placement_json(p: &Placement) -> Value {
    match p {
        Placement::InYourGrid(g) => {
            json!({"kind": "in_your_grid", "grid_id": g.id, "grid_name": g.name})
        }
        Placement::OutsideYourGrids(g) => {
            json!({"kind": "outside_your_grids", "grid_id": g.id, "grid_name": g.name})
        }
        Placement::OutsideEveryGrid => json!({"kind": "outside_every_grid"}),
        Placement::NoMap => json!({"kind": "no_map"}),
    }
}

pub fn refused_json(s: &RefusedStep) -> Value {
    json!({
        "case_id": s.case_id.to_string(), "op_id": s.op.id.to_string(),
        "kind": s.op.kind.code(), "code": s.code, "reason": s.reason,
        "resending_may_help": s.resending_may_help, "device_time": s.op.device_time,
    })
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

/// A point as a person reads it (for `grids locate`).
pub fn point(p: &GeoPoint) -> String {
    format!("{:.6}, {:.6}", p.lat, p.lon)
}
