//! Errors as the person at the keyboard reads them: the flag they typed
//! (`--deadline-hours`, `--lat`, `--photo scene.jpg`), not the core's field
//! names (`proposed_deadline`, `location.lat`), and each cause once.

use std::collections::HashMap;
use std::path::PathBuf;

use gridcase_core::error::InvalidInput;
use gridcase_core::store::StoreError;
use gridcase_core::sync::SyncError;
use gridcase_core::terminal::Error as TerminalError;

use crate::Command;

/// Which flag of the command stands for which field of the core.
#[derive(Default)]
pub struct Flags {
    fields: HashMap<&'static str, String>,
    /// The files given to `--photo` (or as arguments), in order.
    photos: Vec<PathBuf>,
    photo_flag: &'static str,
}

impl Flags {
    pub fn of(command: &Command) -> Flags {
        let mut f = Flags {
            photo_flag: "--photo",
            ..Flags::default()
        };
        let place = [
            ("location.lat", "--lat"),
            ("location.lon", "--lon"),
            ("location.accuracy_m", "--accuracy"),
            ("location.address", "--address"),
        ];
        let case_arg = [("case_id", "<case>")];
        match command {
            Command::New(a) => {
                f.set(&place);
                f.set(&[
                    ("title", "--title"),
                    ("description", "--description"),
                    ("occurred_at", "--minutes-ago"),
                    ("category", "--category"),
                ]);
                f.fields
                    .insert("proposed_deadline", a.deadline.flag().into());
                f.fields.insert("deadline", a.deadline.flag().into());
                let submit = if a.submit {
                    "--submit needs a place: give --lat and --lon, or a --photo with GPS"
                } else {
                    "--lat/--lon"
                };
                f.fields.insert("location", submit.into());
                f.photos = a.photos.clone();
            }
            Command::Edit(a) => {
                f.set(&place);
                f.set(&case_arg);
                f.set(&[
                    ("title", "--title"),
                    ("description", "--description"),
                    ("category", "--category"),
                ]);
                f.fields
                    .insert("proposed_deadline", a.deadline.flag().into());
                f.fields.insert("deadline", a.deadline.flag().into());
            }
            Command::Photo { files, .. } => {
                f.set(&case_arg);
                f.photos = files.clone();
                f.photo_flag = "photo";
            }
            Command::Submit { .. } => {
                f.set(&case_arg);
                f.fields.insert(
                    "location",
                    "the case has no place yet: `gridcase edit --lat … --lon …` first".into(),
                );
            }
            Command::Cancel { .. } => {
                f.set(&case_arg);
                f.set(&[("reason", "--reason")]);
            }
            Command::Verify(a) => {
                f.set(&case_arg);
                f.set(&[
                    ("note", "--note"),
                    ("photo_id", "--photo-id"),
                    ("photo_ids", "--photo-id"),
                ]);
                f.photos = a.photos.clone();
            }
            Command::Rate(_) => {
                f.set(&case_arg);
                f.set(&[("comment", "--comment")]);
            }
            Command::List(_) => {
                f.set(&[
                    ("text", "--text"),
                    ("page_token", "--page"),
                    ("page_size", "--page-size"),
                ]);
            }
            Command::Enrol { .. } => {
                f.set(&[
                    ("server_url", "--server"),
                    ("code", "--code"),
                    ("device_name", "--device-name"),
                ]);
            }
            Command::Grids(_) => f.set(&[("location.lat", "<lat>"), ("location.lon", "<lon>")]),
            Command::Show { .. } | Command::Resend { .. } | Command::RatingLink { .. } => {
                f.set(&case_arg)
            }
            _ => {}
        }
        f
    }

    fn set(&mut self, pairs: &[(&'static str, &str)]) {
        for (field, flag) in pairs {
            self.fields.insert(field, flag.to_string());
        }
    }

    fn invalid(&self, e: &InvalidInput) -> String {
        match self.fields.get(e.field) {
            // A whole sentence (say, what --submit needs) stands for itself.
            Some(flag) if flag.contains(' ') => format!("{flag} ({})", e.reason),
            Some(flag) => format!("{flag}: {}", e.reason),
            None => e.to_string(),
        }
    }

    fn photo(&self, index: usize) -> String {
        match self.photos.get(index) {
            Some(p) => format!("{} {}", self.photo_flag, p.display()),
            None => format!("photo {}", index + 1),
        }
    }
}

/// The words of one error in the chain, with flags for fields; `None` to
/// use its own text.
fn explain(cause: &(dyn std::error::Error + 'static), flags: &Flags) -> Option<String> {
    if let Some(e) = cause.downcast_ref::<InvalidInput>() {
        return Some(flags.invalid(e));
    }
    if let Some(e) = cause.downcast_ref::<TerminalError>() {
        return match e {
            TerminalError::Invalid(i) => Some(flags.invalid(i)),
            TerminalError::PhotoIn { index, error } => {
                Some(format!("{}: {error}", flags.photo(*index)))
            }
            TerminalError::Photo(error) if flags.photos.len() == 1 => {
                Some(format!("{}: {error}", flags.photo(0)))
            }
            TerminalError::Ambiguous { what, candidates } => Some(format!(
                "<{what}>: fits {} {what}s ({}); type more of the id",
                candidates.len(),
                candidates.join(", ")
            )),
            _ => None,
        };
    }
    if let Some(StoreError::Invalid(i)) = cause.downcast_ref::<StoreError>() {
        return Some(flags.invalid(i));
    }
    if let Some(SyncError::Store(StoreError::Invalid(i))) = cause.downcast_ref::<SyncError>() {
        return Some(flags.invalid(i));
    }
    None
}

/// The whole error on one line: each cause once (a cause whose words are
/// already in the line is left out), fields said as the flags typed.
pub fn render(err: &anyhow::Error, flags: &Flags) -> String {
    let mut line = String::new();
    let mut said: Vec<String> = Vec::new();
    for cause in err.chain() {
        let own = cause.to_string();
        if said.iter().any(|s| s.contains(&own)) || line.contains(&own) {
            continue;
        }
        let text = explain(cause, flags).unwrap_or_else(|| own.clone());
        said.push(own);
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        // An explained cause says all: what follows it is its own detail.
        if explain(cause, flags).is_some() {
            break;
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let photo = gridcase_core::photo::PhotoError::Io(io);
        let err = anyhow::Error::new(TerminalError::PhotoIn {
            index: 0,
            error: photo,
        });
        let flags = Flags {
            photos: vec!["scene.jpg".into()],
            photo_flag: "--photo",
            ..Flags::default()
        };
        let text = render(&err, &flags);
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert!(text.starts_with("--photo scene.jpg: "), "{text}");
    }
}
