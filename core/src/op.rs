//! Operations: every change to a case is one, made where it happened (terminal,
//! centre, scheduler), kept in order, and synced exactly once. A case's timeline
//! is its list of operations; its current state is what they add up to.

use serde::{Deserialize, Serialize};

use crate::case::{
    check_text, check_time, next_status, Case, CaseDraft, CaseEdit, CaseStatus, Face, Rating,
    Verification, MAX_COMMENT_CHARS, MAX_NOTE_CHARS,
};
use crate::error::{DomainError, InvalidInput, TransitionError};
use crate::ids::{CaseId, OpId, PhotoId};
use crate::location::{GeoPoint, Location};
use crate::time::Millis;

/// Who acts on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    GridLeader,
    Resident,
    Dispatcher,
    Department,
    Supervisor,
    /// The server itself: receiving, scheduled chases, automatic escalation.
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::GridLeader => "grid_leader",
            Role::Resident => "resident",
            Role::Dispatcher => "dispatcher",
            Role::Department => "department",
            Role::Supervisor => "supervisor",
            Role::System => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub role: Role,
    /// The account or device that acted (a resident rating on the grid leader's
    /// terminal is recorded under that terminal's account).
    pub id: String,
}

/// A photo as a case refers to it: the files are content-addressed by SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRef {
    pub id: PhotoId,
    pub sha256: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub thumb_sha256: String,
    pub thumb_bytes: u64,
    /// From the camera's EXIF, when it had one.
    #[serde(default)]
    pub captured_at: Option<Millis>,
    #[serde(default)]
    pub captured_at_point: Option<GeoPoint>,
}

impl PhotoRef {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        check_sha256("photo.sha256", &self.sha256)?;
        check_sha256("photo.thumb_sha256", &self.thumb_sha256)?;
        if self.width == 0 || self.height == 0 {
            return Err(InvalidInput::new("photo.size", "must not be empty"));
        }
        if let Some(point) = &self.captured_at_point {
            point.validate()?;
        }
        Ok(())
    }
}

fn check_sha256(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(InvalidInput::new(field, "is not a lowercase hex SHA-256"));
    }
    Ok(())
}

/// What happened to a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    Create {
        draft: CaseDraft,
    },
    Edit {
        edit: CaseEdit,
    },
    AttachPhoto {
        photo: PhotoRef,
        /// The photo's GPS made the case's place, in this same step (only a
        /// draft without a place takes one from a photo).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<Location>,
    },
    Submit,
    Cancel {
        reason: String,
    },
    Receive,
    Dispatch {
        department: String,
        deadline: Millis,
        #[serde(default)]
        note: String,
    },
    Accept,
    Progress {
        note: String,
    },
    Resolve {
        note: String,
    },
    Escalate {
        reason: String,
    },
    Chase {
        note: String,
    },
    Verify {
        done: bool,
        note: String,
        #[serde(default)]
        photo_ids: Vec<PhotoId>,
    },
    Rate {
        face: Face,
        #[serde(default)]
        comment: String,
    },
    Close,
    /// The centre files a case its map places in no grid (a point outside
    /// every grid, or in a hole of one) under a grid by hand, so that grid's
    /// people see it and its terminals receive it.
    Place {
        grid_id: String,
        #[serde(default)]
        note: String,
    },
}

impl OpKind {
    pub fn name(&self) -> &'static str {
        crate::case::operation_name(self)
    }

    /// The `kind` tag the op is stored and sent under (`create`, `attach_photo`...).
    pub fn code(&self) -> &'static str {
        match self {
            OpKind::Create { .. } => "create",
            OpKind::Edit { .. } => "edit",
            OpKind::AttachPhoto { .. } => "attach_photo",
            OpKind::Submit => "submit",
            OpKind::Cancel { .. } => "cancel",
            OpKind::Receive => "receive",
            OpKind::Dispatch { .. } => "dispatch",
            OpKind::Accept => "accept",
            OpKind::Progress { .. } => "progress",
            OpKind::Resolve { .. } => "resolve",
            OpKind::Escalate { .. } => "escalate",
            OpKind::Chase { .. } => "chase",
            OpKind::Verify { .. } => "verify",
            OpKind::Rate { .. } => "rate",
            OpKind::Close => "close",
            OpKind::Place { .. } => "place",
        }
    }

    /// Structural checks that need no case: text bounds, ids, times.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        match self {
            OpKind::Create { draft } => draft.validate(),
            OpKind::Edit { edit } => {
                if edit.is_empty() {
                    return Err(InvalidInput::new("edit", "changes nothing"));
                }
                Ok(())
            }
            OpKind::AttachPhoto { photo, location } => {
                photo.validate()?;
                location.as_ref().map_or(Ok(()), Location::validate)
            }
            OpKind::Submit | OpKind::Receive | OpKind::Accept | OpKind::Close => Ok(()),
            OpKind::Cancel { reason } | OpKind::Escalate { reason } => {
                check_text("reason", reason, 1, MAX_NOTE_CHARS)
            }
            OpKind::Dispatch {
                department,
                deadline,
                note,
            } => {
                check_text("department", department, 1, 100)?;
                check_time("deadline", *deadline)?;
                check_text("note", note, 0, MAX_NOTE_CHARS)
            }
            OpKind::Progress { note } | OpKind::Resolve { note } | OpKind::Chase { note } => {
                check_text("note", note, 0, MAX_NOTE_CHARS)
            }
            OpKind::Verify {
                note, photo_ids, ..
            } => {
                check_text("note", note, 0, MAX_NOTE_CHARS)?;
                if photo_ids.len() > 20 {
                    return Err(InvalidInput::new("photo_ids", "at most 20 photos"));
                }
                Ok(())
            }
            OpKind::Rate { comment, .. } => check_text("comment", comment, 0, MAX_COMMENT_CHARS),
            OpKind::Place { grid_id, note } => {
                check_text("grid_id", grid_id, 1, 100)?;
                check_text("note", note, 0, MAX_NOTE_CHARS)
            }
        }
    }
}

/// One entry on a case's timeline: who did what, when, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: OpId,
    pub case_id: CaseId,
    pub actor: Actor,
    /// The clock of the device (or server) that made the op.
    pub device_time: Millis,
    /// Where the actor stood, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<GeoPoint>,
    /// Recorded on the terminal before it was enrolled, under this local
    /// name: the first enrolment made the step the enrolled account's (the
    /// same person on the same device), and says so here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_before_enrolment_as: Option<String>,
    #[serde(flatten)]
    pub kind: OpKind,
}

/// The longest local name a step recorded before enrolment keeps.
pub const MAX_LOCAL_NAME_CHARS: usize = 100;

/// Applies one op to a case (or to nothing, for `Create`) and returns the case
/// as it is afterwards. The same function runs on every terminal and on the
/// server, so both sides agree on what a sequence of ops means.
pub fn apply(case: Option<&Case>, op: &Op) -> Result<Case, DomainError> {
    op.kind.validate()?;
    check_time("device_time", op.device_time)?;
    if let Some(at) = &op.at {
        at.validate()?;
    }
    if let Some(name) = &op.recorded_before_enrolment_as {
        check_text(
            "recorded_before_enrolment_as",
            name,
            1,
            MAX_LOCAL_NAME_CHARS,
        )?;
    }
    let Some(case) = case else {
        let OpKind::Create { draft } = &op.kind else {
            return Err(TransitionError::CaseNotCreated.into());
        };
        next_status(None, &op.kind, op.actor.role)?;
        return Ok(Case {
            id: op.case_id,
            status: CaseStatus::Draft,
            category: draft.category,
            title: draft.title.clone(),
            description: draft.description.clone(),
            location: draft.location.clone(),
            grid_id: None,
            occurred_at: draft.occurred_at,
            proposed_deadline: draft.proposed_deadline,
            deadline: None,
            department: None,
            chase_count: 0,
            photo_ids: Vec::new(),
            verification: None,
            rating: None,
            reported_by: op.actor.id.clone(),
            created_at: op.device_time,
            updated_at: op.device_time,
        });
    };
    let status = next_status(Some(case.status), &op.kind, op.actor.role)?;
    let mut next = case.clone();
    next.status = status;
    next.updated_at = next.updated_at.max(op.device_time);
    match &op.kind {
        OpKind::Create { .. } => return Err(TransitionError::CaseAlreadyCreated.into()),
        OpKind::Edit { edit } => {
            if let Some(category) = edit.category {
                next.category = category;
            }
            if let Some(title) = &edit.title {
                next.title = title.clone();
            }
            if let Some(description) = &edit.description {
                next.description = description.clone();
            }
            if let Some(location) = &edit.location {
                next.location = location.clone();
            }
            if let Some(occurred_at) = edit.occurred_at {
                next.occurred_at = occurred_at;
            }
            if let Some(deadline) = edit.proposed_deadline {
                next.proposed_deadline = deadline;
            }
            // Re-check the whole draft: an edit may only produce a valid case.
            CaseDraft {
                category: next.category,
                title: next.title.clone(),
                description: next.description.clone(),
                location: next.location.clone(),
                occurred_at: next.occurred_at,
                proposed_deadline: next.proposed_deadline,
            }
            .validate()?;
        }
        OpKind::AttachPhoto { photo, location } => {
            if !next.photo_ids.contains(&photo.id) {
                next.photo_ids.push(photo.id);
            }
            if let Some(location) = location {
                if case.status != CaseStatus::Draft || case.location.is_some() {
                    return Err(InvalidInput::new(
                        "location",
                        "only a draft without a place takes its place from a photo",
                    )
                    .into());
                }
                next.location = Some(location.clone());
            }
        }
        OpKind::Submit => case.check_ready_to_submit()?,
        OpKind::Dispatch {
            department,
            deadline,
            ..
        } => {
            next.department = Some(department.clone());
            next.deadline = Some(*deadline);
            // A new owner starts a fresh round of chasing.
            next.chase_count = 0;
        }
        OpKind::Chase { .. } => next.chase_count += 1,
        OpKind::Verify {
            done,
            note,
            photo_ids,
        } => {
            if let Some(unknown) = photo_ids.iter().find(|p| !case.photo_ids.contains(p)) {
                let _ = unknown;
                return Err(InvalidInput::new(
                    "photo_ids",
                    "names a photo not attached to this case",
                )
                .into());
            }
            next.verification = Some(Verification {
                done: *done,
                note: note.clone(),
                photo_ids: photo_ids.clone(),
                at: op.device_time,
            });
        }
        OpKind::Rate { face, comment } => {
            next.rating = Some(Rating {
                face: *face,
                comment: comment.clone(),
                at: op.device_time,
            });
        }
        OpKind::Place { grid_id, .. } => next.grid_id = Some(grid_id.clone()),
        OpKind::Cancel { .. }
        | OpKind::Receive
        | OpKind::Accept
        | OpKind::Progress { .. }
        | OpKind::Resolve { .. }
        | OpKind::Escalate { .. }
        | OpKind::Close => {}
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Category;
    use crate::location::LocationSource;

    const T0: Millis = 1_790_000_000_000;

    fn actor(role: Role) -> Actor {
        Actor {
            role,
            id: format!("{}-1", role.as_str()),
        }
    }

    fn op(case_id: CaseId, role: Role, kind: OpKind) -> Op {
        Op {
            id: OpId::new(),
            case_id,
            actor: actor(role),
            device_time: T0,
            at: None,
            recorded_before_enrolment_as: None,
            kind,
        }
    }

    fn create(case_id: CaseId) -> Op {
        op(
            case_id,
            Role::GridLeader,
            OpKind::Create {
                draft: CaseDraft {
                    category: Category::CollapsedManhole,
                    title: "井盖塌陷".into(),
                    description: String::new(),
                    location: Some(Location {
                        point: GeoPoint::new(42.9, 125.1, 5.0).unwrap(),
                        address: Some("人民大街".into()),
                        source: crate::location::LocationSource::DeviceGps,
                    }),
                    occurred_at: T0,
                    proposed_deadline: Some(T0 + crate::time::DAY),
                },
            },
        )
    }

    fn run(ops: &[Op]) -> Result<Case, DomainError> {
        let mut case = None;
        for op in ops {
            case = Some(apply(case.as_ref(), op)?);
        }
        Ok(case.unwrap())
    }

    #[test]
    fn every_kind_is_stored_under_the_tag_serde_writes() {
        let draft = match create(CaseId::new()).kind {
            OpKind::Create { draft } => draft,
            _ => unreachable!(),
        };
        let photo = PhotoRef {
            id: PhotoId::new(),
            sha256: "a".repeat(64),
            bytes: 1,
            width: 1,
            height: 1,
            thumb_sha256: "b".repeat(64),
            thumb_bytes: 1,
            captured_at: None,
            captured_at_point: None,
        };
        let note = String::new;
        let kinds = [
            OpKind::Create { draft },
            OpKind::Edit {
                edit: CaseEdit::default(),
            },
            OpKind::AttachPhoto {
                photo,
                location: None,
            },
            OpKind::Submit,
            OpKind::Cancel { reason: note() },
            OpKind::Receive,
            OpKind::Dispatch {
                department: note(),
                deadline: T0,
                note: note(),
            },
            OpKind::Accept,
            OpKind::Progress { note: note() },
            OpKind::Resolve { note: note() },
            OpKind::Escalate { reason: note() },
            OpKind::Chase { note: note() },
            OpKind::Verify {
                done: true,
                note: note(),
                photo_ids: vec![],
            },
            OpKind::Rate {
                face: Face::Smiley,
                comment: note(),
            },
            OpKind::Close,
            OpKind::Place {
                grid_id: "g-1".into(),
                note: note(),
            },
        ];
        for kind in kinds {
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["kind"], kind.code(), "{kind:?}");
        }
    }

    #[test]
    fn the_liaoyuan_manhole_runs_its_whole_life() {
        let id = CaseId::new();
        let photo = PhotoId::new();
        let ops = vec![
            create(id),
            op(
                id,
                Role::GridLeader,
                OpKind::AttachPhoto {
                    photo: PhotoRef {
                        id: photo,
                        sha256: "a".repeat(64),
                        bytes: 300_000,
                        width: 1920,
                        height: 1440,
                        thumb_sha256: "b".repeat(64),
                        thumb_bytes: 20_000,
                        captured_at: None,
                        captured_at_point: None,
                    },
                    location: None,
                },
            ),
            op(id, Role::GridLeader, OpKind::Submit),
            op(id, Role::System, OpKind::Receive),
            op(
                id,
                Role::Dispatcher,
                OpKind::Dispatch {
                    department: "市政".into(),
                    deadline: T0 + 2 * crate::time::DAY,
                    note: String::new(),
                },
            ),
            op(
                id,
                Role::System,
                OpKind::Chase {
                    note: "临近时限".into(),
                },
            ),
            op(id, Role::Department, OpKind::Accept),
            op(
                id,
                Role::Department,
                OpKind::Resolve {
                    note: "已修复".into(),
                },
            ),
            op(
                id,
                Role::GridLeader,
                OpKind::Verify {
                    done: true,
                    note: "现场已修好".into(),
                    photo_ids: vec![photo],
                },
            ),
            op(
                id,
                Role::Resident,
                OpKind::Rate {
                    face: Face::Smiley,
                    comment: String::new(),
                },
            ),
            op(id, Role::Dispatcher, OpKind::Close),
        ];
        let case = run(&ops).unwrap();
        assert_eq!(case.status, CaseStatus::Closed);
        assert_eq!(case.department.as_deref(), Some("市政"));
        assert_eq!(case.chase_count, 1);
        assert_eq!(case.photo_ids, vec![photo]);
        assert!(case.verification.unwrap().done);
        assert_eq!(case.rating.unwrap().face, Face::Smiley);
    }

    #[test]
    fn a_frowny_face_reopens_the_case() {
        let id = CaseId::new();
        let case = run(&[
            create(id),
            op(id, Role::GridLeader, OpKind::Submit),
            op(id, Role::System, OpKind::Receive),
            op(
                id,
                Role::Dispatcher,
                OpKind::Dispatch {
                    department: "住建".into(),
                    deadline: T0 + crate::time::DAY,
                    note: String::new(),
                },
            ),
            op(
                id,
                Role::Department,
                OpKind::Resolve {
                    note: String::new(),
                },
            ),
            op(
                id,
                Role::GridLeader,
                OpKind::Verify {
                    done: true,
                    note: String::new(),
                    photo_ids: vec![],
                },
            ),
            op(
                id,
                Role::Resident,
                OpKind::Rate {
                    face: Face::Frowny,
                    comment: "还在漏".into(),
                },
            ),
        ])
        .unwrap();
        assert_eq!(case.status, CaseStatus::Reopened);
    }

    #[test]
    fn verifying_with_a_photo_of_another_case_is_refused() {
        let id = CaseId::new();
        let mut ops = vec![
            create(id),
            op(id, Role::GridLeader, OpKind::Submit),
            op(id, Role::System, OpKind::Receive),
            op(
                id,
                Role::Dispatcher,
                OpKind::Dispatch {
                    department: "住建".into(),
                    deadline: T0 + crate::time::DAY,
                    note: String::new(),
                },
            ),
            op(
                id,
                Role::Department,
                OpKind::Resolve {
                    note: String::new(),
                },
            ),
        ];
        ops.push(op(
            id,
            Role::GridLeader,
            OpKind::Verify {
                done: false,
                note: String::new(),
                photo_ids: vec![PhotoId::new()],
            },
        ));
        let err = run(&ops).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(e) if e.field == "photo_ids"));
    }

    #[test]
    fn submitting_without_a_place_names_the_field() {
        let id = CaseId::new();
        let mut create = create(id);
        if let OpKind::Create { draft } = &mut create.kind {
            draft.location = None;
        }
        let err = run(&[create, op(id, Role::GridLeader, OpKind::Submit)]).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(e) if e.field == "location"));
    }

    #[test]
    fn ops_before_create_are_refused() {
        let err = apply(None, &op(CaseId::new(), Role::GridLeader, OpKind::Submit)).unwrap_err();
        assert_eq!(
            err,
            DomainError::Transition(TransitionError::CaseNotCreated)
        );
    }

    #[test]
    fn ops_travel_as_flat_json() {
        let id = CaseId::new();
        let o = op(
            id,
            Role::Resident,
            OpKind::Rate {
                face: Face::Smiley,
                comment: "好".into(),
            },
        );
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["kind"], "rate");
        assert_eq!(json["face"], "smiley");
        assert_eq!(json["actor"]["role"], "resident");
        let back: Op = serde_json::from_value(json).unwrap();
        assert_eq!(back, o);
    }

    fn photo() -> PhotoRef {
        PhotoRef {
            id: PhotoId::new(),
            sha256: "a".repeat(64),
            bytes: 1,
            width: 1,
            height: 1,
            thumb_sha256: "b".repeat(64),
            thumb_bytes: 1,
            captured_at: None,
            captured_at_point: None,
        }
    }

    #[test]
    fn a_photo_gives_a_draft_its_place_in_the_same_step() {
        let id = CaseId::new();
        let mut create = create(id);
        if let OpKind::Create { draft } = &mut create.kind {
            draft.location = None;
        }
        let from_photo = Location {
            point: GeoPoint::new(42.895, 125.135, None).unwrap(),
            address: None,
            source: LocationSource::PhotoExif,
        };
        let attach = op(
            id,
            Role::GridLeader,
            OpKind::AttachPhoto {
                photo: photo(),
                location: Some(from_photo.clone()),
            },
        );
        let case = run(&[create.clone(), attach.clone()]).unwrap();
        assert_eq!(case.location, Some(from_photo.clone()));
        // A case that has its place keeps it: a second photo does not move it.
        let again = op(
            id,
            Role::GridLeader,
            OpKind::AttachPhoto {
                photo: photo(),
                location: Some(from_photo),
            },
        );
        let err = run(&[create, attach, again]).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(e) if e.field == "location"));
    }

    #[test]
    fn a_step_recorded_before_enrolment_says_so_and_keeps_it() {
        let id = CaseId::new();
        let mut o = create(id);
        o.recorded_before_enrolment_as = Some("grid-leader".into());
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["recorded_before_enrolment_as"], "grid-leader");
        let back: Op = serde_json::from_value(json).unwrap();
        assert_eq!(back, o);
        assert!(apply(None, &o).is_ok());
        o.recorded_before_enrolment_as = Some("bad\u{7}".into());
        let err = apply(None, &o).unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid(e) if e.field == "recorded_before_enrolment_as")
        );
        // Old ops, without the field, read as they always did.
        let plain = serde_json::to_value(create(id)).unwrap();
        assert!(plain.get("recorded_before_enrolment_as").is_none());
    }
}
