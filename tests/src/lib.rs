//! Shared pieces of the cross-component tests and the benchmark command.

/// The PostgreSQL harness and the service plumbing live in their own crate
/// so the server's tests can use them too.
pub use gridcase_test_support::{postgres, service};

pub mod balancer;
pub mod centre;
pub mod device;
pub mod fault_proxy;
pub mod load;
pub mod object_store;
pub mod photo_bench;
pub mod power_loss;
pub mod server;
pub mod store_bench;
pub mod sync_bench;

/// A small photo-like JPEG (gradients and a pattern), deterministic per `seed`.
pub fn sample_jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x.wrapping_mul(31) ^ y.wrapping_mul(17) ^ seed) % 64;
        image::Rgb([
            (x * 200 / w.max(1)) as u8 + v as u8 / 2,
            (y * 200 / h.max(1)) as u8,
            120 + v as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88)
        .encode_image(&img)
        .expect("encoding to memory cannot fail");
    out
}

/// Records a case as a grid leader does: the draft at `point`, each photo
/// through intake, then submitted. Returns once it has committed.
pub async fn record_case(
    terminal: &gridcase_core::Terminal,
    category: gridcase_core::case::Category,
    title: &str,
    point: gridcase_core::GeoPoint,
    photos: Vec<Vec<u8>>,
) -> anyhow::Result<gridcase_core::CaseId> {
    let now = gridcase_core::time::now_millis();
    let case = terminal.create_case(
        gridcase_core::case::CaseDraft {
            category,
            title: title.to_string(),
            description: "夜间整条街路灯不亮，配电箱门损坏，居民出行不便".into(),
            location: Some(gridcase_core::Location {
                point,
                address: Some("幸福街".into()),
                source: gridcase_core::location::LocationSource::Typed,
            }),
            occurred_at: now,
            proposed_deadline: Some(now + 2 * gridcase_core::time::DAY),
        },
        Some(point),
    )?;
    for photo in photos {
        terminal
            .add_photo(&case.id, gridcase_core::terminal::PhotoSource::Bytes(photo))
            .await?;
    }
    terminal.submit_case(&case.id)?;
    Ok(case.id)
}

/// One case as the crash tests' field terminals record it: a safety hazard
/// with one photo of `photo` = (width, height, seed), submitted.
pub fn record_field_case(
    terminal: &gridcase_core::Terminal,
    rt: &tokio::runtime::Runtime,
    title: String,
    point: gridcase_core::GeoPoint,
    photo: (u32, u32, u32),
) -> anyhow::Result<gridcase_core::CaseId> {
    let (w, h, seed) = photo;
    rt.block_on(record_case(
        terminal,
        gridcase_core::case::Category::SafetyHazard,
        &title,
        point,
        vec![sample_jpeg(w, h, seed)],
    ))
}
