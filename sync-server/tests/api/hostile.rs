//! The hostile-input catalogue, server side: each input with the answer it
//! must get (code, field, reason) and a check that nothing was stored or left
//! on disk. The terminal side is `tests/tests/hostile_inputs.rs`. Inputs that
//! a focused test already pins down are listed with it, not tested twice:
//!
//! | input | expected | tested in |
//! | --- | --- | --- |
//! | malformed JSON, trailing garbage, wrong types | 400 `invalid_request`, JSON path in `field` | `limits::malformed_requests_get_clear_errors_and_change_nothing` |
//! | 100k `[` (body and inside one op) | 400 "nested too deeply" / the op alone `invalid_input` | `limits::malformed_requests_…`, `error::tests::deep_nesting_and_trailing_garbage_are_refused` |
//! | body over 4 MB, more than `MAX_PUSH_OPS` ops, 100 kB enrol body | 413 `too_large` | `limits::bodies_are_bounded` |
//! | photo upload past `MAX_PHOTO_BYTES`, past `total` | 413 / 400 `invalid_request` | `photos::upload_sizes_are_bounded` |
//! | photo whose bytes do not match its hash | 422 `photo_hash_mismatch`, bytes discarded | `photos::bytes_that_do_not_match_the_hash_are_discarded` |
//! | photo ref whose size lies | op `invalid_input` | `push::a_photo_ref_whose_size_lies_is_rejected` |
//! | photo name `../../etc/passwd`, `%2e%2e`, `%00`, upper case | 400 `invalid_request` `sha256` / 404, no file | `photos::a_name_that_is_not_a_sha_never_reaches_the_file_system` |
//! | no token, wrong token, revoked token replayed | 401 `unauthorised` | `enrol_auth::requests_need_a_valid_unrevoked_token` |
//! | op for a case in another grid | op `not_visible` | `push::ops_on_cases_outside_the_device_grids_are_not_visible` |
//! | op id of another device's op | op `duplicate_op_id` | `push::an_op_id_taken_by_another_device_is_refused` |
//! | actor not the device's account, centre roles | op `forbidden` | `push::a_device_acts_only_as_its_own_account_and_terminal_roles` |
//! | control characters, lone surrogates, 10 MB in every text field of a pushed op | op `invalid_input`, reason starts with the field | here |
//! | invalid UTF-8 bytes in the body | 400 `invalid_request` | here |
//! | NaN / ±inf as JSON, lat 91, lon 181, accuracy < 0 in an op | 400 / op `invalid_input` `location.*` | here |
//! | deadline in the year 3000, before 2000 | op `invalid_input` `proposed_deadline` | here |
//! | device name with control characters, 10 kB, `../../etc/passwd` | 400 `invalid_request` `device_name` / stored as text, never a path | here |
//! | Open311 lat / long NaN, inf, -inf, 91, 181, text | spec error naming `lat` / `long`, no case | here |
//! | Open311 description / address / title with control characters or 10 MB | spec error naming the field / 413, no case | here |
//! | export `unit=../../etc/passwd`, `%2e%2e`, `%00` | 400 `invalid_request` `unit` | here |

use gridcase_core::ids::CaseId;
use gridcase_core::op::OpKind;
use gridcase_core::protocol::{PushStatus, SyncResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

async fn post_sync(
    server: &Server,
    dev: &Device,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let req = server
        .http
        .post(server.url("/v1/sync"))
        .bearer_auth(&dev.token)
        .header("content-type", "application/json")
        .body(body);
    server.send(req).await
}

/// Nothing stored and nothing left in the data folder's file areas.
fn assert_nothing_written(server: &Server, cases: usize, what: &str) {
    assert_eq!(
        server.admin().list_cases().unwrap().len(),
        cases,
        "{what}: a case was stored"
    );
    for area in ["uploads", "photos"] {
        let n = std::fs::read_dir(server.dir.path().join(area))
            .unwrap()
            .count();
        assert_eq!(n, 0, "{what}: files left in {area}");
    }
}

/// Pushes one op given as JSON and expects it rejected as `invalid_input`
/// with a reason about `field`.
async fn assert_op_refused(server: &Server, dev: &Device, op: Value, field: &str, what: &str) {
    let (status, resp) = post_sync(server, dev, json!({ "push": [op] }).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{what}: {resp}");
    let resp: SyncResponse = serde_json::from_value(resp).unwrap();
    assert_eq!(resp.results[0].status, PushStatus::Rejected, "{what}");
    assert_eq!(
        resp.results[0].code.as_deref(),
        Some("invalid_input"),
        "{what}"
    );
    let reason = resp.results[0].reason.as_deref().unwrap();
    assert!(reason.contains(field), "{what}: {reason}");
}

#[tokio::test]
async fn every_text_field_of_a_pushed_op_refuses_hostile_text() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let id = CaseId::new();
    assert_accepted(
        &server
            .push(&dev, &[create(&dev, id, Some(in_g1())), submit(&dev, id)])
            .await,
    );
    let ten_mb_ish = "井".repeat(1_300_000);
    // (what, text): text as a JSON string literal, escapes included.
    let hostile = [
        ("NUL", json!("井盖\u{0}塌陷")),
        ("escape sequence", json!("\u{1b}[2J井盖")),
        ("C1 control", json!("井盖\u{85}")),
        ("near 4 MB", json!(ten_mb_ish)),
    ];
    let new_case =
        |dev: &Device| serde_json::to_value(create(dev, CaseId::new(), Some(in_g1()))).unwrap();
    for (kind, text) in &hostile {
        // (field, op with the text in it)
        let mut title = new_case(&dev);
        title["draft"]["title"] = text.clone();
        let mut description = new_case(&dev);
        description["draft"]["description"] = text.clone();
        let mut address = new_case(&dev);
        address["draft"]["location"]["address"] = text.clone();
        let mut cancel =
            serde_json::to_value(op(&dev, id, OpKind::Cancel { reason: "x".into() })).unwrap();
        cancel["reason"] = text.clone();
        let mut rate = serde_json::to_value(rate(&dev, id, gridcase_core::Face::Frowny)).unwrap();
        rate["comment"] = text.clone();
        let mut verify = serde_json::to_value(verify(&dev, id, true)).unwrap();
        verify["note"] = text.clone();
        for (field, op) in [
            ("title", title),
            ("description", description),
            ("location.address", address),
            ("reason", cancel),
            ("comment", rate),
            ("note", verify),
        ] {
            assert_op_refused(&server, &dev, op, field, &format!("{field} with {kind}")).await;
        }
    }
    // A lone surrogate is not Unicode: the op does not parse, and is refused alone.
    let mut surrogate = new_case(&dev).to_string();
    surrogate = surrogate.replacen("\"title\":\"", "\"title\":\"\\ud800", 1);
    let surrogate: Box<serde_json::value::RawValue> =
        serde_json::value::RawValue::from_string(surrogate).unwrap();
    let (status, resp) = post_sync(
        &server,
        &dev,
        format!(r#"{{"push": [{}]}}"#, surrogate.get()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["results"][0]["status"], "rejected", "{resp}");
    assert_eq!(resp["results"][0]["code"], "invalid_input", "{resp}");
    // Bytes that are not UTF-8 at all: the body is refused.
    let mut body = br#"{"push": [], "history": ""#.to_vec();
    body.extend([0xC3, 0x28, 0xFF, 0xFE]);
    body.extend(br#""}"#);
    let (status, err) = post_sync(&server, &dev, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["code"], "invalid_request");
    assert_nothing_written(&server, 1, "hostile text");
}

#[tokio::test]
async fn coordinates_and_deadlines_out_of_this_world_are_refused() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let new_case = || serde_json::to_value(create(&dev, CaseId::new(), Some(in_g1()))).unwrap();
    for (path, value, field) in [
        ("lat", json!(91.0), "location.lat"),
        ("lat", json!(-1e308), "location.lat"),
        ("lon", json!(181.0), "location.lon"),
        ("accuracy_m", json!(-5.0), "location.accuracy_m"),
    ] {
        let mut op = new_case();
        op["draft"]["location"]["point"][path] = value.clone();
        assert_op_refused(&server, &dev, op, field, &format!("draft {path} = {value}")).await;
        let mut op = new_case();
        op["at"] = json!({"lat": 42.87, "lon": 125.07, "accuracy_m": 5.0});
        op["at"][path] = value.clone();
        assert_op_refused(&server, &dev, op, field, &format!("op at {path} = {value}")).await;
    }
    // JSON has no NaN or infinity: such a body is not JSON; 1e400 overflows.
    for literal in ["NaN", "Infinity", "-Infinity", "1e400"] {
        let op =
            new_case()
                .to_string()
                .replacen("\"lat\":", &format!("\"lat\":{literal},\"x\":"), 1);
        let (status, resp) = post_sync(&server, &dev, format!(r#"{{"push": [{op}]}}"#)).await;
        let refused = status == StatusCode::BAD_REQUEST
            || (status == StatusCode::OK && resp["results"][0]["code"] == "invalid_input");
        assert!(refused, "{literal}: {status} {resp}");
    }
    let year_3000: i64 = 32_503_680_000_000;
    for (what, deadline) in [
        ("the year 3000", year_3000),
        ("1970", 0),
        ("i64::MAX", i64::MAX),
    ] {
        let mut op = new_case();
        op["draft"]["proposed_deadline"] = json!(deadline);
        assert_op_refused(&server, &dev, op, "proposed_deadline", what).await;
    }
    assert_nothing_written(&server, 0, "coordinates and deadlines");
}

#[tokio::test]
async fn device_names_are_checked_text_never_paths() {
    let server = Server::start().await;
    for (what, name) in [
        ("NUL", "终端\u{0}".to_string()),
        ("escape", "\u{1b}[31m终端".to_string()),
        ("empty", "   ".to_string()),
        ("10 kB", "终".repeat(10_000)),
    ] {
        let (_, code) = server.new_code("张三", &["g-1"]);
        let resp = server.enrol(&code, &name).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "invalid_request", "{what}");
        assert_eq!(err["field"], "device_name", "{what}");
    }
    assert!(server.admin().list_devices().unwrap().is_empty());
    // A name that looks like a path is a name: stored as typed, no file made.
    let (_, code) = server.new_code("李四", &["g-1"]);
    let resp = server.enrol(&code, "../../etc/passwd").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let devices = server.admin().list_devices().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_name, "../../etc/passwd");
    assert_nothing_written(&server, 0, "device names");
}

/// Form fields of an Open311 POST.
type Form = Vec<(String, String)>;

#[tokio::test]
async fn open311_posts_with_hostile_fields_file_nothing() {
    let server = Server::start().await;
    let key = server
        .admin()
        .issue_open311_key("市民热线 App")
        .unwrap()
        .api_key;
    let base = |k: &'static str, v: String| -> Form {
        let mut form: Form = [
            ("api_key", key.clone()),
            ("service_code", "collapsed_manhole".to_string()),
            ("lat", "42.87".to_string()),
            ("long", "125.07".to_string()),
            ("description", "井盖塌陷".to_string()),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .filter(|(a, _)| a != k)
        .collect();
        form.push((k.to_string(), v));
        form
    };
    let mut cases: Vec<(Form, StatusCode, &str)> = Vec::new();
    for v in ["NaN", "inf", "-inf", "91", "1e400", "北纬"] {
        cases.push((base("lat", v.into()), StatusCode::BAD_REQUEST, "lat"));
    }
    for v in ["nan", "-Infinity", "181", "0x10"] {
        cases.push((base("long", v.into()), StatusCode::BAD_REQUEST, "long"));
    }
    for (field, open311) in [
        ("description", "description"),
        ("address_string", "address_string"),
        ("attribute[title]", "attribute[title]"),
    ] {
        cases.push((
            base(field, "井盖\u{0}塌陷".into()),
            StatusCode::BAD_REQUEST,
            open311,
        ));
        cases.push((
            base(field, "\u{1b}[2J".into()),
            StatusCode::BAD_REQUEST,
            open311,
        ));
    }
    cases.push((
        base("description", "井".repeat(4_000_000)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "",
    ));
    for (form, expected, field) in cases {
        let resp = server
            .http
            .post(server.url("/open311/v2/requests.json"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let what = format!(
            "{:?}",
            form.last()
                .map(|(k, v)| (k, v.chars().take(12).collect::<String>()))
        );
        assert_eq!(status, expected, "{what}: {body}");
        let description = body[0]["description"].as_str().unwrap_or_default();
        assert!(description.starts_with(field), "{what}: {description}");
    }
    assert_nothing_written(&server, 0, "open311");
}

#[tokio::test]
async fn export_unit_ids_are_looked_up_never_joined_to_paths() {
    let server = Server::start().await;
    // Exports are for staff: a city supervisor may ask for any unit.
    let cookie = crate::centre_support::supervisor_cookie(&server, "c-1").await;
    for unit in [
        "../../etc/passwd",
        "%2e%2e%2f%2e%2e",
        "%00",
        "g-1%00.csv",
        "..\\..\\boot.ini",
    ] {
        for file in ["cases.csv", "cases.geojson"] {
            let path = format!("/v1/export/{file}?unit={unit}");
            let (status, body) = server
                .send(server.http.get(server.url(&path)).header("cookie", &cookie))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["code"], "invalid_request", "{path}: {body}");
            assert_eq!(body["field"], "unit", "{path}: {body}");
        }
    }
    assert_nothing_written(&server, 0, "export");
}
