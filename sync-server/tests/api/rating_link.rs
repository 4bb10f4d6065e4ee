//! A resident rates on their own phone through a one-time link.

use gridcase_core::ids::CaseId;
use gridcase_core::time::now_millis;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::centre_support::{dispatch_body, Centre};
use crate::common::{assert_accepted, in_g1, verify, Device};

/// A case verified done on site, waiting for the resident's face.
async fn verified_case(c: &Centre, leader: &Device) -> CaseId {
    let k1 = c.dispatcher(&format!("k1-{}", now_millis()), "k-1").await;
    let case = c.report(leader, in_g1()).await;
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    let handler = c
        .handler(&format!("h-{}", now_millis()), &c.municipal)
        .await;
    c.ok(&handler, case, "resolve", json!({"note": "已修复"}))
        .await;
    assert_accepted(&c.server.push(leader, &[verify(leader, case, true)]).await);
    case
}

async fn issue(c: &Centre, dev: &Device, case: CaseId) -> (StatusCode, Value) {
    c.server
        .send(
            c.server
                .http
                .post(c.server.url(&format!("/v1/cases/{case}/rating-link")))
                .bearer_auth(&dev.token),
        )
        .await
}

async fn page(c: &Centre, url: &str) -> (StatusCode, String) {
    let resp = c.server.http.get(url).send().await.unwrap();
    let status = resp.status();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (status, resp.text().await.unwrap())
}

async fn rate_form(c: &Centre, url: &str, form: &str) -> (StatusCode, String) {
    let resp = c
        .server
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_link_shows_the_summary_and_rates_once() {
    let c = Centre::start().await;
    let leader = c.leader("张网格长", &["g-1"]).await;
    let case = verified_case(&c, &leader).await;
    let (_, cursor) = c.server.pull_all(&leader, 0).await;

    let (status, link) = issue(&c, &leader, case).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/r/", c.server.url)), "{url}");
    let svg = link["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(link["expires_at"].as_i64().unwrap() > now_millis());

    let (status, html) = page(&c, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("下水井塌陷"), "the title");
    assert!(html.contains("value=\"smiley\"") && html.contains("value=\"frowny\""));
    assert!(html.contains("一网格"));
    // Nothing private: not the description, the address, the reporter, the point.
    for private in [
        "人民大街",
        "暴雨后",
        "张网格长",
        &leader.account_id,
        "42.87",
        "125.07",
    ] {
        assert!(!html.contains(private), "{private} leaked");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let (_, english) = page(&c, &format!("{url}?lang=en")).await;
    assert!(english.contains("Collapsed manhole"));
    assert!(english.contains("Satisfied"));

    let (status, thanks) = rate_form(&c, &url, "face=smiley&comment=%E5%BE%88%E5%A5%BD").await;
    assert_eq!(status, StatusCode::OK);
    assert!(thanks.contains("感谢"));
    let stored = c.stored(case);
    assert_eq!(stored.status.as_str(), "rated");
    assert_eq!(stored.rating.unwrap().comment, "很好");

    // Once only.
    let (status, html) = page(&c, &url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("已评价"));
    let (status, _) = rate_form(&c, &url, "face=frowny").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(c.stored(case).status.as_str(), "rated");

    // The rating reaches the terminal like any op.
    let (pulled, _) = c.server.pull_all(&leader, cursor).await;
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].op.actor.role, gridcase_core::op::Role::Resident);
}

#[tokio::test]
async fn a_frowny_face_from_the_phone_reopens_the_case() {
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = verified_case(&c, &leader).await;
    let (_, link) = issue(&c, &leader, case).await;
    let url = link["url"].as_str().unwrap();
    let (status, _) = rate_form(&c, url, "face=none").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let long = "差".repeat(600);
    let (status, _) = rate_form(&c, url, &format!("face=frowny&comment={long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        c.stored(case).status.as_str(),
        "verified",
        "nothing recorded"
    );
    let (status, _) = rate_form(
        &c,
        url,
        "face=frowny&comment=%E8%BF%98%E5%9C%A8%E6%BC%8F&lang=en",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c.stored(case).status.as_str(), "reopened");
    let handler = c.handler("shizheng2", &c.municipal).await;
    let (_, view) = c.case(&handler, case).await;
    assert_eq!(view["desk"]["reopen_reason"], "还在漏");
}

#[tokio::test]
async fn links_expire_and_unknown_ones_say_so() {
    let c = Centre::start_with(|cfg| cfg.rating_link_ttl = 1).await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let case = verified_case(&c, &leader).await;
    let (_, link) = issue(&c, &leader, case).await;
    let url = link["url"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, html) = page(&c, &url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("过期"));
    let (status, _) = rate_form(&c, &url, "face=smiley").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(c.stored(case).status.as_str(), "verified");

    let (status, html) = page(&c, &c.server.url("/r/00112233445566778899aabbccddeeff")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("无效"));
    let (status, _) = page(&c, &c.server.url("/r/not-a-token?lang=en")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_a_device_of_the_case_asks_and_only_when_it_awaits_a_rating() {
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let other = c.leader("三网格长", &["g-3"]).await;
    let case = c.report(&leader, in_g1()).await;
    let (status, body) = issue(&c, &leader, case).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "not_allowed");
    let (status, _) = issue(&c, &other, case).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = c
        .server
        .send(
            c.server
                .http
                .post(c.server.url(&format!("/v1/cases/{case}/rating-link"))),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The link's token is the permission: the server keeps only its SHA-256,
/// so a copy of the database (or of its write-ahead log) rates nothing.
#[tokio::test]
async fn only_the_hash_of_a_link_token_is_stored() {
    use sha2::{Digest, Sha256};
    let c = Centre::start().await;
    let leader = c.leader("张网格长", &["g-1"]).await;
    let case = verified_case(&c, &leader).await;
    let (status, link) = issue(&c, &leader, case).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = link["url"].as_str().unwrap();
    let token = url.rsplit("/r/").next().unwrap().to_string();
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url}"
    );
    let db = c.server.dir.path().join("gridcase.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    let held: i64 = conn
        .query_row(
            "SELECT count(*) FROM rating_links WHERE token_hash = ?1",
            [&hash],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 1, "the link is kept by its hash");
    // Neither the token's text nor its bytes anywhere on disk.
    let raw = hex_bytes(&token);
    for file in ["gridcase.db", "gridcase.db-wal"] {
        let Ok(bytes) = std::fs::read(c.server.dir.path().join(file)) else {
            continue;
        };
        for needle in [token.as_bytes(), raw.as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the token is in {file}"
            );
        }
    }
    drop(conn);
    // And the link still works: the hash is what is looked up.
    let (status, _) = page(&c, url).await;
    assert_eq!(status, StatusCode::OK);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn the_page_of_a_private_matter_withholds_its_title() {
    use gridcase_core::case::Category;
    use gridcase_core::op::OpKind;
    let c = Centre::start().await;
    let leader = c.leader("网格长", &["g-1"]).await;
    let k1 = c.dispatcher("k1", "k-1").await;
    let handler = c.handler("shizheng", &c.municipal).await;
    let case = CaseId::new();
    let mut create_op = crate::common::create(&leader, case, Some(in_g1()));
    if let OpKind::Create { draft } = &mut create_op.kind {
        draft.category = Category::FamilyDispute;
        draft.title = "王家兄弟分房".into();
    }
    assert_accepted(
        &c.server
            .push(&leader, &[create_op, crate::common::submit(&leader, case)])
            .await,
    );
    c.ok(&k1, case, "dispatch", dispatch_body(&c.municipal))
        .await;
    c.ok(&handler, case, "resolve", json!({})).await;
    assert_accepted(&c.server.push(&leader, &[verify(&leader, case, true)]).await);
    let (status, link) = issue(&c, &leader, case).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let (status, html) = page(&c, link["url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("家事纠纷"), "the kind of matter shows");
    assert!(
        !html.contains("王家兄弟"),
        "a private matter's title is withheld"
    );
}
