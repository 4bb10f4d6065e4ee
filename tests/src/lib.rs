//! Shared pieces of the cross-component tests and the benchmark command.

pub mod centre;
pub mod device;
pub mod fault_proxy;
pub mod load;
pub mod photo_bench;
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

/// One case as the crash tests' field terminals record it: a safety hazard
/// with one photo of `photo_size`, submitted. Returns once it has committed.
pub fn record_field_case(
    terminal: &gridcase_core::Terminal,
    rt: &tokio::runtime::Runtime,
    title: String,
    point: gridcase_core::GeoPoint,
    photo: (u32, u32, u32),
) -> anyhow::Result<gridcase_core::CaseId> {
    use gridcase_core::case::{CaseDraft, Category};
    let now = gridcase_core::time::now_millis();
    let case = terminal.create_case(
        CaseDraft {
            category: Category::SafetyHazard,
            title,
            description: "配电箱门损坏，线路裸露".into(),
            location: Some(gridcase_core::Location {
                point,
                address: None,
            }),
            occurred_at: now,
            proposed_deadline: Some(now + gridcase_core::time::DAY),
        },
        Some(point),
    )?;
    let (w, h, seed) = photo;
    rt.block_on(terminal.add_photo(
        &case.id,
        gridcase_core::terminal::PhotoSource::Bytes(sample_jpeg(w, h, seed)),
    ))?;
    terminal.submit_case(&case.id)?;
    Ok(case.id)
}
