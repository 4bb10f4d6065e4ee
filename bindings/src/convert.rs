//! Conversions between core types and the FFI records.

use gridcase_core::op::OpKind;
use gridcase_core::store::{self, OpSyncState};
use gridcase_core::terminal::{CaseDetail as CoreDetail, CasePhoto};
use gridcase_core::Terminal;

use crate::types::*;
use crate::GridcaseError;

fn path_string(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

impl From<GeoPoint> for gridcase_core::GeoPoint {
    fn from(p: GeoPoint) -> Self {
        Self {
            lat: p.lat,
            lon: p.lon,
            accuracy_m: p.accuracy_m,
        }
    }
}

impl From<gridcase_core::GeoPoint> for GeoPoint {
    fn from(p: gridcase_core::GeoPoint) -> Self {
        Self {
            lat: p.lat,
            lon: p.lon,
            accuracy_m: p.accuracy_m,
        }
    }
}

impl From<LocationSource> for gridcase_core::LocationSource {
    fn from(s: LocationSource) -> Self {
        use gridcase_core::LocationSource as S;
        match s {
            LocationSource::DeviceGps => S::DeviceGps,
            LocationSource::PhotoExif => S::PhotoExif,
            LocationSource::Typed => S::Typed,
            LocationSource::MapTap => S::MapTap,
            LocationSource::Unknown => S::Unknown,
        }
    }
}

impl From<gridcase_core::LocationSource> for LocationSource {
    fn from(s: gridcase_core::LocationSource) -> Self {
        use gridcase_core::LocationSource as S;
        match s {
            S::DeviceGps => LocationSource::DeviceGps,
            S::PhotoExif => LocationSource::PhotoExif,
            S::Typed => LocationSource::Typed,
            S::MapTap => LocationSource::MapTap,
            S::Unknown => LocationSource::Unknown,
        }
    }
}

impl From<Location> for gridcase_core::Location {
    fn from(l: Location) -> Self {
        Self {
            point: l.point.into(),
            address: l.address,
            source: l.source.map(Into::into).unwrap_or_default(),
        }
    }
}

impl From<gridcase_core::Location> for Location {
    fn from(l: gridcase_core::Location) -> Self {
        Self {
            point: l.point.into(),
            address: l.address,
            // "Not said" reads back as it was given: absent.
            source: match l.source {
                gridcase_core::LocationSource::Unknown => None,
                s => Some(s.into()),
            },
        }
    }
}

impl From<gridcase_core::Placement> for Placement {
    fn from(p: gridcase_core::Placement) -> Self {
        use gridcase_core::Placement as P;
        match p {
            P::InYourGrid(g) => Placement::InYourGrid {
                grid_id: g.id,
                grid_name: g.name,
            },
            P::OutsideYourGrids(g) => Placement::OutsideYourGrids {
                grid_id: g.id,
                grid_name: g.name,
            },
            P::OutsideEveryGrid => Placement::OutsideEveryGrid,
            P::NoMap => Placement::NoMap,
        }
    }
}

impl From<store::RefusedStep> for RefusedStep {
    fn from(s: store::RefusedStep) -> Self {
        Self {
            case_id: s.case_id.to_string(),
            op_id: s.op.id.to_string(),
            kind: s.op.kind.code().to_owned(),
            code: s.code,
            reason: s.reason,
            can_resend: s.resending_may_help,
            time: s.op.device_time,
        }
    }
}

impl From<PhotoInput> for gridcase_core::PhotoSource {
    fn from(p: PhotoInput) -> Self {
        match p {
            PhotoInput::File { path } => gridcase_core::PhotoSource::File(path.into()),
            PhotoInput::Bytes { bytes } => gridcase_core::PhotoSource::Bytes(bytes),
        }
    }
}

impl From<&gridcase_core::grid::GridUnit> for GridUnit {
    fn from(u: &gridcase_core::grid::GridUnit) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            level: u.level.as_str().to_owned(),
            parent_id: u.parent_id.clone(),
        }
    }
}

impl From<gridcase_core::grid::GridUnit> for GridUnit {
    fn from(u: gridcase_core::grid::GridUnit) -> Self {
        (&u).into()
    }
}

impl From<NewCase> for gridcase_core::CaseDraft {
    fn from(n: NewCase) -> Self {
        Self {
            category: n.category,
            title: n.title,
            description: n.description,
            location: n.location.map(Into::into),
            occurred_at: n.occurred_at,
            proposed_deadline: n.proposed_deadline,
        }
    }
}

impl From<CaseEdit> for gridcase_core::CaseEdit {
    fn from(e: CaseEdit) -> Self {
        Self {
            category: e.category,
            title: e.title,
            description: e.description,
            location: if e.clear_location {
                Some(None)
            } else {
                e.location.map(|l| Some(l.into()))
            },
            occurred_at: e.occurred_at,
            proposed_deadline: if e.clear_proposed_deadline {
                Some(None)
            } else {
                e.proposed_deadline.map(Some)
            },
        }
    }
}

impl From<CasePhoto> for Photo {
    fn from(p: CasePhoto) -> Self {
        let r = p.row.photo;
        Self {
            id: r.id.to_string(),
            sha256: r.sha256,
            path: path_string(&p.path),
            thumb_path: path_string(&p.thumb_path),
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            captured_at: r.captured_at,
            gps: r.captured_at_point.map(Into::into),
        }
    }
}

fn note_of(kind: &OpKind) -> Option<String> {
    match kind {
        OpKind::Cancel { reason } | OpKind::Escalate { reason } => Some(reason.clone()),
        OpKind::Dispatch { note, .. }
        | OpKind::Progress { note }
        | OpKind::Resolve { note }
        | OpKind::Chase { note }
        | OpKind::Verify { note, .. }
        | OpKind::Place { note, .. } => Some(note.clone()),
        OpKind::Rate { comment, .. } => Some(comment.clone()),
        _ => None,
    }
    .filter(|n| !n.is_empty())
}

fn timeline_entry(e: store::TimelineEntry, names: &store::Names) -> TimelineEntry {
    let op = e.op;
    TimelineEntry {
        op_id: op.id.to_string(),
        kind: op.kind.code().to_owned(),
        actor_role: op.actor.role.as_str().to_owned(),
        actor_name: names.actor(&op.actor.id).map(str::to_owned),
        actor_id: op.actor.id.clone(),
        time: op.device_time,
        at: op.at.map(Into::into),
        note: note_of(&op.kind),
        sync_state: match e.sync {
            OpSyncState::Pending => SyncState::Pending,
            OpSyncState::Rejected => SyncState::Rejected,
            OpSyncState::Synced => SyncState::Synced,
        },
        reject_reason: e.reject_reason,
        reject_code: e.reject_code,
        resent: e.resent_as.is_some(),
        recorded_before_enrolment_as: op.recorded_before_enrolment_as,
    }
}

impl From<CoreDetail> for CaseDetail {
    fn from(d: CoreDetail) -> Self {
        let c = d.case;
        let names = d.names;
        Self {
            department_name: c
                .department
                .as_deref()
                .and_then(|dep| names.department(dep))
                .map(str::to_owned),
            placement: d.placement.map(Into::into),
            refused: d.refused.into_iter().map(Into::into).collect(),
            id: c.id.to_string(),
            status: c.status,
            category: c.category,
            title: c.title,
            description: c.description,
            location: c.location.map(Into::into),
            grid_id: c.grid_id,
            occurred_at: c.occurred_at,
            proposed_deadline: c.proposed_deadline,
            deadline: c.deadline,
            department: c.department,
            chase_count: c.chase_count,
            overdue: d.overdue,
            waiting_to_sync: d.waiting_to_sync,
            verification: c.verification.map(|v| Verification {
                done: v.done,
                note: v.note,
                photo_ids: v.photo_ids.iter().map(|p| p.to_string()).collect(),
                at: v.at,
            }),
            rating: c.rating.map(|r| Rating {
                face: r.face,
                comment: r.comment,
                at: r.at,
            }),
            reported_by: c.reported_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
            photos: d.photos.into_iter().map(Into::into).collect(),
            timeline: d
                .timeline
                .into_iter()
                .map(|e| timeline_entry(e, &names))
                .collect(),
        }
    }
}

impl TryFrom<CaseQuery> for store::CaseQuery {
    type Error = GridcaseError;

    fn try_from(q: CaseQuery) -> Result<Self, GridcaseError> {
        Ok(Self {
            statuses: q.statuses,
            grid_id: q.grid_id,
            waiting_to_sync: q.waiting_to_sync,
            refused: q.refused,
            recorded_from: None,
            recorded_before: None,
            overdue: q.overdue,
            text: q.text,
            order: match q.order {
                None | Some(CaseOrder::LastChange) => store::CaseOrder::LastChange,
                Some(CaseOrder::Deadline) => store::CaseOrder::Deadline,
            },
            page_size: q.page_size,
            page_token: q.page_token,
        })
    }
}

pub(crate) fn page(terminal: &Terminal, page: store::CasePage) -> CasePage {
    CasePage {
        cases: page
            .cases
            .into_iter()
            .map(|s| CaseSummary {
                id: s.id.to_string(),
                status: s.status,
                category: s.category,
                title: s.title,
                grid_id: s.grid_id,
                deadline: s.deadline,
                overdue: s.overdue,
                updated_at: s.updated_at,
                waiting_to_sync: s.waiting_to_sync,
                refused_steps: s.refused_steps,
                photo_count: s.photo_count,
                thumb_path: s
                    .thumb_sha256
                    .and_then(|sha| terminal.photo_file(&sha).ok())
                    .map(|p| path_string(&p)),
            })
            .collect(),
        next_page_token: page.next_page_token,
    }
}

impl From<gridcase_core::protocol::RatingLink> for RatingLink {
    fn from(l: gridcase_core::protocol::RatingLink) -> Self {
        Self {
            url: l.url,
            expires_at: l.expires_at,
            qr_svg: l.qr_svg,
        }
    }
}
