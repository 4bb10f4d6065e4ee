//! JPEG encoding straight from planes: baseline, 4:2:0 for colour, standard
//! Huffman tables, a bare JFIF header and nothing else (no EXIF, XMP or ICC).

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

use super::planes::Ycc;

/// Feeds planes to the encoder row by row; chroma rows are repeated so the
/// encoder's own 2x2 averaging gives back exactly our chroma values.
struct Planes<'a>(&'a Ycc);

impl ImageBuffer for Planes<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        if self.0.chroma.is_some() {
            JpegColorType::Ycbcr
        } else {
            JpegColorType::Luma
        }
    }

    fn width(&self) -> u16 {
        self.0.y.width as u16
    }

    fn height(&self) -> u16 {
        self.0.y.height as u16
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let img = self.0;
        let y = (y as u32).min(img.y.height - 1);
        buffers[0].extend_from_slice(img.y.row(y));
        if let Some(chroma) = &img.chroma {
            let w = img.y.width as usize;
            for (plane, buf) in chroma.iter().zip(buffers[1..3].iter_mut()) {
                let row = plane.row((y / 2).min(plane.height - 1));
                let start = buf.len();
                buf.extend(row.iter().flat_map(|&v| [v, v]));
                buf.truncate(start + w);
            }
        }
    }
}

/// Encodes at `quality` (1-100, libjpeg's scale). Planes larger than 65535 px
/// cannot occur: callers bound the size first.
pub(crate) fn encode(img: &Ycc, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = (img.y.width, img.y.height);
    if w == 0 || h == 0 || w > 65_535 || h > 65_535 {
        return Err(format!("cannot encode a {w}x{h} JPEG"));
    }
    let mut out = Vec::with_capacity((w as usize * h as usize / 8).max(4096));
    let mut enc = Encoder::new(&mut out, quality.clamp(1, 100));
    if img.chroma.is_some() {
        enc.set_sampling_factor(SamplingFactor::F_2_2);
    }
    enc.encode_image(Planes(img)).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Encodes interleaved RGB (test helper for building inputs).
#[cfg(test)]
pub(crate) fn encode_rgb(rgb: &[u8], w: u16, h: u16, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, quality)
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}
