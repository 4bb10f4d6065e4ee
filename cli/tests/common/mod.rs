//! Running the `gridcase` binary the way a person does, and reading what it
//! printed.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gridcase")
}

/// `gridcase --data DATA ARGS…` in `cwd`, with the language and actor the
/// environment would give (none: the defaults).
pub fn gridcase_in(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(cwd)
        .env_remove("GRIDCASE_LANG")
        .env_remove("GRIDCASE_ACTOR")
        .env_remove("GRIDCASE_SERVER")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("running gridcase")
}

pub fn gridcase(data: &Path, args: &[&str]) -> Output {
    gridcase_in(data.parent().unwrap_or(data), data, args)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command succeeded; its standard output.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "gridcase failed ({}): {}{}",
        o.status,
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

pub fn ok_json(o: Output) -> Value {
    let text = ok(o);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Records and submits the collapsed manhole of the brief in grid
/// 220402001001-G01, as a grid leader types it; the case's id.
pub fn submitted_manhole_case(data: &Path) -> String {
    let case = ok_json(gridcase(
        data,
        &[
            "new",
            "--category",
            "collapsed_manhole",
            "--title",
            "井盖塌陷",
            "--lat",
            "42.895",
            "--lon",
            "125.135",
            "--deadline-hours",
            "48",
            "--submit",
            "--json",
        ],
    ));
    case["id"]
        .as_str()
        .expect("new printed the case's id")
        .to_string()
}

/// The command failed with status 1; its error line.
pub fn refused(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a refusal, got {}: {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A small camera-like JPEG.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 200) as u8 + 30, (y % 200) as u8, 120])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// Whether `text` shows a time with a `Z` (UTC) as the terminal used to.
pub fn has_utc_times(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(6).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
            && w[5] == b'Z'
    })
}

/// The first whole case id (a UUID) in `text`.
pub fn first_uuid(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    for i in 0..chars.len().saturating_sub(35) {
        let s: String = chars[i..i + 36].iter().collect();
        if uuid_like(&s) {
            return Some(s);
        }
    }
    None
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}
