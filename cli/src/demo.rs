//! `gridcase demo`: the Liaoyuan manhole from the brief, recorded on embedded
//! defaults: a sample grid map, a generated scene photo, a proposed deadline.

use anyhow::Result;
use gridcase_core::case::Category;
use gridcase_core::store::CaseQuery;
use gridcase_core::terminal::PhotoSource;
use gridcase_core::time::{now_millis, HOUR, MINUTE};
use gridcase_core::{CaseDraft, GeoPoint, Location, LocationSource, Terminal};

use crate::output::{emit, Output};
use crate::words::{pick, Lang};

const SAMPLE_GRIDS: &str = include_str!("../../tests/fixtures/grids/liaoyuan-sample.geojson");

pub async fn run(t: &Terminal, out: &Output) -> Result<()> {
    let units = t.load_grids(SAMPLE_GRIDS)?;
    let point = sample_point(t)?;
    let now = now_millis();
    let d = t
        .record_case(
            CaseDraft {
                category: Category::CollapsedManhole,
                title: "暴雨后下水井塌陷".into(),
                description: "人民大街与向阳路交口井盖塌陷，一辆轿车陷入，需设置警示并修复".into(),
                location: Some(Location {
                    point,
                    address: Some("人民大街与向阳路交口".into()),
                    source: LocationSource::DeviceGps,
                }),
                occurred_at: now - 20 * MINUTE,
                proposed_deadline: Some(now + 48 * HOUR),
            },
            vec![PhotoSource::Bytes(scene_photo()?)],
            true,
            Some(point),
        )
        .await?;
    let l = out.lang;
    if !out.json {
        emit(&match l {
            Lang::Zh => format!("已载入 {units} 个网格单元；登记并提交了一件事件：\n"),
            Lang::En => format!("loaded {units} grid units; recorded and submitted one case:\n"),
        });
    }
    out.detail(&d, &t.short_id(&d.case.id)?, &t.grids());
    if !out.json {
        emit(pick!(
            l,
            "\n本机待同步的事件：",
            "\ncases on this terminal waiting to sync:"
        ));
        out.page(
            &t.list_cases(CaseQuery {
                waiting_to_sync: true,
                page_size: 5,
                ..Default::default()
            })
            .await?,
            &|id| t.short_id(id).unwrap_or_else(|_| id.to_string()),
        );
    }
    Ok(())
}

/// A point inside the first grid of the sample map (its bounding-box centre
/// when that lies inside, as it does for the sample's rectangles).
fn sample_point(t: &Terminal) -> Result<GeoPoint> {
    use gridcase_core::grid::UnitLevel;
    let grids = t.grids();
    let grid = grids
        .units()
        .iter()
        .find(|u| u.level == UnitLevel::Grid && u.boundary.is_some())
        .ok_or_else(|| anyhow::anyhow!("the sample map has no grid"))?;
    let ring = grid
        .boundary
        .as_ref()
        .and_then(|b| b.0.first())
        .map(|p| &p.exterior().0)
        .ok_or_else(|| anyhow::anyhow!("the sample grid has no boundary"))?;
    // The ring repeats its first corner at the end; count each corner once.
    let corners = &ring[..ring.len().saturating_sub(1)];
    let n = corners.len().max(1) as f64;
    let (sx, sy) = corners
        .iter()
        .fold((0.0, 0.0), |(x, y), c| (x + c.x, y + c.y));
    Ok(GeoPoint::new(sy / n, sx / n, 6.0)?)
}

/// A camera-sized scene (gradient sky over a grey road) encoded as JPEG.
fn scene_photo() -> Result<Vec<u8>> {
    let (w, h) = (1600u32, 1200u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        if y < h / 2 {
            image::Rgb([90 + (y * 100 / h) as u8, 130, 200 - (x * 40 / w) as u8])
        } else {
            let g = 80 + ((x * 7 + y * 13) % 40) as u8;
            image::Rgb([g, g, g])
        }
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img)?;
    Ok(bytes)
}
