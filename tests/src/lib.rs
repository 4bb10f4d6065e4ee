//! Shared pieces of the cross-component tests and the benchmark command.

pub mod centre;
pub mod device;
pub mod fault_proxy;
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
