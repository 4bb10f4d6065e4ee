//! From bytes to planes: sniff the format from the content (never the file
//! name), check the size in the header before touching pixel data, then decode.
//!
//! Camera JPEGs (sequential, 8-bit, YCbCr or grey) take the fast path in
//! [`super::jpeg`], shrinking on load when the output is at most half the
//! size. Everything else the `image` crate decodes under [`image::Limits`].

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::exif::{self, ExifInfo};
use super::jpeg::{self, JpegError};
use super::planes::{self, Ycc};
use super::{PhotoConfig, PhotoError};

/// What the first bytes say the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    WebP,
}

/// Names formats we recognise but do not take, to say so in the error.
pub(crate) fn sniff(b: &[u8]) -> Result<Format, PhotoError> {
    let unsupported = |f: &str| {
        Err(PhotoError::Unsupported {
            format: f.to_string(),
        })
    };
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return unsupported("GIF");
    }
    if b.starts_with(b"BM") && b.len() >= 14 {
        return unsupported("BMP");
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        return unsupported("TIFF");
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let brand = &b[8..12];
        if [
            &b"heic"[..],
            b"heix",
            b"hevc",
            b"heim",
            b"heis",
            b"mif1",
            b"msf1",
        ]
        .contains(&brand)
        {
            return unsupported("HEIC");
        }
        if brand == b"avif" || brand == b"avis" {
            return unsupported("AVIF");
        }
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        // SOI but no marker after it: a JPEG cut short.
        return Err(PhotoError::Corrupt {
            reason: "the JPEG file is truncated".into(),
        });
    }
    Err(PhotoError::NotAnImage)
}

/// A decoded picture, possibly already shrunk, with its full size and EXIF.
pub(crate) struct Decoded {
    pub img: Ycc,
    /// Size of the stored image before any shrink-on-load (EXIF rotation not applied).
    pub width: u32,
    pub height: u32,
    pub exif: ExifInfo,
}

fn check_pixels(width: u32, height: u32, cfg: &PhotoConfig) -> Result<(), PhotoError> {
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt {
            reason: "the image has no pixels".into(),
        });
    }
    if width as u64 * height as u64 > cfg.max_pixels {
        return Err(PhotoError::TooManyPixels {
            width,
            height,
            limit: cfg.max_pixels,
        });
    }
    Ok(())
}

pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    cfg: &PhotoConfig,
) -> Result<Decoded, PhotoError> {
    match format {
        Format::Jpeg => decode_jpeg(bytes, cfg),
        Format::Png | Format::WebP => decode_general(bytes, format, cfg, None),
    }
}

fn jpeg_error(e: JpegError) -> PhotoError {
    match e {
        JpegError::Truncated => PhotoError::Corrupt {
            reason: "the JPEG file is truncated".into(),
        },
        JpegError::Corrupt(why) => PhotoError::Corrupt {
            reason: format!("the JPEG data is damaged ({why})"),
        },
        JpegError::Unsupported(why) => PhotoError::Unsupported {
            format: format!("JPEG ({why})"),
        },
    }
}

fn decode_jpeg(bytes: &[u8], cfg: &PhotoConfig) -> Result<Decoded, PhotoError> {
    // The frame header alone first: a hostile size is refused before anything
    // else is read or allocated.
    let frame = jpeg::read_header(bytes, false).map_err(jpeg_error)?;
    check_pixels(frame.width, frame.height.max(1), cfg)?;
    let header = jpeg::read_header(bytes, true).map_err(jpeg_error)?;
    let exif = header
        .exif
        .clone()
        .map(|r| exif::parse(&bytes[r]))
        .unwrap_or(ExifInfo {
            orientation: 1,
            ..Default::default()
        });
    let (w, h) = (header.width, header.height);
    if let Some(why) = header.fast_path_blocker() {
        if header.sof == 0xC2 && h > 0 {
            // Progressive (what messaging apps re-save photos as): still shrink
            // on load, with the jpeg-decoder crate.
            if let Some(img) = decode_progressive(bytes, w, h, cfg)? {
                return Ok(Decoded {
                    img,
                    width: w,
                    height: h,
                    exif,
                });
            }
        }
        tracing::debug!(reason = why, "JPEG takes the general decoder");
        return decode_general(bytes, Format::Jpeg, cfg, Some(exif));
    }
    // Shrink on load by the largest power of two that keeps both sides at least
    // as large as the output.
    let (tw, th) = planes::fit(w, h, cfg.max_edge);
    let mut scale = 8;
    while scale > 1 && (w.div_ceil(scale) < tw || h.div_ceil(scale) < th) {
        scale /= 2;
    }
    let img = jpeg::decode(&header, bytes, scale).map_err(jpeg_error)?;
    Ok(Decoded {
        img,
        width: w,
        height: h,
        exif,
    })
}

/// Progressive JPEG through `jpeg-decoder`, shrunk on load in the DCT domain.
/// None when it cannot do this file (CMYK, 16-bit, ...): the general decoder
/// gets a go.
fn decode_progressive(
    bytes: &[u8],
    w: u32,
    h: u32,
    cfg: &PhotoConfig,
) -> Result<Option<Ycc>, PhotoError> {
    use jpeg_decoder::{Decoder, Error, PixelFormat};
    let mut d = Decoder::new(bytes);
    // Coefficients of the whole image plus the output, with room to spare.
    d.set_max_decoding_buffer_size(
        (cfg.max_pixels.saturating_mul(8)).min(usize::MAX as u64) as usize
    );
    let (tw, th) = planes::fit(w, h, cfg.max_edge);
    let result = d
        .scale(tw.min(65_535) as u16, th.min(65_535) as u16)
        .and_then(|_| d.decode());
    let pixels = match result {
        Ok(p) => p,
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(PhotoError::Corrupt {
                reason: "the JPEG file is truncated".into(),
            })
        }
        Err(e) => {
            tracing::debug!(error = %e, "jpeg-decoder refused a progressive JPEG");
            return Ok(None);
        }
    };
    let Some(info) = d.info() else {
        return Ok(None);
    };
    let (ow, oh) = (info.width as u32, info.height as u32);
    let channels = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::RGB24 => 3,
        _ => return Ok(None),
    };
    if ow == 0 || oh == 0 || pixels.len() < ow as usize * oh as usize * channels {
        return Ok(None);
    }
    Ok(Some(planes::from_interleaved(&pixels, ow, oh, channels)))
}

fn image_error(e: image::ImageError, what: &str) -> PhotoError {
    use image::ImageError as E;
    match e {
        E::Limits(_) => PhotoError::Corrupt {
            reason: format!("the {what} needs more memory than allowed"),
        },
        E::Unsupported(u) => PhotoError::Unsupported {
            format: format!("{what} ({u})"),
        },
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => PhotoError::Corrupt {
            reason: format!("the {what} file is truncated"),
        },
        other => {
            let text = other.to_string().to_ascii_lowercase();
            tracing::debug!(error = %other, "image decoder refused the photo");
            let reason =
                if text.contains("eof") || text.contains("end of") || text.contains("truncat") {
                    format!("the {what} file is truncated")
                } else {
                    format!("the {what} data is damaged")
                };
            PhotoError::Corrupt { reason }
        }
    }
}

/// PNG, WebP and the JPEGs the fast path does not take (progressive, CMYK, ...).
fn decode_general(
    bytes: &[u8],
    format: Format,
    cfg: &PhotoConfig,
    exif: Option<ExifInfo>,
) -> Result<Decoded, PhotoError> {
    let (image_format, what) = match format {
        Format::Jpeg => (ImageFormat::Jpeg, "JPEG"),
        Format::Png => (ImageFormat::Png, "PNG"),
        Format::WebP => (ImageFormat::WebP, "WebP"),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut limits = image::Limits::default();
    let side = cfg.max_pixels.min(u32::MAX as u64) as u32;
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // Room for the largest allowed picture at 16 bits per channel with alpha.
    limits.max_alloc = Some(cfg.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| image_error(e, what))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, cfg)?;
    let exif = match exif {
        Some(e) => e,
        None => decoder
            .exif_metadata()
            .ok()
            .flatten()
            .map(|raw| exif::parse(&raw))
            .unwrap_or(ExifInfo {
                orientation: 1,
                ..Default::default()
            }),
    };
    let picture = DynamicImage::from_decoder(decoder).map_err(|e| image_error(e, what))?;
    let color = picture.color();
    let img = match (color.has_color(), color.has_alpha()) {
        (false, false) => {
            let l = picture.into_luma8();
            planes::from_interleaved(l.as_raw(), width, height, 1)
        }
        (false, true) => {
            let la = picture.into_luma_alpha8();
            planes::from_interleaved(la.as_raw(), width, height, 2)
        }
        (true, false) => {
            let rgb = picture.into_rgb8();
            planes::from_interleaved(rgb.as_raw(), width, height, 3)
        }
        (true, true) => {
            let rgba = picture.into_rgba8();
            planes::from_interleaved(rgba.as_raw(), width, height, 4)
        }
    };
    Ok(Decoded {
        img,
        width,
        height,
        exif,
    })
}
