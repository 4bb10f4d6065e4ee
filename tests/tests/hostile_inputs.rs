//! The hostile-input catalogue, terminal side: what a broken camera app, a
//! careless paste or a hostile file can hand the core, the typed error each
//! must get (field and reason), and a check that nothing was lost or
//! half-written (case rows, ops and photo files unchanged).
//!
//! The server side is `sync-server/tests/api/hostile.rs`. Inputs already
//! pinned down by a focused test are listed with that test instead of being
//! tested twice:
//!
//! | input | expected | tested in |
//! | --- | --- | --- |
//! | PNG declaring 60000 x 60000 | `PhotoError::TooManyPixels` | here |
//! | JPEG declaring 65000 x 65000 | `PhotoError::TooManyPixels` | here |
//! | over 48 MP / over 40 MB | `TooManyPixels` / `TooLarge`, before decoding | `core/src/photo/tests.rs` `too_many_pixels_is_refused_from_the_header`, `too_large_input_is_refused_before_reading` |
//! | truncated JPEG, truncated PNG | `PhotoError::Corrupt` | here (and `truncated_files_are_corrupt_not_panics`) |
//! | garbage after a JPEG header | `PhotoError::Corrupt` | `garbage_after_a_jpeg_header_is_corrupt_not_a_panic` |
//! | empty file, text, ZIP alone | `Empty` / `NotAnImage` | here (and `empty_input_is_refused`, `not_an_image_is_refused`) |
//! | JPEG + ZIP polyglot, PNG + trailing garbage | accepted as the picture; the re-encoded file carries none of the trailer | here |
//! | control characters in title, description, address, cancel reason, verify note, rating comment | `Invalid { field, "must not contain control characters" }` | here |
//! | line break in the title | `Invalid { title, "must be a single line" }` | here |
//! | 10 MB title / description / address / note / comment | `Invalid { field, "must be at most N characters" }` | here |
//! | invalid UTF-8 in a text field | impossible through the API (`String`); on the wire: `invalid_request` | server catalogue |
//! | latitude / longitude NaN, +inf, -inf, 91, 181; accuracy NaN, negative | `Invalid { location.lat / location.lon / location.accuracy_m }` | here |
//! | proposed deadline in the past, in the year 3000 | `Invalid { proposed_deadline }` | here |
//! | grid map: malformed, deeply nested, NaN-free garbage | `Error::Grid`, the loaded map unchanged | here |

use std::path::Path;

use gridcase_core::case::{CaseDraft, CaseEdit, Category};
use gridcase_core::location::{GeoPoint, Location};
use gridcase_core::photo::PhotoError;
use gridcase_core::terminal::Error;
use gridcase_core::time::{now_millis, DAY};
use gridcase_core::{Case, CaseId, Face, PhotoSource, Terminal, TerminalConfig};
use gridcase_tests::sample_jpeg;

const GRIDS: &str = include_str!("../fixtures/grids/liaoyuan-sample.geojson");

fn terminal(dir: &Path) -> Terminal {
    Terminal::open(dir, TerminalConfig::new("张三")).unwrap()
}

fn draft(title: &str) -> CaseDraft {
    CaseDraft {
        category: Category::CollapsedManhole,
        title: title.into(),
        description: "暴雨后井盖塌陷".into(),
        location: None,
        occurred_at: now_millis(),
        proposed_deadline: Some(now_millis() + DAY),
    }
}

/// Every file under `dir` but the database's own: photo files, leftovers.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().contains(".db") {
                out.push(path.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// What must not change when an input is refused: the case, its timeline and
/// photos, the number of cases, and the files on disk.
struct Snapshot {
    case: Case,
    ops: usize,
    photos: usize,
    cases: u64,
    files: Vec<String>,
}

fn snapshot(t: &Terminal, dir: &Path, id: &CaseId) -> Snapshot {
    let detail = t.case_detail_blocking(id).unwrap();
    Snapshot {
        case: detail.case,
        ops: detail.timeline.len(),
        photos: detail.photos.len(),
        cases: t.store().case_count().unwrap(),
        files: files_under(dir),
    }
}

fn assert_unchanged(t: &Terminal, dir: &Path, id: &CaseId, before: &Snapshot, what: &str) {
    let after = snapshot(t, dir, id);
    assert_eq!(after.case, before.case, "{what}: the case changed");
    assert_eq!(after.ops, before.ops, "{what}: an op was recorded");
    assert_eq!(after.photos, before.photos, "{what}: a photo was attached");
    assert_eq!(after.cases, before.cases, "{what}: a case was created");
    assert_eq!(after.files, before.files, "{what}: files were left behind");
}

fn assert_invalid(
    result: Result<impl std::fmt::Debug, Error>,
    field: &str,
    reason: &str,
    what: &str,
) {
    match result {
        Err(Error::Invalid(e)) => {
            assert_eq!(e.field, field, "{what}: {e}");
            assert!(e.reason.contains(reason), "{what}: {e}");
        }
        other => panic!("{what}: expected Invalid({field}), got {other:?}"),
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A PNG whose header claims `w` x `h` (8-bit RGB), with a tiny IDAT that
/// inflates to far less than that: the shape of a decompression bomb.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of one stored empty block.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A real JPEG whose frame header is rewritten to claim `w` x `h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = sample_jpeg(64, 48, 1);
    let sof = jpeg
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("a baseline JPEG has SOF0");
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

fn small_png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(2u32.to_be_bytes());
    ihdr.extend(1u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // One scanline (filter 0, two red pixels) in a stored zlib block.
    let raw = [0u8, 255, 0, 0, 255, 0, 0];
    let mut z = vec![
        0x78,
        0x01,
        0x01,
        raw.len() as u8,
        0,
        !(raw.len() as u8),
        0xff,
    ];
    z.extend(raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A minimal ZIP (one stored file): what a polyglot hides after an image.
fn zip_trailer() -> Vec<u8> {
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x00\x00".to_vec();
    zip.extend([0u8; 16]);
    zip.extend(b"\x08\x00\x00\x00evil.exe");
    zip.extend(b"PK\x05\x06");
    zip.extend([0u8; 18]);
    zip
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn hostile_photos_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    let case = t.create_case(draft("井盖塌陷"), None).unwrap();
    let jpeg = sample_jpeg(64, 48, 7);
    type Check = fn(&PhotoError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "PNG bomb 60000 x 60000",
            png_claiming(60_000, 60_000),
            |e| {
                matches!(
                    e,
                    PhotoError::TooManyPixels {
                        width: 60_000,
                        height: 60_000,
                        ..
                    }
                )
            },
        ),
        ("JPEG 65000 x 65000", jpeg_claiming(65_000, 65_000), |e| {
            matches!(
                e,
                PhotoError::TooManyPixels {
                    width: 65_000,
                    height: 65_000,
                    ..
                }
            )
        }),
        ("PNG 1 x 4000000000", png_claiming(1, 4_000_000_000), |e| {
            matches!(
                e,
                PhotoError::TooManyPixels { .. } | PhotoError::Corrupt { .. }
            )
        }),
        ("JPEG cut in half", jpeg[..jpeg.len() / 2].to_vec(), |e| {
            matches!(e, PhotoError::Corrupt { .. })
        }),
        ("PNG without its data", small_png()[..40].to_vec(), |e| {
            matches!(e, PhotoError::Corrupt { .. })
        }),
        ("empty", Vec::new(), |e| matches!(e, PhotoError::Empty)),
        ("a ZIP", zip_trailer(), |e| {
            matches!(e, PhotoError::NotAnImage)
        }),
        (
            "text named .jpg",
            "张三家漏水".as_bytes().to_vec(),
            |e| matches!(e, PhotoError::NotAnImage),
        ),
    ];
    let rt = runtime();
    for (what, bytes, expected) in cases {
        let before = snapshot(&t, dir.path(), &case.id);
        let result = rt.block_on(t.add_photo(&case.id, PhotoSource::Bytes(bytes)));
        match result {
            Err(Error::Photo(e)) => assert!(expected(&e), "{what}: got {e:?}"),
            other => panic!("{what}: expected a photo error, got {other:?}"),
        }
        assert_unchanged(&t, dir.path(), &case.id, &before, what);
    }
}

#[test]
fn polyglots_keep_only_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    let case = t.create_case(draft("井盖塌陷"), None).unwrap();
    let rt = runtime();
    let mut jpeg_zip = sample_jpeg(64, 48, 3);
    jpeg_zip.extend(zip_trailer());
    let mut png_garbage = small_png();
    png_garbage.extend(b"<?php system($_GET['c']); ?>".repeat(50));
    for (what, bytes) in [
        ("JPEG + ZIP", jpeg_zip),
        ("PNG + trailing garbage", png_garbage),
    ] {
        let photo = rt
            .block_on(t.add_photo(&case.id, PhotoSource::Bytes(bytes)))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        for path in [&photo.path, &photo.thumb_path] {
            let stored = std::fs::read(path).unwrap();
            assert_eq!(&stored[..2], [0xFF, 0xD8], "{what}: a JPEG");
            assert_eq!(
                &stored[stored.len() - 2..],
                [0xFF, 0xD9],
                "{what}: ends at EOI"
            );
            for needle in [&b"PK\x03\x04"[..], b"<?php", b"evil.exe"] {
                assert!(
                    !stored.windows(needle.len()).any(|w| w == needle),
                    "{what}: the trailer survived"
                );
            }
        }
    }
}

/// Sets one free-text field of a case.
type SetText = fn(&Terminal, &CaseId, &str) -> Result<Case, Error>;

/// Every free-text field a terminal takes, set to `text` by one call.
fn text_field_setters() -> Vec<(&'static str, SetText)> {
    vec![
        ("title", |t, id, s| {
            t.edit_case(
                id,
                CaseEdit {
                    title: Some(s.into()),
                    ..Default::default()
                },
            )
        }),
        ("description", |t, id, s| {
            t.edit_case(
                id,
                CaseEdit {
                    description: Some(s.into()),
                    ..Default::default()
                },
            )
        }),
        ("location.address", |t, id, s| {
            let location = Location {
                point: GeoPoint::new(42.88, 125.14, 10.0).unwrap(),
                address: Some(s.into()),
                source: gridcase_core::location::LocationSource::Typed,
            };
            t.edit_case(
                id,
                CaseEdit {
                    location: Some(Some(location)),
                    ..Default::default()
                },
            )
        }),
        ("reason", |t, id, s| t.cancel_case(id, s)),
    ]
}

#[test]
fn text_fields_refuse_control_characters_and_10_mb() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    // Placed, so that it can be submitted for the later steps' notes.
    let mut placed = draft("井盖塌陷");
    placed.location = Some(Location {
        point: GeoPoint::new(42.88, 125.14, 10.0).unwrap(),
        address: None,
        source: gridcase_core::location::LocationSource::Typed,
    });
    let case = t.create_case(placed, None).unwrap();
    let ten_mb = "井".repeat(10 * 1024 * 1024 / 3);
    let hostile: [(&str, String, &str); 5] = [
        ("NUL", "井盖\0塌陷".into(), "control characters"),
        (
            "escape sequence",
            "\u{1b}[2J\u{1b}[31m井盖".into(),
            "control characters",
        ),
        (
            "DEL and C1",
            "井盖\u{7f}\u{85}".into(),
            "control characters",
        ),
        ("bell", "\u{7}".repeat(3) + "井盖", "control characters"),
        ("10 MB", ten_mb.clone(), "at most"),
    ];
    for (field, set) in text_field_setters() {
        for (kind, text, reason) in &hostile {
            let before = snapshot(&t, dir.path(), &case.id);
            let what = format!("{field} with {kind}");
            assert_invalid(set(&t, &case.id, text), field, reason, &what);
            assert_unchanged(&t, dir.path(), &case.id, &before, &what);
        }
    }
    // A title is one line; a new case with a hostile title is no case at all.
    let before = snapshot(&t, dir.path(), &case.id);
    assert_invalid(
        t.create_case(draft("井盖\n塌陷"), None),
        "title",
        "single line",
        "title",
    );
    assert_invalid(
        t.create_case(draft(&ten_mb), None),
        "title",
        "at most",
        "10 MB title",
    );
    assert_unchanged(&t, dir.path(), &case.id, &before, "new case");

    // The notes of later steps: verify's note and the resident's comment.
    t.submit_case(&case.id).unwrap();
    let before = snapshot(&t, dir.path(), &case.id);
    for (kind, text, reason) in &hostile {
        let what = format!("rating comment with {kind}");
        assert_invalid(
            t.rate_case(&case.id, Face::Frowny, text),
            "comment",
            reason,
            &what,
        );
        let what = format!("verify note with {kind}");
        assert_invalid(
            t.verify_case(&case.id, true, text, Vec::new(), None),
            "note",
            reason,
            &what,
        );
        assert_unchanged(&t, dir.path(), &case.id, &before, &what);
    }
}

#[test]
fn coordinates_must_be_finite_and_on_earth() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    t.load_grids(GRIDS).unwrap();
    let case = t.create_case(draft("井盖塌陷"), None).unwrap();
    let bad: [(f64, f64, f64, &str, &str); 10] = [
        (f64::NAN, 125.0, 5.0, "location.lat", "finite"),
        (f64::INFINITY, 125.0, 5.0, "location.lat", "finite"),
        (f64::NEG_INFINITY, 125.0, 5.0, "location.lat", "finite"),
        (91.0, 125.0, 5.0, "location.lat", "between"),
        (-90.5, 125.0, 5.0, "location.lat", "between"),
        (42.9, f64::NAN, 5.0, "location.lon", "finite"),
        (42.9, 181.0, 5.0, "location.lon", "between"),
        (42.9, f64::NEG_INFINITY, 5.0, "location.lon", "finite"),
        (42.9, 125.0, f64::NAN, "location.accuracy_m", "finite"),
        (42.9, 125.0, -1.0, "location.accuracy_m", "negative"),
    ];
    for (lat, lon, acc, field, reason) in bad {
        let what = format!("({lat}, {lon}) ±{acc}");
        let point = GeoPoint {
            lat,
            lon,
            accuracy_m: Some(acc),
        };
        let before = snapshot(&t, dir.path(), &case.id);
        let location = Location {
            point,
            address: None,
            source: gridcase_core::location::LocationSource::Typed,
        };
        assert_invalid(
            t.edit_case(
                &case.id,
                CaseEdit {
                    location: Some(Some(location.clone())),
                    ..Default::default()
                },
            ),
            field,
            reason,
            &what,
        );
        let mut new = draft("井盖塌陷");
        new.location = Some(location);
        assert_invalid(t.create_case(new, None), field, reason, &what);
        assert_invalid(
            t.create_case(draft("井盖塌陷"), Some(point)),
            field,
            reason,
            &what,
        );
        assert_invalid(t.grid_of(&point), field, reason, &what);
        assert_unchanged(&t, dir.path(), &case.id, &before, &what);
    }
}

#[test]
fn deadlines_in_the_past_or_the_year_3000_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    let case = t.create_case(draft("井盖塌陷"), None).unwrap();
    let year_3000 = 32_503_680_000_000;
    for (what, deadline, reason) in [
        ("yesterday", now_millis() - DAY, "in the future"),
        ("the epoch", 0, "in the future"),
        ("i64::MIN", i64::MIN, "in the future"),
        ("the year 3000", year_3000, "within"),
        ("i64::MAX", i64::MAX, "within"),
    ] {
        let before = snapshot(&t, dir.path(), &case.id);
        let mut new = draft("井盖塌陷");
        new.proposed_deadline = Some(deadline);
        assert_invalid(t.create_case(new, None), "proposed_deadline", reason, what);
        let edit = CaseEdit {
            proposed_deadline: Some(Some(deadline)),
            ..Default::default()
        };
        assert_invalid(
            t.edit_case(&case.id, edit),
            "proposed_deadline",
            reason,
            what,
        );
        assert_unchanged(&t, dir.path(), &case.id, &before, what);
    }
}

#[test]
fn a_hostile_grid_map_is_refused_and_the_loaded_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let t = terminal(dir.path());
    let units = t.load_grids(GRIDS).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_coordinates = format!(
        r#"{{"type": "FeatureCollection", "features": [{{"type": "Feature",
            "properties": {{"id": "g", "name": "g", "level": "grid", "parent": null}},
            "geometry": {{"type": "Polygon", "coordinates": {}1{}}}}}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let self_parent = r#"{"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "g", "name": "g", "level": "grid", "parent": "g"},
         "geometry": {"type": "Polygon", "coordinates": [[[125, 42], [126, 42], [126, 43], [125, 42]]]}}]}"#;
    let huge_coordinate = GRIDS.replacen("125.", "1e400", 1);
    for (what, text) in [
        (
            "not JSON",
            "{\"type\": \"FeatureCollection\", \"features\": [",
        ),
        ("100k [", deep.as_str()),
        ("deep coordinates", deep_coordinates.as_str()),
        ("its own parent", self_parent),
        ("1e400", huge_coordinate.as_str()),
        ("empty", ""),
    ] {
        let result = t.load_grids(text);
        assert!(matches!(result, Err(Error::Grid(_))), "{what}: {result:?}");
        assert_eq!(t.grids().len(), units, "{what}: the loaded map changed");
    }
}
