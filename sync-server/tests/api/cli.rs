//! The binary as an admin runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::common::GRIDS;

fn server_cmd(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridcase-server"));
    cmd.env("GRIDCASE_DATA_DIR", data_dir)
        .env("GRIDCASE_LOG", "info");
    cmd
}

fn run(data_dir: &std::path::Path, args: &[&str]) -> String {
    let out = server_cmd(data_dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_binary_serves_and_its_admin_commands_work_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let grids = dir.path().join("grids.geojson");
    std::fs::write(&grids, GRIDS).unwrap();
    let data = dir.path().join("data");

    let mut child = server_cmd(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Admin commands against the running server's database.
    let imported = run(
        &data,
        &["admin", "import-grids", grids.to_str().unwrap(), "--json"],
    );
    let imported: serde_json::Value = serde_json::from_str(&imported).unwrap();
    assert_eq!(imported["units"], 7);
    let leader = run(
        &data,
        &[
            "admin",
            "create-leader",
            "--name",
            "张三",
            "--grid",
            "g-1",
            "--grid",
            "g-2",
            "--json",
        ],
    );
    let leader: serde_json::Value = serde_json::from_str(&leader).unwrap();
    let code = leader["code"].as_str().unwrap();
    assert_eq!(leader["grid_ids"], serde_json::json!(["g-1", "g-2"]));
    let human = run(
        &data,
        &["admin", "create-leader", "--name", "李四", "--grid", "g-1"],
    );
    assert!(human.contains("enrolment code"), "{human}");

    let enrolled = http
        .post(format!("{url}/v1/enrol"))
        .json(&serde_json::json!({"code": code, "device_name": "终端"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), StatusCode::OK);
    let enrolled: serde_json::Value = enrolled.json().await.unwrap();
    let device_id = enrolled["device_id"].as_str().unwrap();

    let devices: serde_json::Value =
        serde_json::from_str(&run(&data, &["admin", "list-devices", "--json"])).unwrap();
    assert_eq!(devices[0]["device_id"], device_id);
    run(&data, &["admin", "revoke-device", device_id]);
    let grids_resp = http
        .get(format!("{url}/v1/grids"))
        .bearer_auth(enrolled["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(grids_resp.status(), StatusCode::UNAUTHORIZED);
    let cases: serde_json::Value =
        serde_json::from_str(&run(&data, &["admin", "list-cases", "--json"])).unwrap();
    assert_eq!(cases, serde_json::json!([]));

    // A bad command fails with a message, not a panic.
    let out = server_cmd(&data)
        .args([
            "admin",
            "dispatch",
            "not-a-case",
            "--department",
            "市政",
            "--deadline-hours",
            "4",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));

    // SIGTERM stops it cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(waited < Duration::from_secs(10), "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn open311_keys_and_exports_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let grids = dir.path().join("grids.geojson");
    std::fs::write(&grids, GRIDS).unwrap();
    let data = dir.path().join("data");
    run(&data, &["admin", "import-grids", grids.to_str().unwrap()]);

    let issued: serde_json::Value = serde_json::from_str(&run(
        &data,
        &["admin", "open311-key", "--name", "热线", "--json"],
    ))
    .unwrap();
    let key_id = issued["key_id"].as_str().unwrap();
    assert!(issued["api_key"].as_str().unwrap().starts_with("o311_"));
    let listed = run(&data, &["admin", "list-open311-keys"]);
    assert!(listed.contains(key_id) && listed.contains("active"));
    assert!(!listed.contains(issued["api_key"].as_str().unwrap()));
    assert!(run(&data, &["admin", "revoke-open311-key", key_id]).contains("revoked"));

    let out = dir.path().join("cases.csv");
    let said = run(
        &data,
        &[
            "admin",
            "export-cases",
            "--format",
            "csv",
            "--unit",
            "t-1",
            "--from",
            "2025-01-01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(said.starts_with("0 cases written"), "{said}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("\u{feff}case_id,status,"));
    let refused = server_cmd(&data)
        .args([
            "admin",
            "export-cases",
            "--format",
            "geojson",
            "--from",
            "someday",
            "--out",
        ])
        .arg(dir.path().join("x.geojson"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--from"));
    assert!(!dir.path().join("x.geojson").exists());
}

/// The binary run against `data`, answering (success, stdout, stderr).
fn try_run(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = server_cmd(data_dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_commands_refuse_what_does_not_exist_as_the_dashboard_does() {
    use crate::common::{in_g1, reported_case, Server};
    let server = Server::start().await;
    let data = server.dir.path().to_path_buf();
    let dev = server.leader("张三", &["g-1"]).await;
    let case = reported_case(&server, &dev, in_g1()).await.to_string();
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&run(&data, args)).unwrap() };
    let municipal = json(&[
        "admin",
        "create-department",
        "--name",
        "市政",
        "--unit",
        "t-1",
        "--json",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(
        &data,
        &[
            "admin",
            "create-department",
            "--name",
            "别区水务",
            "--unit",
            "t-2",
        ],
    );
    let status = || json(&["admin", "list-cases", "--json"])[0]["status"].clone();

    // A department that does not exist: refused by the flag, nothing written.
    let (ok, _, err) = try_run(
        &data,
        &[
            "admin",
            "dispatch",
            &case,
            "--department",
            "环保",
            "--deadline-hours",
            "24",
        ],
    );
    assert!(!ok);
    assert!(err.contains("--department: no department"), "{err}");
    assert_eq!(status(), "received");
    // One that does not serve the case's area, or a deadline already past.
    let (ok, _, err) = try_run(
        &data,
        &[
            "admin",
            "dispatch",
            &case,
            "--department",
            "别区水务",
            "--deadline-hours",
            "24",
        ],
    );
    assert!(
        !ok && err.contains("--department: the department does not serve"),
        "{err}"
    );
    let (ok, _, err) = try_run(
        &data,
        &[
            "admin",
            "dispatch",
            &case,
            "--department",
            "市政",
            "--deadline",
            "2020-01-01 08:00",
        ],
    );
    assert!(
        !ok && err.contains("--deadline: must be in the future"),
        "{err}"
    );
    // An unknown case, whole or by its first characters.
    let (ok, _, err) = try_run(
        &data,
        &["admin", "chase", "0190aaaa-0000-7000-8000-000000000000"],
    );
    assert!(!ok && err.contains("CASE_ID: no case has this id"), "{err}");
    assert_eq!(status(), "received");

    // By name or by id, and by the case id's first characters: stored by id.
    run(
        &data,
        &[
            "admin",
            "dispatch",
            &case[..8],
            "--department",
            "市政",
            "--deadline-hours",
            "24",
        ],
    );
    let listed = json(&["admin", "list-cases", "--json"]);
    assert_eq!(listed[0]["status"], "dispatched");
    assert_eq!(listed[0]["department"], municipal.as_str());
    assert_eq!(listed[0]["department_name"], "市政");
    run(
        &data,
        &[
            "admin",
            "dispatch",
            &case,
            "--department",
            &municipal,
            "--deadline-hours",
            "48",
        ],
    );
    assert!(run(&data, &["admin", "list-cases"]).contains("dept 市政"));
    let resolved = run(&data, &["admin", "resolve", &case, "--note", "已修复"]);
    assert!(resolved.contains("resolved"), "{resolved}");

    // Units, grids, departments, logins and accounts are checked the same way.
    let (ok, _, err) = try_run(
        &data,
        &[
            "admin",
            "create-leader",
            "--name",
            "李四",
            "--grid",
            "nowhere",
        ],
    );
    assert!(!ok && err.contains("--grid:"), "{err}");
    let staff = |args: &[&str]| {
        let out = server_cmd(&data)
            .env("GRIDCASE_STAFF_PASSWORD", "centre-test-password")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = staff(&[
        "admin",
        "create-staff",
        "--login",
        "x1",
        "--name",
        "某",
        "--role",
        "department",
        "--department",
        "环保",
    ]);
    assert!(!ok && err.contains("--department: no department"), "{err}");
    let (ok, err) = staff(&[
        "admin",
        "create-staff",
        "--login",
        "shizheng",
        "--name",
        "市政小李",
        "--role",
        "department",
        "--department",
        "市政",
    ]);
    assert!(ok, "a department by its name: {err}");
    let listed = json(&["admin", "list-staff", "--json"]);
    assert_eq!(listed[0]["department_id"], municipal.as_str());
    let (ok, err) = staff(&[
        "admin",
        "create-staff",
        "--login",
        "wang",
        "--name",
        "王",
        "--role",
        "dispatcher",
        "--unit",
        "nowhere",
    ]);
    assert!(!ok && err.contains("--unit:"), "{err}");
    let (ok, _, err) = try_run(&data, &["admin", "new-code", "no-such-account"]);
    assert!(!ok && err.contains("ACCOUNT_ID: no account"), "{err}");
    let (ok, _, err) = try_run(&data, &["admin", "revoke-device", "no-such-device"]);
    assert!(!ok && err.contains("DEVICE_ID: no device"), "{err}");
    let (ok, _, err) = try_run(
        &data,
        &["admin", "move-staff", "--login", "nobody", "--unit", "t-1"],
    );
    assert!(!ok && err.contains("--login: no member of staff"), "{err}");
}

#[tokio::test]
async fn admin_lists_print_local_times_on_the_configured_zone() {
    use crate::common::{in_g1, reported_case, Server};
    use gridcase_core::zone::Zone;
    let server = Server::start().await;
    let data = server.dir.path().to_path_buf();
    let dev = server.leader("张三", &["g-1"]).await;
    reported_case(&server, &dev, in_g1()).await;
    let cases: serde_json::Value =
        serde_json::from_str(&run(&data, &["admin", "list-cases", "--json"])).unwrap();
    let updated = cases[0]["updated_at"].as_i64().unwrap();
    let devices: serde_json::Value =
        serde_json::from_str(&run(&data, &["admin", "list-devices", "--json"])).unwrap();
    let enrolled = devices[0]["created_at"].as_i64().unwrap();

    for zone in ["Asia/Shanghai", "UTC", "Asia/Urumqi"] {
        let z = Zone::named(zone).unwrap();
        let listed = run(&data, &["--time-zone", zone, "admin", "list-cases"]);
        assert!(
            listed.contains(&format!("updated {}", z.format_minute(updated))),
            "{zone}: {listed}"
        );
        assert!(
            !listed.contains(&updated.to_string()),
            "no epoch ms: {listed}"
        );
        let listed = server_cmd(&data)
            .env("GRIDCASE_TIME_ZONE", zone)
            .args(["admin", "list-devices"])
            .output()
            .unwrap();
        let listed = String::from_utf8(listed.stdout).unwrap();
        assert!(
            listed.contains(&format!("enrolled {}", z.format_minute(enrolled))),
            "{zone}: {listed}"
        );
        assert!(listed.contains("active"));
    }

    // A zone that does not exist is refused before anything runs.
    let (ok, _, err) = try_run(
        &data,
        &["--time-zone", "Mars/Olympus", "admin", "list-cases"],
    );
    assert!(!ok && err.contains("time zone"), "{err}");
    let (ok, _, err) = try_run(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--time-zone",
            "Mars/Olympus",
        ],
    );
    assert!(!ok && err.contains("time zone"), "{err}");
}
