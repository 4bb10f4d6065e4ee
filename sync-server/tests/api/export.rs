//! Case export as CSV and GeoJSON: area and period filters, what the reader
//! may see (all of it for staff, the public view for a public export, with a
//! column naming what was withheld), days on the deployment's clock, and text
//! that a spreadsheet cannot run as a formula.

use gridcase_core::case::Category;
use gridcase_core::ids::CaseId;
use gridcase_core::op::OpKind;
use gridcase_server::admin::ExportFormat;
use gridcase_server::calendar::Period;
use gridcase_server::public::Reader;
use reqwest::StatusCode;
use serde_json::Value;

use crate::centre_support::supervisor_cookie;
use crate::common::*;

/// A case reported with these words.
async fn report(
    server: &Server,
    dev: &Device,
    category: Category,
    title: &str,
    at: gridcase_core::location::GeoPoint,
) -> CaseId {
    let id = CaseId::new();
    let mut create_op = create(dev, id, Some(at));
    if let OpKind::Create { draft } = &mut create_op.kind {
        draft.category = category;
        draft.title = title.into();
        draft.description = "-2+3 @SUM(A1)".into();
    }
    assert_accepted(&server.push(dev, &[create_op, submit(dev, id)]).await);
    id
}

async fn get_text(server: &Server, cookie: &str, path: &str) -> (StatusCode, String) {
    let resp = server
        .http
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn rows(csv_text: &str) -> Vec<csv::StringRecord> {
    let body = csv_text
        .strip_prefix('\u{feff}')
        .expect("a UTF-8 BOM for Excel");
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn exports_filter_by_area_and_period_and_neutralise_formulas() {
    let server = Server::start().await;
    let city = supervisor_cookie(&server, "c-1").await;
    let leader = server.leader("张三", &["t-1"]).await;
    let manhole = report(
        &server,
        &leader,
        Category::CollapsedManhole,
        "=HYPERLINK(\"http://x\",\"点我\")",
        in_g1(),
    )
    .await;
    let family = report(
        &server,
        &leader,
        Category::FamilyDispute,
        "张家兄弟分家",
        in_mg1a(),
    )
    .await;
    report(
        &server,
        &leader,
        Category::Environment,
        "河道有垃圾",
        in_g2(),
    )
    .await;
    let draft = CaseId::new();
    assert_accepted(
        &server
            .push(&leader, &[create(&leader, draft, Some(in_g1()))])
            .await,
    );

    let (status, text) = get_text(&server, &city, "/v1/export/cases.csv?unit=g-1").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let rows = rows(&text);
    assert_eq!(rows.len(), 2, "g-1 and its micro-grid, no draft");
    let by_id = |id: CaseId| {
        rows.iter()
            .find(|r| &r[0] == id.to_string().as_str())
            .unwrap()
    };
    let m = by_id(manhole);
    assert_eq!(&m[6], "'=HYPERLINK(\"http://x\",\"点我\")", "title");
    assert_eq!(&m[7], "'-2+3 @SUM(A1)", "description");
    assert_eq!(&m[8], "人民大街");
    assert_eq!((&m[9], &m[10]), ("42.87", "125.07"));
    assert_eq!(&m[4], "collapsed_manhole");
    // Staff export what the dashboard shows them: a personal matter's words
    // and place too, and nothing said withheld.
    let f = by_id(family);
    assert_eq!(&f[6], "张家兄弟分家", "a staff export carries the title");
    assert_eq!((&f[8], &f[9]), ("人民大街", "42.82"));
    assert_eq!(&f[20], "", "nothing withheld from staff");
    assert_eq!(&rows_header(&text)[20], "withheld");
    assert!(!text.contains(&leader.account_id), "no reporter");

    let (_, text) = get_text(&server, &city, "/v1/export/cases.csv?unit=t-1").await;
    assert_eq!(self::rows(&text).len(), 3);
    let (_, text) = get_text(
        &server,
        &city,
        "/v1/export/cases.csv?unit=t-1&from=2020-01-01&to=2020-12-31",
    )
    .await;
    assert_eq!(self::rows(&text).len(), 0);

    let (status, text) = get_text(&server, &city, "/v1/export/cases.geojson?unit=g-1").await;
    assert_eq!(status, StatusCode::OK);
    let geo: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    let point = features
        .iter()
        .find(|f| f["id"] == manhole.to_string().as_str())
        .unwrap();
    assert_eq!(point["geometry"]["type"], "Point");
    assert_eq!(
        point["geometry"]["coordinates"],
        serde_json::json!([125.07, 42.87])
    );
    assert_eq!(point["properties"]["grid_name"], "一网格");
    let family_feature = features
        .iter()
        .find(|f| f["id"] == family.to_string().as_str())
        .unwrap();
    assert_eq!(family_feature["properties"]["title"], "张家兄弟分家");
    assert_eq!(family_feature["geometry"]["type"], "Point");

    let (status, body) = server
        .send(
            server
                .http
                .get(server.url("/v1/export/cases.csv?unit=nowhere"))
                .header("cookie", &city),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "unit");
    let (status, body) = server
        .send(
            server
                .http
                .get(server.url("/v1/export/cases.geojson?to=soon"))
                .header("cookie", &city),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "to");

    // The admin command's export, as written to a file.
    let everything = Period {
        from: 0,
        to: i64::MAX,
    };
    let (count, bytes) = server
        .admin()
        .export_cases(ExportFormat::Csv, Some("t-1"), everything, Reader::Staff)
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(self::rows(&String::from_utf8(bytes).unwrap()).len(), 3);
    // A public export withholds a personal matter's words and place, and
    // says so in the row.
    let (_, bytes) = server
        .admin()
        .export_cases(ExportFormat::Csv, Some("t-1"), everything, Reader::Public)
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let public = self::rows(&text);
    let f = public
        .iter()
        .find(|r| &r[0] == family.to_string().as_str())
        .unwrap();
    assert_eq!((&f[6], &f[7], &f[8], &f[9]), ("", "", "", ""));
    assert_eq!(&f[20], "title;description;address;location");
    assert!(!text.contains("张家兄弟"));
    let m = public
        .iter()
        .find(|r| &r[0] == manhole.to_string().as_str())
        .unwrap();
    assert_eq!((&m[8], &m[20]), ("人民大街", ""));
    let (count, bytes) = server
        .admin()
        .export_cases(ExportFormat::Geojson, None, everything, Reader::Public)
        .unwrap();
    assert_eq!(count, 3);
    let geo: Value = serde_json::from_slice(&bytes).unwrap();
    let hidden = geo["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == family.to_string().as_str())
        .unwrap()
        .clone();
    assert!(hidden["geometry"].is_null() && hidden["properties"]["title"].is_null());
    assert_eq!(
        hidden["properties"]["withheld"],
        serde_json::json!(["title", "description", "address", "location"])
    );
}

fn rows_header(csv_text: &str) -> csv::StringRecord {
    let body = csv_text.strip_prefix('\u{feff}').unwrap();
    csv::Reader::from_reader(body.as_bytes())
        .headers()
        .unwrap()
        .clone()
}

/// A case recorded at 23:30 UTC on 30 June: 1 July in Liaoyuan (+8), still 30
/// June in UTC, and 05:30 on 1 July in Ürümqi (+6).
fn late_june_case(dev: &Device) -> (CaseId, Vec<gridcase_core::op::Op>) {
    let id = CaseId::new();
    let mut ops = vec![create(dev, id, Some(in_g1())), submit(dev, id)];
    for op in &mut ops {
        op.device_time = 1_751_326_200_000;
    }
    if let OpKind::Create { draft } = &mut ops[0].kind {
        draft.occurred_at = 1_751_326_200_000;
        draft.proposed_deadline = None;
    }
    (id, ops)
}

#[tokio::test]
async fn a_day_and_a_month_are_the_deployments_on_every_export_and_figure() {
    for (zone, day_has_it, offset) in [
        ("Asia/Shanghai", "2025-07-01", "+08:00"),
        ("Asia/Urumqi", "2025-07-01", "+06:00"),
        ("UTC", "2025-06-30", "+00:00"),
    ] {
        let server = Server::start_with(|c| {
            c.time_zone = gridcase_core::zone::Zone::named(zone).unwrap();
        })
        .await;
        let city = supervisor_cookie(&server, "c-1").await;
        let leader = server.leader("张三", &["t-1"]).await;
        let (id, ops) = late_june_case(&leader);
        assert_accepted(&server.push(&leader, &ops).await);

        let path = format!("/v1/export/cases.csv?from={day_has_it}&to={day_has_it}");
        let (status, text) = get_text(&server, &city, &path).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let rows = rows(&text);
        assert_eq!(rows.len(), 1, "{zone}: the case is on {day_has_it}");
        assert_eq!(&rows[0][0], id.to_string().as_str());
        assert!(rows[0][14].ends_with(offset), "{zone}: {}", &rows[0][14]);

        let (_, figures) = server
            .send(
                server
                    .http
                    .get(server.url("/v1/figures?from=2025-06-01&to=2025-07-31"))
                    .header("cookie", &city),
            )
            .await;
        let month = &figures["by_month"][0]["key"];
        assert_eq!(month, &day_has_it[..7], "{zone}: {figures}");
        assert!(figures["from"].as_str().unwrap().ends_with(offset));

        // The dashboard's pages read times on the same clock.
        let html = server
            .http
            .get(server.url("/centre/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains(&format!("\"time_zone\":\"{zone}\"")),
            "{zone}: the page is told the zone"
        );
    }
}
