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
