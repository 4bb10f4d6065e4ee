//! Photo intake: what the camera app hands over (JPEG, PNG or WebP, up to
//! 48 MP, any EXIF orientation) becomes an upright JPEG whose long edge is at
//! most [`PhotoConfig::max_edge`] plus a thumbnail made from it, both without
//! any metadata, both named by their SHA-256. The capture time and GPS position
//! from the EXIF are returned as fields instead.
//!
//! * The format is sniffed from the content; the file name is never trusted.
//! * Sizes are checked before decoding: input bytes against
//!   [`PhotoConfig::max_input_bytes`], header dimensions against
//!   [`PhotoConfig::max_pixels`] (decompression bombs stop at the header).
//! * Camera JPEGs (sequential, 8-bit, YCbCr or grey) are decoded by a small
//!   fast decoder (`jpeg.rs`) that shrinks by 2, 4 or 8 in the DCT domain while
//!   decoding, so a 12 MP photo bound for 1920 px is never decoded at full size;
//!   progressive JPEGs shrink on load too (`jpeg-decoder`); PNG, WebP and other
//!   JPEGs (CMYK, ...) go through the `image` crate under `image::Limits`.
//! * From decoder to encoder everything stays in Y/Cb/Cr planes (4:2:0):
//!   `fast_image_resize` for the resizes, our own baseline encoder
//!   (`encode.rs`) with libjpeg's quality tables. The thumbnail is made from the
//!   resized photo on a second thread while the photo is encoded.
//! * EXIF capture time without `OffsetTimeOriginal` is taken as China Standard
//!   Time (UTC+8, [`DEFAULT_UTC_OFFSET_MINUTES`]); GPS without
//!   `GPSHPositioningError` has an unknown accuracy (`None`), never an
//!   invented one.
//! * Bad input is a [`PhotoError`] naming the reason; intake never panics on it.

mod decode;
mod encode;
mod exif;
mod jpeg;
mod library;
mod planes;
#[cfg(test)]
pub(crate) mod tests;

use std::io::Read;
use std::path::Path;

pub use exif::DEFAULT_UTC_OFFSET_MINUTES;
pub use library::{is_sha256_hex, sha256_hex, PhotoLibrary};

use crate::location::GeoPoint;
use crate::time::Millis;

/// Limits and output sizes of photo intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoConfig {
    /// Longest edge of the stored photo, pixels (smaller photos are kept as they are).
    pub max_edge: u32,
    /// Longest edge of the thumbnail, pixels.
    pub thumb_edge: u32,
    /// JPEG quality, 1-100 on libjpeg's scale.
    pub quality: u8,
    /// Largest input accepted, bytes.
    pub max_input_bytes: u64,
    /// Largest input accepted, width x height.
    pub max_pixels: u64,
}

impl Default for PhotoConfig {
    fn default() -> Self {
        PhotoConfig {
            max_edge: 1920,
            thumb_edge: 320,
            quality: 80,
            max_input_bytes: 40 * 1024 * 1024,
            max_pixels: 48_000_000,
        }
    }
}

/// An intake's result: the photo and thumbnail JPEGs, their digests, and what
/// the EXIF said about when and where.
#[derive(Clone, PartialEq)]
pub struct ProcessedPhoto {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// SHA-256 of `jpeg`, lowercase hex.
    pub sha256: String,
    pub thumb: Vec<u8>,
    pub thumb_width: u32,
    pub thumb_height: u32,
    /// SHA-256 of `thumb`, lowercase hex.
    pub thumb_sha256: String,
    /// EXIF DateTimeOriginal in UTC.
    pub captured_at: Option<Millis>,
    /// EXIF GPS position.
    pub gps: Option<GeoPoint>,
}

impl std::fmt::Debug for ProcessedPhoto {
    /// Sizes and digests, not the bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedPhoto")
            .field("jpeg_bytes", &self.jpeg.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("sha256", &self.sha256)
            .field("thumb_bytes", &self.thumb.len())
            .field("thumb_width", &self.thumb_width)
            .field("thumb_height", &self.thumb_height)
            .field("thumb_sha256", &self.thumb_sha256)
            .field("captured_at", &self.captured_at)
            .field("gps", &self.gps)
            .finish()
    }
}

/// Why a photo was refused. Messages give the reason in plain words and never
/// contain any of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the photo is empty (0 bytes)")]
    Empty,
    #[error("the photo is too large: {bytes} bytes, the limit is {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the photo has too many pixels: {width} x {height}, the limit is {limit}")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("the file is not an image")]
    NotAnImage,
    #[error("unsupported image format: {format}")]
    Unsupported { format: String },
    #[error("the image is damaged: {reason}")]
    Corrupt { reason: String },
    #[error("the photo could not be read: {0}")]
    Io(#[from] std::io::Error),
    #[error("photo settings are invalid: {reason}")]
    InvalidConfig { reason: String },
    #[error("it is a folder, not a photo file")]
    IsAFolder,
}

impl PhotoError {
    /// A short reason for people, e.g. for a toast in the app.
    pub fn reason(&self) -> String {
        match self {
            PhotoError::Empty => "empty file".into(),
            PhotoError::TooLarge { .. } => "file too large".into(),
            PhotoError::TooManyPixels { .. } => "too many pixels".into(),
            PhotoError::NotAnImage => "not an image".into(),
            PhotoError::Unsupported { format } => format!("unsupported format: {format}"),
            PhotoError::Corrupt { reason } => reason.clone(),
            PhotoError::Io(e) => format!("cannot read file: {}", e.kind()),
            PhotoError::InvalidConfig { reason } => reason.clone(),
            PhotoError::IsAFolder => "a folder, not a file".into(),
        }
    }
}

fn check_config(cfg: &PhotoConfig) -> Result<(), PhotoError> {
    let bad = |reason: &str| {
        Err(PhotoError::InvalidConfig {
            reason: reason.into(),
        })
    };
    if cfg.max_edge == 0 || cfg.max_edge > 16_384 {
        return bad("max_edge must be 1 to 16384 pixels");
    }
    if cfg.thumb_edge == 0 || cfg.thumb_edge > cfg.max_edge {
        return bad("thumb_edge must be 1 to max_edge pixels");
    }
    if !(1..=100).contains(&cfg.quality) {
        return bad("quality must be 1 to 100");
    }
    Ok(())
}

/// Turns the bytes of a camera photo into the stored photo and thumbnail.
pub fn intake_bytes(bytes: &[u8], cfg: &PhotoConfig) -> Result<ProcessedPhoto, PhotoError> {
    check_config(cfg)?;
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() as u64 > cfg.max_input_bytes {
        return Err(PhotoError::TooLarge {
            bytes: bytes.len() as u64,
            limit: cfg.max_input_bytes,
        });
    }
    let format = decode::sniff(bytes)?;
    let decoded = decode::decode(bytes, format, cfg)?;
    let meta = decoded.exif;

    // Size in stored orientation; rotation happens after the (cheaper) resize.
    let (w, h) = planes::fit(decoded.width, decoded.height, cfg.max_edge);
    let img = planes::resize(&decoded.img, w, h);
    drop(decoded.img);
    let img = planes::orient(img, meta.orientation);
    let (width, height) = (img.y.width, img.y.height);
    let (thumb_width, thumb_height) = planes::fit(width, height, cfg.thumb_edge);

    // The thumbnail (from the resized photo) on a second thread while the big
    // one is encoded.
    let (jpeg, thumb) = std::thread::scope(|s| {
        let thumb = s.spawn(|| {
            let small = planes::resize(&img, thumb_width, thumb_height);
            let jpeg = encode::encode(&small, cfg.quality)?;
            Ok::<_, String>((sha256_hex(&jpeg), jpeg))
        });
        let big = encode::encode(&img, cfg.quality).map(|j| (sha256_hex(&j), j));
        let thumb = match thumb.join() {
            Ok(t) => t,
            Err(p) => std::panic::resume_unwind(p),
        };
        (big, thumb)
    });
    let encode_err = |reason: String| PhotoError::Corrupt { reason };
    let (sha256, jpeg) = jpeg.map_err(encode_err)?;
    let (thumb_sha256, thumb) = thumb.map_err(encode_err)?;
    tracing::debug!(
        width,
        height,
        bytes = jpeg.len(),
        thumb_bytes = thumb.len(),
        "photo taken in"
    );
    Ok(ProcessedPhoto {
        jpeg,
        width,
        height,
        sha256,
        thumb,
        thumb_width,
        thumb_height,
        thumb_sha256,
        captured_at: meta.captured_at,
        gps: meta.gps,
    })
}

/// Like [`intake_bytes`] for a file; its size is checked before it is read.
pub fn intake_file(path: &Path, cfg: &PhotoConfig) -> Result<ProcessedPhoto, PhotoError> {
    check_config(cfg)?;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(PhotoError::IsAFolder);
    }
    let len = meta.len();
    if len == 0 {
        return Err(PhotoError::Empty);
    }
    if len > cfg.max_input_bytes {
        return Err(PhotoError::TooLarge {
            bytes: len,
            limit: cfg.max_input_bytes,
        });
    }
    // The file may grow while we read it: never read past the limit.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cfg.max_input_bytes + 1).read_to_end(&mut bytes)?;
    intake_bytes(&bytes, cfg)
}
