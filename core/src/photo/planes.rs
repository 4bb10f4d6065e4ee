//! Images as separate 8-bit Y, Cb, Cr planes (JFIF full-range BT.601).
//!
//! The whole pipeline works on planes: the fast JPEG decoder produces them,
//! the encoder consumes them, and in between nothing ever converts to RGB. Luma
//! is kept at full resolution and chroma at half resolution in both directions
//! (4:2:0), which is what the output JPEG stores anyway.

use fast_image_resize as fir;

/// One 8-bit plane; rows are `stride` bytes apart, `width` of them are image.
#[derive(Debug, Clone)]
pub(crate) struct Plane {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub data: Vec<u8>,
}

impl Plane {
    pub fn new(width: u32, height: u32) -> Self {
        let stride = width as usize;
        Plane {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    #[inline]
    pub fn row(&self, y: u32) -> &[u8] {
        let at = y as usize * self.stride;
        &self.data[at..at + self.width as usize]
    }

    #[inline]
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let at = y as usize * self.stride;
        let w = self.width as usize;
        &mut self.data[at..at + w]
    }
}

/// A picture: luma, and for colour pictures two chroma planes of any size
/// (they are brought to half the luma size when resized).
#[derive(Debug, Clone)]
pub(crate) struct Ycc {
    pub y: Plane,
    pub chroma: Option<[Plane; 2]>,
}

/// The size of an image of `w` x `h` whose long edge is at most `max`, never
/// larger than the original, never zero.
pub(crate) fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    let max = max.max(1);
    if w <= max && h <= max {
        return (w, h);
    }
    let (w64, h64, m) = (w as u64, h as u64, max as u64);
    if w >= h {
        (max, ((h64 * m + w64 / 2) / w64).max(1) as u32)
    } else {
        (((w64 * m + h64 / 2) / h64).max(1) as u32, max)
    }
}

/// Chroma size for a luma size in 4:2:0.
pub(crate) fn chroma_size(w: u32, h: u32) -> (u32, u32) {
    (w.div_ceil(2), h.div_ceil(2))
}

/// A plane of `w` x `h` made from `src` with a filter suited to the ratio.
fn resize_plane(src: &Plane, w: u32, h: u32, resizer: &mut fir::Resizer) -> Plane {
    if src.width == w && src.height == h {
        if src.stride == w as usize {
            return src.clone();
        }
        let mut out = Plane::new(w, h);
        for y in 0..h {
            out.row_mut(y).copy_from_slice(src.row(y));
        }
        return out;
    }
    let rows = (src.data.len() / src.stride.max(1)) as u32;
    let mut out = Plane::new(w, h);
    // Infallible for these arguments: the buffer holds stride x rows bytes and the
    // crop lies inside it. Should the library still refuse, a flat grey plane is
    // a better answer than a panic.
    let view =
        match fir::images::ImageRef::new(src.stride as u32, rows, &src.data, fir::PixelType::U8) {
            Ok(v) => v,
            Err(_) => {
                out.data.fill(128);
                return out;
            }
        };
    let mut dst = match fir::images::Image::from_slice_u8(w, h, &mut out.data, fir::PixelType::U8) {
        Ok(d) => d,
        Err(_) => return out,
    };
    // After shrink-on-load the remaining ratio is below 2: a triangle filter
    // stretched to the ratio is enough and twice as fast as Lanczos. Larger
    // ratios (the thumbnail) get Catmull-Rom, sharp without ringing.
    let ratio = (src.width as f64 / w as f64).max(src.height as f64 / h as f64);
    let filter = if ratio < 2.0 {
        fir::FilterType::Bilinear
    } else {
        fir::FilterType::CatmullRom
    };
    let opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(filter))
        .crop(0.0, 0.0, src.width as f64, src.height as f64);
    if resizer.resize(&view, &mut dst, &opts).is_err() {
        out.data.fill(128);
    }
    out
}

/// Resizes a picture so luma is `w` x `h` and chroma half that. Chroma is done
/// on a second thread when there is enough work to pay for it.
pub(crate) fn resize(img: &Ycc, w: u32, h: u32) -> Ycc {
    let (cw, ch) = chroma_size(w, h);
    let big = (w as u64 * h as u64) >= 1 << 18;
    match &img.chroma {
        None => Ycc {
            y: resize_plane(&img.y, w, h, &mut fir::Resizer::new()),
            chroma: None,
        },
        Some([cb, cr]) if big => std::thread::scope(|s| {
            let chroma = s.spawn(|| {
                let mut r = fir::Resizer::new();
                [
                    resize_plane(cb, cw, ch, &mut r),
                    resize_plane(cr, cw, ch, &mut r),
                ]
            });
            let y = resize_plane(&img.y, w, h, &mut fir::Resizer::new());
            let chroma = match chroma.join() {
                Ok(c) => c,
                Err(p) => std::panic::resume_unwind(p),
            };
            Ycc {
                y,
                chroma: Some(chroma),
            }
        }),
        Some([cb, cr]) => {
            let mut r = fir::Resizer::new();
            Ycc {
                y: resize_plane(&img.y, w, h, &mut r),
                chroma: Some([
                    resize_plane(cb, cw, ch, &mut r),
                    resize_plane(cr, cw, ch, &mut r),
                ]),
            }
        }
    }
}

/// Applies an EXIF orientation (1-8) so the picture comes out upright.
pub(crate) fn orient(img: Ycc, orientation: u8) -> Ycc {
    if !(2..=8).contains(&orientation) {
        return img;
    }
    Ycc {
        y: orient_plane(&img.y, orientation),
        chroma: img.chroma.map(|[cb, cr]| {
            [
                orient_plane(&cb, orientation),
                orient_plane(&cr, orientation),
            ]
        }),
    }
}

/// EXIF orientation `o` says how the stored rows must be transformed for
/// display: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
/// 7 transverse, 8 rotate 90 anticlockwise.
fn orient_plane(src: &Plane, o: u8) -> Plane {
    let (w, h) = (src.width, src.height);
    let swap = o >= 5;
    let (ow, oh) = if swap { (h, w) } else { (w, h) };
    let mut out = Plane::new(ow, oh);
    if !swap {
        for y in 0..h {
            let sy = if o == 3 || o == 4 { h - 1 - y } else { y };
            let s = src.row(sy);
            let d = out.row_mut(y);
            if o == 2 || o == 3 {
                for (dv, sv) in d.iter_mut().zip(s.iter().rev()) {
                    *dv = *sv;
                }
            } else {
                d.copy_from_slice(s);
            }
        }
        return out;
    }
    // Output pixel (x, y) comes from source (sx, sy):
    //   5 transpose:  sx = y,         sy = x
    //   6 rotate cw:  sx = y,         sy = h - 1 - x
    //   7 transverse: sx = w - 1 - y, sy = h - 1 - x
    //   8 rotate ccw: sx = w - 1 - y, sy = x
    // Walk the source in tiles so both sides stay in cache.
    const T: u32 = 32;
    let flip_sx = o == 7 || o == 8;
    let flip_sy = o == 6 || o == 7;
    let ostride = out.stride;
    for ty in (0..oh).step_by(T as usize) {
        for tx in (0..ow).step_by(T as usize) {
            for y in ty..(ty + T).min(oh) {
                let sx = if flip_sx { w - 1 - y } else { y } as usize;
                let drow = &mut out.data[y as usize * ostride..];
                for x in tx..(tx + T).min(ow) {
                    let sy = if flip_sy { h - 1 - x } else { x } as usize;
                    drow[x as usize] = src.data[sy * src.stride + sx];
                }
            }
        }
    }
    out
}

/// Full-range BT.601 (JFIF) conversion of one pixel.
#[inline]
fn ycc(r: i32, g: i32, b: i32) -> (u8, i32, i32) {
    // 16-bit fixed point; the same coefficients libjpeg uses.
    let y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
    let cb = -11059 * r - 21709 * g + 32768 * b;
    let cr = 32768 * r - 27439 * g - 5329 * b;
    (y.clamp(0, 255) as u8, cb, cr)
}

/// Converts interleaved 8-bit pixels (`channels` = 1 grey, 2 grey+alpha,
/// 3 RGB, 4 RGBA) to planes; alpha is flattened onto white. Colour pictures get
/// chroma averaged over 2x2 pixels.
pub(crate) fn from_interleaved(px: &[u8], w: u32, h: u32, channels: usize) -> Ycc {
    let (wu, hu) = (w as usize, h as usize);
    debug_assert!(px.len() >= wu * hu * channels);
    let flatten = |v: u8, a: u8| -> i32 {
        let (v, a) = (v as i32, a as i32);
        (v * a + 255 * (255 - a) + 127) / 255
    };
    if channels <= 2 {
        let mut y = Plane::new(w, h);
        for (row, dst) in px
            .chunks_exact(wu * channels)
            .zip(y.data.chunks_exact_mut(wu))
        {
            if channels == 1 {
                dst.copy_from_slice(row);
            } else {
                for (d, p) in dst.iter_mut().zip(row.chunks_exact(2)) {
                    *d = flatten(p[0], p[1]) as u8;
                }
            }
        }
        return Ycc { y, chroma: None };
    }
    let (cw, ch) = chroma_size(w, h);
    let mut y = Plane::new(w, h);
    let mut cb = Plane::new(cw, ch);
    let mut cr = Plane::new(cw, ch);
    // Sums of the 2x2 chroma in 16.16 fixed point, one chroma row at a time.
    let mut sum_cb = vec![0i64; cw as usize];
    let mut sum_cr = vec![0i64; cw as usize];
    let mut count = vec![0i64; cw as usize];
    for yy in 0..hu {
        let row = &px[yy * wu * channels..(yy + 1) * wu * channels];
        let yrow = &mut y.data[yy * wu..(yy + 1) * wu];
        for x in 0..wu {
            let p = &row[x * channels..x * channels + channels];
            let (r, g, b) = if channels == 4 {
                (
                    flatten(p[0], p[3]),
                    flatten(p[1], p[3]),
                    flatten(p[2], p[3]),
                )
            } else {
                (p[0] as i32, p[1] as i32, p[2] as i32)
            };
            let (lum, u, v) = ycc(r, g, b);
            yrow[x] = lum;
            sum_cb[x / 2] += u as i64;
            sum_cr[x / 2] += v as i64;
            count[x / 2] += 1;
        }
        if yy % 2 == 1 || yy + 1 == hu {
            let cy = (yy / 2) as u32;
            let (cbr, crr) = (cb.row_mut(cy), cr.row_mut(cy));
            for i in 0..cw as usize {
                let n = count[i].max(1) << 16;
                cbr[i] = (128 + (sum_cb[i] + n / 2).div_euclid(n)).clamp(0, 255) as u8;
                crr[i] = (128 + (sum_cr[i] + n / 2).div_euclid(n)).clamp(0, 255) as u8;
            }
            sum_cb.fill(0);
            sum_cr.fill(0);
            count.fill(0);
        }
    }
    Ycc {
        y,
        chroma: Some([cb, cr]),
    }
}

#[cfg(test)]
pub(crate) fn to_rgb(img: &Ycc) -> Vec<u8> {
    // Test helper: nearest-neighbour chroma, JFIF conversion.
    let (w, h) = (img.y.width, img.y.height);
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let l = img.y.row(y)[x as usize] as f32;
            let (u, v) = match &img.chroma {
                Some([cb, cr]) => {
                    let cx = (x as u64 * cb.width as u64 / w as u64) as u32;
                    let cy = (y as u64 * cb.height as u64 / h as u64) as u32;
                    (
                        cb.row(cy)[cx as usize] as f32 - 128.0,
                        cr.row(cy)[cx as usize] as f32 - 128.0,
                    )
                }
                None => (0.0, 0.0),
            };
            let r = l + 1.402 * v;
            let g = l - 0.344_136 * u - 0.714_136 * v;
            let b = l + 1.772 * u;
            out.extend([r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(w: u32, h: u32) -> Plane {
        let mut p = Plane::new(w, h);
        for (i, v) in p.data.iter_mut().enumerate() {
            *v = i as u8;
        }
        p
    }

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(4032, 3024, 1920), (1920, 1440));
        assert_eq!(fit(3024, 4032, 1920), (1440, 1920));
        assert_eq!(fit(800, 600, 1920), (800, 600));
        assert_eq!(fit(10000, 1, 320), (320, 1));
        assert_eq!(fit(1920, 1920, 320), (320, 320));
    }

    #[test]
    fn orientations_move_pixels_like_exif_says() {
        // 3 x 2 plane:  0 1 2 / 3 4 5
        let p = numbered(3, 2);
        let get = |o: u8| {
            let q = orient_plane(&p, o);
            (q.width, q.height, q.data.clone())
        };
        assert_eq!(get(2), (3, 2, vec![2, 1, 0, 5, 4, 3]));
        assert_eq!(get(3), (3, 2, vec![5, 4, 3, 2, 1, 0]));
        assert_eq!(get(4), (3, 2, vec![3, 4, 5, 0, 1, 2]));
        assert_eq!(get(5), (2, 3, vec![0, 3, 1, 4, 2, 5]));
        assert_eq!(get(6), (2, 3, vec![3, 0, 4, 1, 5, 2]));
        assert_eq!(get(7), (2, 3, vec![5, 2, 4, 1, 3, 0]));
        assert_eq!(get(8), (2, 3, vec![2, 5, 1, 4, 0, 3]));
    }

    #[test]
    fn rgba_is_flattened_onto_white() {
        let px = [255u8, 0, 0, 0, 0, 0, 255, 255];
        let img = from_interleaved(&px, 2, 1, 4);
        let rgb = to_rgb(&img);
        // A transparent pixel becomes white; the pair's chroma is shared, so
        // only check luma: white is 255, blue is ~29.
        assert_eq!(img.y.data, vec![255, 29]);
        assert_eq!(rgb.len(), 6);
    }

    #[test]
    fn resize_shrinks_both_planes() {
        let img = from_interleaved(&vec![200u8; 64 * 48 * 3], 64, 48, 3);
        let r = resize(&img, 33, 25);
        assert_eq!((r.y.width, r.y.height), (33, 25));
        let [cb, _] = r.chroma.as_ref().unwrap();
        assert_eq!((cb.width, cb.height), (17, 13));
        assert!(r.y.data.iter().all(|&v| v == 200));
    }
}
