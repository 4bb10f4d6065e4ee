//! Case export as CSV and GeoJSON: area and period filters, public fields
//! only, and text that a spreadsheet cannot run as a formula.

use gridcase_core::case::Category;
use gridcase_core::ids::CaseId;
use gridcase_core::op::OpKind;
use gridcase_server::admin::ExportFormat;
use gridcase_server::calendar::Period;
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
    let f = by_id(family);
    assert_eq!(
        (&f[6], &f[7], &f[8], &f[9]),
        ("", "", "", ""),
        "a personal matter keeps its words and place"
    );
    assert!(!text.contains("张家兄弟"));
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
    let hidden = features
        .iter()
        .find(|f| f["id"] == family.to_string().as_str())
        .unwrap();
    assert!(hidden["geometry"].is_null() && hidden["properties"]["title"].is_null());

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
        .export_cases(ExportFormat::Csv, Some("t-1"), everything)
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(self::rows(&String::from_utf8(bytes).unwrap()).len(), 3);
    let (count, _) = server
        .admin()
        .export_cases(ExportFormat::Geojson, None, everything)
        .unwrap();
    assert_eq!(count, 3);
}
