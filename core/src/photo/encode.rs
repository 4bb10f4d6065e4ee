//! A baseline JPEG encoder that reads our planes directly: 4:2:0 YCbCr (or
//! greyscale), the IJG quantisation tables scaled by quality exactly like
//! libjpeg, the standard Huffman tables, a float AAN forward DCT. The file has a
//! bare JFIF header and nothing else: no EXIF, XMP, ICC or comments.
//!
//! No colour conversion and no chroma subsampling happen here: the planes
//! already are what the file stores.

// The kernels index 8x8 blocks the way the DCT formulas are written.
#![allow(clippy::needless_range_loop)]

use super::planes::{Plane, Ycc};

/// Natural (row-major) index of the k-th coefficient in zig-zag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// JPEG Annex K tables, natural order.
const LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
const AC_LUMA_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
    0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
    0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
    0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
    0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

/// libjpeg's `jpeg_quality_scaling` + `jpeg_add_quant_table` (baseline).
fn scaled_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|b| ((b as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// Code and length for each symbol of a Huffman table.
struct Codes {
    code: [u16; 256],
    len: [u8; 256],
}

impl Codes {
    fn new(bits: &[u8; 16], values: &[u8]) -> Codes {
        let mut c = Codes {
            code: [0; 256],
            len: [0; 256],
        };
        let mut code = 0u16;
        let mut k = 0;
        for (i, &n) in bits.iter().enumerate() {
            for _ in 0..n {
                c.code[values[k] as usize] = code;
                c.len[values[k] as usize] = i as u8 + 1;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        c
    }
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        // len <= 27 and n < 8 before the call: nothing falls off the top.
        self.acc = (self.acc << len) | (bits as u64 & ((1u64 << len) - 1));
        self.n += len;
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
    }

    fn finish(&mut self) {
        if self.n > 0 {
            // Pad with ones.
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
    }
}

/// Scale factors of the AAN DCT: 1, cos(k pi / 16) * sqrt(2).
const AAN: [f32; 8] = [
    1.0,
    1.387_039_8,
    1.306_563,
    1.175_875_6,
    1.0,
    0.785_694_96,
    0.541_196_1,
    0.275_899_38,
];

/// Where the k-th zig-zag coefficient sits in the DCT output, which is
/// transposed (index u * 8 + v for horizontal u, vertical v).
const ZIGZAG_T: [usize; 64] = {
    let mut t = [0; 64];
    let mut k = 0;
    while k < 64 {
        let n = ZIGZAG[k];
        t[k] = (n & 7) * 8 + (n >> 3);
        k += 1;
    }
    t
};

/// One component's quantisation: the table (natural order) and the reciprocal
/// divisors, AAN scaling included, in zig-zag order.
struct Quant {
    table: [u16; 64],
    recip_zz: [f32; 64],
}

impl Quant {
    fn new(table: [u16; 64]) -> Quant {
        let mut recip_zz = [0f32; 64];
        for (k, r) in recip_zz.iter_mut().enumerate() {
            let n = ZIGZAG[k];
            let (v, u) = (n >> 3, n & 7);
            *r = 1.0 / (table[n] as f32 * AAN[v] * AAN[u] * 8.0);
        }
        Quant { table, recip_zz }
    }
}

/// 1-D AAN forward DCT along the first index, on all eight columns at once.
#[inline(always)]
fn dct_pass(b: &mut [[f32; 8]; 8]) {
    for x in 0..8 {
        let d = [
            b[0][x], b[1][x], b[2][x], b[3][x], b[4][x], b[5][x], b[6][x], b[7][x],
        ];
        let tmp0 = d[0] + d[7];
        let tmp7 = d[0] - d[7];
        let tmp1 = d[1] + d[6];
        let tmp6 = d[1] - d[6];
        let tmp2 = d[2] + d[5];
        let tmp5 = d[2] - d[5];
        let tmp3 = d[3] + d[4];
        let tmp4 = d[3] - d[4];

        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        b[0][x] = tmp10 + tmp11;
        b[4][x] = tmp10 - tmp11;
        let z1 = (tmp12 + tmp13) * 0.707_106_77;
        b[2][x] = tmp13 + z1;
        b[6][x] = tmp13 - z1;

        let tmp10 = tmp4 + tmp5;
        let tmp11 = tmp5 + tmp6;
        let tmp12 = tmp6 + tmp7;
        let z5 = (tmp10 - tmp12) * 0.382_683_43;
        let z2 = 0.541_196_1 * tmp10 + z5;
        let z4 = 1.306_563 * tmp12 + z5;
        let z3 = tmp11 * 0.707_106_77;
        let z11 = tmp7 + z3;
        let z13 = tmp7 - z3;
        b[5][x] = z13 + z2;
        b[3][x] = z13 - z2;
        b[1][x] = z11 + z4;
        b[7][x] = z11 - z4;
    }
}

#[inline(always)]
fn transpose(b: &mut [[f32; 8]; 8]) {
    for i in 0..8 {
        for j in i + 1..8 {
            let t = b[i][j];
            b[i][j] = b[j][i];
            b[j][i] = t;
        }
    }
}

/// The 8x8 block at (bx, by) in block units, edges replicated, level-shifted.
#[inline(always)]
fn load_block(p: &Plane, bx: u32, by: u32) -> [[f32; 8]; 8] {
    let mut b = [[0f32; 8]; 8];
    let (x0, y0) = (bx * 8, by * 8);
    let inside = x0 + 8 <= p.width && y0 + 8 <= p.height;
    for (r, row) in b.iter_mut().enumerate() {
        let y = (y0 + r as u32).min(p.height - 1);
        let src = p.row(y);
        if inside {
            let s = &src[x0 as usize..x0 as usize + 8];
            for c in 0..8 {
                row[c] = s[c] as f32 - 128.0;
            }
        } else {
            for (c, v) in row.iter_mut().enumerate() {
                let x = (x0 + c as u32).min(p.width - 1);
                *v = src[x as usize] as f32 - 128.0;
            }
        }
    }
    b
}

#[inline(always)]
fn magnitude(v: i32) -> (u32, u32) {
    let a = v.unsigned_abs();
    let size = 32 - a.leading_zeros();
    let bits = if v < 0 { (v - 1) as u32 } else { v as u32 };
    (size, bits)
}

/// DCT, quantise and entropy-code one block.
#[inline(always)]
fn encode_block(
    w: &mut BitWriter,
    block: &mut [[f32; 8]; 8],
    q: &Quant,
    dc: &Codes,
    ac: &Codes,
    pred: &mut i32,
) {
    dct_pass(block);
    transpose(block);
    dct_pass(block);
    // block[u][v]: u horizontal, v vertical frequency. Quantise straight into
    // zig-zag order. Rounding: adding 1.5 * 2^23 leaves round-to-nearest(x)
    // in the mantissa for |x| < 2^22 (ours stay below 2^11), without the
    // saturating float-to-int conversion `as` would do.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    let flat = block.as_flattened();
    let mut zz = [0i32; 64];
    let mut mask = 0u64;
    for k in 0..64 {
        let x = flat[ZIGZAG_T[k]] * q.recip_zz[k];
        let v = (x + MAGIC).to_bits() as i32 - MAGIC_BITS;
        zz[k] = v;
        mask |= ((v != 0) as u64) << k;
    }
    let diff = zz[0] - *pred;
    *pred = zz[0];
    let (size, bits) = magnitude(diff);
    w.put(
        ((dc.code[size as usize] as u32) << size) | (bits & ((1 << size) - 1)),
        dc.len[size as usize] as u32 + size,
    );
    let mut mask = mask & !1;
    let mut last = 0u32;
    while mask != 0 {
        let k = mask.trailing_zeros();
        let mut run = k - last - 1;
        while run >= 16 {
            w.put(ac.code[0xF0] as u32, ac.len[0xF0] as u32);
            run -= 16;
        }
        let (size, bits) = magnitude(zz[k as usize]);
        let sym = ((run << 4) | size) as usize;
        w.put(
            ((ac.code[sym] as u32) << size) | (bits & ((1 << size) - 1)),
            ac.len[sym] as u32 + size,
        );
        last = k;
        mask &= mask - 1;
    }
    if last != 63 {
        w.put(ac.code[0] as u32, ac.len[0] as u32);
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend([0xFF, marker]);
    out.extend(((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
}

fn dht(out: &mut Vec<u8>, class_id: u8, bits: &[u8; 16], values: &[u8]) {
    let mut p = vec![class_id];
    p.extend(bits);
    p.extend(values);
    segment(out, 0xC4, &p);
}

/// Encodes at `quality` (1-100, libjpeg's scale). Chroma planes must be the
/// 4:2:0 size of the luma plane (what [`super::planes::resize`] makes).
pub(crate) fn encode(img: &Ycc, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = (img.y.width, img.y.height);
    if w == 0 || h == 0 || w > 65_535 || h > 65_535 {
        return Err(format!("cannot encode a {w}x{h} JPEG"));
    }
    if let Some([cb, cr]) = &img.chroma {
        let want = super::planes::chroma_size(w, h);
        if (cb.width, cb.height) != want || (cr.width, cr.height) != want {
            return Err("chroma planes do not match the picture size".into());
        }
    }
    let luma_q = Quant::new(scaled_table(&LUMA_Q, quality));
    let chroma_q = Quant::new(scaled_table(&CHROMA_Q, quality));
    let mut out = Vec::with_capacity((w as usize * h as usize / 10).max(1024));

    out.extend([0xFF, 0xD8]);
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let mut dqt = vec![0u8];
    dqt.extend(ZIGZAG.iter().map(|&n| luma_q.table[n] as u8));
    if img.chroma.is_some() {
        dqt.push(1);
        dqt.extend(ZIGZAG.iter().map(|&n| chroma_q.table[n] as u8));
    }
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend((h as u16).to_be_bytes());
    sof.extend((w as u16).to_be_bytes());
    if img.chroma.is_some() {
        sof.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    } else {
        sof.extend([1, 1, 0x11, 0]);
    }
    segment(&mut out, 0xC0, &sof);
    dht(&mut out, 0x00, &DC_LUMA_BITS, &DC_VALUES);
    dht(&mut out, 0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES);
    if img.chroma.is_some() {
        dht(&mut out, 0x01, &DC_CHROMA_BITS, &DC_VALUES);
        dht(&mut out, 0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES);
        segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    } else {
        segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    }

    let dc_l = Codes::new(&DC_LUMA_BITS, &DC_VALUES);
    let ac_l = Codes::new(&AC_LUMA_BITS, &AC_LUMA_VALUES);
    let mut wr = BitWriter { out, acc: 0, n: 0 };
    match &img.chroma {
        None => {
            let mut pred = 0;
            for by in 0..h.div_ceil(8) {
                for bx in 0..w.div_ceil(8) {
                    let mut b = load_block(&img.y, bx, by);
                    encode_block(&mut wr, &mut b, &luma_q, &dc_l, &ac_l, &mut pred);
                }
            }
        }
        Some([cb, cr]) => {
            let dc_c = Codes::new(&DC_CHROMA_BITS, &DC_VALUES);
            let ac_c = Codes::new(&AC_CHROMA_BITS, &AC_CHROMA_VALUES);
            let mut pred = [0i32; 3];
            for my in 0..h.div_ceil(16) {
                for mx in 0..w.div_ceil(16) {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let mut b = load_block(&img.y, mx * 2 + dx, my * 2 + dy);
                        encode_block(&mut wr, &mut b, &luma_q, &dc_l, &ac_l, &mut pred[0]);
                    }
                    let mut b = load_block(cb, mx, my);
                    encode_block(&mut wr, &mut b, &chroma_q, &dc_c, &ac_c, &mut pred[1]);
                    let mut b = load_block(cr, mx, my);
                    encode_block(&mut wr, &mut b, &chroma_q, &dc_c, &ac_c, &mut pred[2]);
                }
            }
        }
    }
    wr.finish();
    let mut out = wr.out;
    out.extend([0xFF, 0xD9]);
    Ok(out)
}

/// Encodes interleaved RGB with the `jpeg-encoder` crate (test helper for
/// building inputs the way other software writes them).
#[cfg(test)]
pub(crate) fn encode_rgb(rgb: &[u8], w: u16, h: u16, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

#[cfg(test)]
mod tests {
    use super::super::planes::{self, from_interleaved};
    use super::*;

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
    }

    fn scene(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let t = ((x as f32 * 0.3).sin() + (y as f32 * 0.2).cos()) * 20.0;
                v.extend([
                    (60.0 + x as f32 * 2.0 + t).clamp(0.0, 255.0) as u8,
                    (90.0 + y as f32 * 2.0 - t).clamp(0.0, 255.0) as u8,
                    (150.0 + t).clamp(0.0, 255.0) as u8,
                ]);
            }
        }
        v
    }

    #[test]
    fn round_trips_through_a_standard_decoder_at_any_size() {
        for (w, h) in [(1, 1), (7, 3), (16, 16), (17, 9), (64, 48), (100, 37)] {
            let rgb = scene(w, h);
            let img = from_interleaved(&rgb, w, h, 3);
            let jpeg = encode(&img, 90).unwrap();
            let back = image::load_from_memory(&jpeg).unwrap().into_rgb8();
            assert_eq!(back.dimensions(), (w, h));
            let q = psnr(back.as_raw(), &rgb);
            assert!(q > 30.0, "{w}x{h}: {q:.1} dB");
        }
    }

    #[test]
    fn greyscale_and_size_comparable_to_libjpeg_style_encoders() {
        let (w, h) = (96, 64);
        let rgb = scene(w, h);
        let img = from_interleaved(&rgb, w, h, 3);
        let ours = encode(&img, 80).unwrap();
        let theirs = encode_rgb(&rgb, w as u16, h as u16, 80);
        let ratio = ours.len() as f64 / theirs.len() as f64;
        assert!(
            (0.8..1.2).contains(&ratio),
            "{} vs {} bytes",
            ours.len(),
            theirs.len()
        );

        let grey = planes::Ycc {
            y: img.y.clone(),
            chroma: None,
        };
        let jpeg = encode(&grey, 85).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!(back.color(), image::ColorType::L8);
        assert!(psnr(back.into_luma8().as_raw(), &img.y.data) > 33.0);
    }

    #[test]
    fn quality_tables_follow_libjpeg() {
        assert_eq!(scaled_table(&LUMA_Q, 50), LUMA_Q);
        assert_eq!(scaled_table(&LUMA_Q, 100), [1; 64]);
        assert_eq!(scaled_table(&LUMA_Q, 80)[0], 6); // 16 * 40 / 100 = 6.4
        assert_eq!(scaled_table(&CHROMA_Q, 1)[0], 255);
    }
}
