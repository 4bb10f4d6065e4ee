//! A department reports its progress and result with photos: the server makes
//! the kept photo and thumbnail, and the grid leader's terminal pulls the op
//! and downloads the files.

use std::io::Cursor;

use gridcase_core::op::{OpKind, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::centre_support::{dispatch_body, Centre, StaffClient};
use crate::common::in_g1;

fn camera_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 80])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload(
    c: &Centre,
    who: &StaffClient,
    case: &str,
    bytes: Vec<u8>,
    csrf: bool,
) -> (StatusCode, Value) {
    let mut rb = c
        .server
        .http
        .post(c.server.url(&format!("/v1/centre/cases/{case}/photos")))
        .header("cookie", &who.cookie)
        .header("content-type", "image/png")
        .body(bytes);
    if csrf {
        rb = rb.header("x-csrf-token", &who.csrf);
    }
    c.server.send(rb).await
}

#[tokio::test]
async fn the_department_adds_photos_that_reach_the_grid_leader() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let housing = c.handler("zhujian", &c.housing).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let id = case.to_string();
    let (_, cursor) = c.server.pull_all(&leader, 0).await;

    // Before dispatch, the department does not even see the case.
    let (status, _) = upload(&c, &municipal, &id, camera_png(64, 48), true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&municipal, case, "accept", json!({})).await;

    // Without the CSRF token, or by another department, or not a picture: refused.
    let (status, _) = upload(&c, &municipal, &id, camera_png(64, 48), false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = upload(&c, &housing, &id, camera_png(64, 48), true).await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status}"
    );
    let (status, body) = upload(&c, &municipal, &id, b"not a picture".to_vec(), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "photo");

    let (status, body) = upload(&c, &municipal, &id, camera_png(2400, 1800), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "in_progress");
    c.ok(
        &municipal,
        case,
        "resolve",
        json!({"note": "已修复，见照片"}),
    )
    .await;

    // Refused uploads left no files: one photo and one thumbnail were kept.
    let kept = std::fs::read_dir(c.server.dir.path().join("photos"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count();
    assert_eq!(kept, 2);

    // The terminal pulls the photo op, by the department, and may download both files.
    let (pulled, _) = c.server.pull_all(&leader, cursor).await;
    let photo = pulled
        .iter()
        .find_map(|p| match &p.op.kind {
            OpKind::AttachPhoto { photo, .. } if p.op.actor.role == Role::Department => {
                Some(photo.clone())
            }
            _ => None,
        })
        .expect("the department's photo reaches the terminal");
    assert_eq!((photo.width, photo.height), (1920, 1440));
    for (sha, bytes) in [
        (&photo.sha256, photo.bytes),
        (&photo.thumb_sha256, photo.thumb_bytes),
    ] {
        let resp = c
            .server
            .http
            .get(c.server.url(&format!("/v1/photos/{sha}")))
            .bearer_auth(&leader.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let got = resp.bytes().await.unwrap();
        assert_eq!(got.len() as u64, bytes);
        assert_eq!(crate::common::sha256_hex(&got), *sha);
    }
    // And the dashboard's case page lists it.
    let (status, detail) = c.case(&municipal, case).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.to_string().contains(&photo.sha256), "{detail}");
}

/// The grid leader's photo of a case, uploaded and attached from the terminal.
async fn leader_photo(
    c: &Centre,
    leader: &crate::common::Device,
    case: gridcase_core::ids::CaseId,
    seed: u8,
) -> gridcase_core::op::PhotoRef {
    use crate::common::{attach, photo_bytes, photo_ref};
    let (photo, thumb) = (photo_bytes(seed, 4000), photo_bytes(seed + 1, 400));
    c.server.upload(leader, &photo).await;
    c.server.upload(leader, &thumb).await;
    let r = photo_ref(&photo, &thumb);
    crate::common::assert_accepted(
        &c.server
            .push(leader, &[attach(leader, case, r.clone())])
            .await,
    );
    r
}

#[tokio::test]
async fn the_case_page_groups_photos_by_step_with_who_and_when() {
    let c = Centre::start().await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let municipal = c.handler("shizheng", &c.municipal).await;
    let leader = c.leader("张网格", &["g-1"]).await;
    let case = c.report(&leader, in_g1()).await;
    let id = case.to_string();
    let scene = leader_photo(&c, &leader, case, 1).await;
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&municipal, case, "accept", json!({})).await;
    // As the page does: the photo first, then the step it illustrates.
    let (_, progress) = upload(&c, &municipal, &id, camera_png(64, 48), true).await;
    c.ok(&municipal, case, "progress", json!({"note": "已设置围挡"}))
        .await;
    let (_, result) = upload(&c, &municipal, &id, camera_png(80, 60), true).await;
    c.ok(&municipal, case, "resolve", json!({"note": "已修复"}))
        .await;
    let check = leader_photo(&c, &leader, case, 9).await;
    crate::common::assert_accepted(
        &c.server
            .push(
                &leader,
                &[crate::common::op(
                    &leader,
                    case,
                    OpKind::Verify {
                        done: true,
                        note: "现场已修复".into(),
                        photo_ids: vec![check.id],
                    },
                )],
            )
            .await,
    );
    let _ = (progress, result);

    let (status, view) = c.case(&k1, case).await;
    assert_eq!(status, StatusCode::OK);
    let photos = view["photos"].as_array().unwrap();
    let steps: Vec<&str> = photos.iter().map(|p| p["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["scene", "progress", "result", "check"], "{view}");
    assert_eq!(photos[0]["sha256"], scene.sha256.as_str());
    assert_eq!(photos[0]["actor_name"], "张网格");
    assert_eq!(photos[0]["actor"]["role"], "grid_leader");
    assert_eq!(photos[1]["actor_name"], "shizheng 同志");
    assert_eq!(photos[1]["actor"]["role"], "department");
    assert_eq!(photos[3]["sha256"], check.sha256.as_str());
    assert!(photos.iter().all(|p| p["at"].as_i64().unwrap() > 0));
}
