//! A small, fast decoder for the JPEG files phone cameras write: baseline or
//! extended sequential Huffman, 8-bit, greyscale or YCbCr in one interleaved
//! scan. It decodes straight into Y/Cb/Cr planes and can shrink on load by 2, 4
//! or 8 in the DCT domain (like libjpeg's `scale_denom`), so a 12 MP photo bound
//! for 1920 px never exists at full size. Anything else (progressive, CMYK, RGB,
//! arithmetic coding, 12-bit) is reported as [`JpegError::Unsupported`] so the
//! caller can fall back to a general decoder.

use std::ops::Range;

use super::planes::{Plane, Ycc};

/// Why the fast decoder gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JpegError {
    /// Valid JPEG the fast path does not handle; use the general decoder.
    Unsupported(&'static str),
    /// The file ends before the image data does.
    Truncated,
    /// The data is not a well-formed JPEG.
    Corrupt(&'static str),
}

/// Natural (row-major) index of the k-th coefficient in zig-zag order.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameComponent {
    pub id: u8,
    pub h: u8,
    pub v: u8,
    pub tq: u8,
}

/// What the markers before the first scan say.
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// Start-of-frame marker type (0xC0..=0xCF).
    pub sof: u8,
    pub precision: u8,
    pub components: Vec<FrameComponent>,
    /// Byte range of the first EXIF payload (after `Exif\0\0`).
    pub exif: Option<Range<usize>>,
    pub adobe_transform: Option<u8>,
    restart_interval: u16,
    qt: [[u16; 64]; 4],
    qt_present: [bool; 4],
    dc: [Option<Box<Huffman>>; 4],
    ac: [Option<Box<Huffman>>; 4],
    /// Scan components (index into `components`, dc table, ac table).
    scan: Vec<(usize, u8, u8)>,
    /// Offset of the first byte of entropy-coded data.
    scan_start: usize,
}

fn be16(d: &[u8], at: usize) -> Result<u16, JpegError> {
    match d.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(JpegError::Truncated),
    }
}

/// Reads markers up to the start of the first scan. With `need_scan == false` it
/// stops at the frame header (enough to learn the size), so the size check costs
/// nothing even for a hostile file.
pub(crate) fn read_header(d: &[u8], need_scan: bool) -> Result<Header, JpegError> {
    if d.len() < 2 || d[0] != 0xFF || d[1] != 0xD8 {
        return Err(JpegError::Corrupt("missing start-of-image marker"));
    }
    let mut h = Header {
        width: 0,
        height: 0,
        sof: 0,
        precision: 0,
        components: Vec::new(),
        exif: None,
        adobe_transform: None,
        restart_interval: 0,
        qt: [[0; 64]; 4],
        qt_present: [false; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        scan: Vec::new(),
        scan_start: 0,
    };
    let mut pos = 2;
    loop {
        // Find the next marker, skipping fill bytes.
        if pos >= d.len() {
            return Err(JpegError::Truncated);
        }
        if d[pos] != 0xFF {
            return Err(JpegError::Corrupt("expected a marker"));
        }
        while pos < d.len() && d[pos] == 0xFF {
            pos += 1;
        }
        let Some(&m) = d.get(pos) else {
            return Err(JpegError::Truncated);
        };
        pos += 1;
        match m {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(JpegError::Corrupt("no image data before end-of-image")),
            _ => {}
        }
        let len = be16(d, pos)? as usize;
        if len < 2 {
            return Err(JpegError::Corrupt("bad segment length"));
        }
        let seg_start = pos + 2;
        let seg_end = pos + len;
        if seg_end > d.len() {
            return Err(JpegError::Truncated);
        }
        let seg = &d[seg_start..seg_end];
        match m {
            0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                if !h.components.is_empty() {
                    return Err(JpegError::Corrupt("more than one frame header"));
                }
                if seg.len() < 6 {
                    return Err(JpegError::Corrupt("short frame header"));
                }
                h.sof = m;
                h.precision = seg[0];
                h.height = u16::from_be_bytes([seg[1], seg[2]]) as u32;
                h.width = u16::from_be_bytes([seg[3], seg[4]]) as u32;
                let n = seg[5] as usize;
                if n == 0 || seg.len() < 6 + 3 * n {
                    return Err(JpegError::Corrupt("short frame header"));
                }
                for i in 0..n {
                    let c = &seg[6 + 3 * i..9 + 3 * i];
                    let (hs, vs) = (c[1] >> 4, c[1] & 15);
                    if !(1..=4).contains(&hs) || !(1..=4).contains(&vs) || c[2] > 3 {
                        return Err(JpegError::Corrupt("bad component in frame header"));
                    }
                    h.components.push(FrameComponent {
                        id: c[0],
                        h: hs,
                        v: vs,
                        tq: c[2],
                    });
                }
                if h.width == 0 {
                    return Err(JpegError::Corrupt("image width is zero"));
                }
                if !need_scan {
                    return Ok(h);
                }
            }
            0xDB => {
                let mut s = seg;
                while !s.is_empty() {
                    let (pq, tq) = (s[0] >> 4, (s[0] & 15) as usize);
                    if tq > 3 || pq > 1 {
                        return Err(JpegError::Corrupt("bad quantisation table"));
                    }
                    let need = 1 + 64 * (pq as usize + 1);
                    if s.len() < need {
                        return Err(JpegError::Corrupt("short quantisation table"));
                    }
                    for k in 0..64 {
                        h.qt[tq][k] = if pq == 0 {
                            s[1 + k] as u16
                        } else {
                            u16::from_be_bytes([s[1 + 2 * k], s[2 + 2 * k]])
                        };
                    }
                    h.qt_present[tq] = true;
                    s = &s[need..];
                }
            }
            0xC4 => {
                let mut s = seg;
                while !s.is_empty() {
                    if s.len() < 17 {
                        return Err(JpegError::Corrupt("short Huffman table"));
                    }
                    let (tc, th) = (s[0] >> 4, (s[0] & 15) as usize);
                    if tc > 1 || th > 3 {
                        return Err(JpegError::Corrupt("bad Huffman table"));
                    }
                    let mut counts = [0u8; 16];
                    counts.copy_from_slice(&s[1..17]);
                    let total: usize = counts.iter().map(|&c| c as usize).sum();
                    if total > 256 || s.len() < 17 + total {
                        return Err(JpegError::Corrupt("bad Huffman table"));
                    }
                    let table = Huffman::new(&counts, &s[17..17 + total], tc == 1)?;
                    if tc == 0 {
                        h.dc[th] = Some(Box::new(table));
                    } else {
                        h.ac[th] = Some(Box::new(table));
                    }
                    s = &s[17 + total..];
                }
            }
            0xDD => {
                if seg.len() < 2 {
                    return Err(JpegError::Corrupt("short restart interval"));
                }
                h.restart_interval = u16::from_be_bytes([seg[0], seg[1]]);
            }
            0xE1 if h.exif.is_none() && seg.starts_with(b"Exif\0\0") => {
                h.exif = Some(seg_start + 6..seg_end);
            }
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                h.adobe_transform = Some(seg[11]);
            }
            0xDA => {
                if h.components.is_empty() {
                    return Err(JpegError::Corrupt("scan before frame header"));
                }
                let n = *seg.first().ok_or(JpegError::Corrupt("short scan header"))? as usize;
                if n == 0 || seg.len() < 1 + 2 * n + 3 {
                    return Err(JpegError::Corrupt("short scan header"));
                }
                for i in 0..n {
                    let (id, t) = (seg[1 + 2 * i], seg[2 + 2 * i]);
                    let ci = h
                        .components
                        .iter()
                        .position(|c| c.id == id)
                        .ok_or(JpegError::Corrupt("scan names an unknown component"))?;
                    h.scan.push((ci, t >> 4, t & 15));
                }
                h.scan_start = seg_end;
                return Ok(h);
            }
            _ => {}
        }
        pos = seg_end;
    }
}

impl Header {
    /// Whether [`decode`] can handle this file; otherwise the reason.
    pub fn fast_path_blocker(&self) -> Option<&'static str> {
        if !matches!(self.sof, 0xC0 | 0xC1) {
            return Some("not a sequential Huffman JPEG");
        }
        if self.precision != 8 {
            return Some("not 8-bit");
        }
        if self.height == 0 {
            return Some("height defined later in the file");
        }
        let n = self.components.len();
        if n != 1 && n != 3 {
            return Some("not greyscale or YCbCr");
        }
        if n == 3 {
            if self.adobe_transform == Some(0) {
                return Some("RGB JPEG");
            }
            let ids: Vec<u8> = self.components.iter().map(|c| c.id).collect();
            if ids == b"RGB" && self.adobe_transform.is_none() {
                return Some("RGB JPEG");
            }
            let c = &self.components;
            if c[1].h != 1 || c[1].v != 1 || c[2].h != 1 || c[2].v != 1 || c[0].h > 2 || c[0].v > 2
            {
                return Some("unusual chroma subsampling");
            }
        }
        if self.scan.len() != n {
            return Some("components in separate scans");
        }
        for &(ci, td, ta) in &self.scan {
            if td > 3 || ta > 3 || self.dc[td as usize].is_none() || self.ac[ta as usize].is_none()
            {
                return Some("missing Huffman table");
            }
            if !self.qt_present[self.components[ci].tq as usize] {
                return Some("missing quantisation table");
            }
        }
        None
    }
}

const LOOKUP_BITS: u32 = 10;

/// One Huffman table with a 9-bit lookup and, for AC tables, a combined
/// symbol + value table for the common short codes.
pub(crate) struct Huffman {
    /// (length << 8) | symbol for codes up to LOOKUP_BITS long; 0 = slow path.
    lookup: [u16; 1 << LOOKUP_BITS],
    /// For AC: value << 8 | run << 4 | total length, 0 = not handled.
    fast_ac: [i16; 1 << LOOKUP_BITS],
    /// Largest code of each length (left-aligned to 16 bits is not used; plain), -1 if none.
    maxcode: [i32; 18],
    valoffset: [i32; 18],
    values: [u8; 256],
}

impl Huffman {
    fn new(counts: &[u8; 16], values: &[u8], is_ac: bool) -> Result<Self, JpegError> {
        let mut t = Huffman {
            lookup: [0; 1 << LOOKUP_BITS],
            fast_ac: [0; 1 << LOOKUP_BITS],
            maxcode: [-1; 18],
            valoffset: [0; 18],
            values: [0; 256],
        };
        t.values[..values.len()].copy_from_slice(values);
        let mut code: i32 = 0;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = counts[len - 1] as usize;
            t.valoffset[len] = k as i32 - code;
            for _ in 0..n {
                // Checked before the code indexes the lookup table: an
                // over-full table would write past its end.
                if code >= (1 << len) {
                    return Err(JpegError::Corrupt("bad Huffman table"));
                }
                if len as u32 <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - len as u32;
                    let base = (code as usize) << shift;
                    for i in 0..(1usize << shift) {
                        t.lookup[base + i] = ((len as u16) << 8) | values[k] as u16;
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                t.maxcode[len] = code - 1;
            }
            if code > (1 << len) {
                return Err(JpegError::Corrupt("bad Huffman table"));
            }
            code <<= 1;
        }
        t.maxcode[17] = i32::MAX;
        if is_ac {
            for i in 0..(1usize << LOOKUP_BITS) {
                let e = t.lookup[i];
                if e == 0 {
                    continue;
                }
                let len = (e >> 8) as u32;
                let rs = (e & 255) as u8;
                let (run, size) = ((rs >> 4) as u32, (rs & 15) as u32);
                if size == 0 || len + size > LOOKUP_BITS {
                    continue;
                }
                let bits = ((i as u32) >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
                let v = extend(bits, size);
                if (-128..=127).contains(&v) {
                    t.fast_ac[i] = ((v << 8) | ((run as i32) << 4) | (len + size) as i32) as i16;
                }
            }
        }
        Ok(t)
    }
}

#[inline(always)]
fn extend(v: u32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if v < (1 << (size - 1)) {
        v as i32 - (1 << size) + 1
    } else {
        v as i32
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// A marker (or the end of data) stopped the feed; zeros come after it.
    stopped: bool,
    /// Zero bytes fed after the feed stopped (saturating).
    fill: u32,
}

impl<'a> Bits<'a> {
    #[inline(always)]
    fn refill(&mut self) {
        // Fast: eight bytes with no 0xFF among them.
        if self.pos + 8 <= self.data.len() && !self.stopped {
            let w = u64::from_be_bytes(self.data[self.pos..self.pos + 8].try_into().unwrap());
            let x = !w;
            let has_ff = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let k = (64 - self.n) / 8;
                let take = w >> (64 - 8 * k);
                self.acc |= take << (64 - self.n - 8 * k);
                self.pos += k as usize;
                self.n += 8 * k;
                return;
            }
        }
        self.refill_slow();
    }

    #[inline(always)]
    fn refill_slow(&mut self) {
        while self.n <= 56 {
            let mut b = 0u8;
            if !self.stopped {
                match self.data.get(self.pos) {
                    None => {
                        self.stopped = true;
                    }
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(0) => {
                            b = 0xFF;
                            self.pos += 2;
                        }
                        Some(0xFF) => {
                            // Fill byte before a marker.
                            self.pos += 1;
                            continue;
                        }
                        Some(_) => self.stopped = true,
                        None => self.stopped = true,
                    },
                    Some(&v) => {
                        b = v;
                        self.pos += 1;
                    }
                }
            }
            if self.stopped {
                self.fill = self.fill.saturating_add(1);
            }
            self.acc |= (b as u64) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline(always)]
    fn peek(&self, bits: u32) -> u32 {
        (self.acc >> (64 - bits)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, bits: u32) {
        self.acc <<= bits;
        self.n -= bits;
    }

    #[inline(always)]
    fn get(&mut self, bits: u32) -> u32 {
        if bits == 0 {
            return 0;
        }
        let v = self.peek(bits);
        self.consume(bits);
        v
    }

    #[inline(always)]
    fn symbol(&mut self, t: &Huffman) -> Result<u8, JpegError> {
        let e = t.lookup[self.peek(LOOKUP_BITS) as usize];
        if e != 0 {
            self.consume((e >> 8) as u32);
            return Ok(e as u8);
        }
        self.symbol_slow(t)
    }

    #[inline(always)]
    fn symbol_slow(&mut self, t: &Huffman) -> Result<u8, JpegError> {
        for len in LOOKUP_BITS + 1..=16 {
            let code = self.peek(len) as i32;
            if code <= t.maxcode[len as usize] {
                self.consume(len);
                let idx = (code + t.valoffset[len as usize]) as usize;
                return Ok(t.values[idx & 255]);
            }
        }
        Err(JpegError::Corrupt("bad Huffman code"))
    }

    /// Whether decoding used bits that were not in the file: the entropy-coded
    /// data ended (end of file, or a marker) before the image did.
    #[inline]
    fn overrun(&self) -> Result<(), JpegError> {
        if self.fill as u64 * 8 > self.n as u64 {
            Err(JpegError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Skips to just after the next RST marker.
    #[inline(always)]
    fn restart(&mut self) -> Result<(), JpegError> {
        self.overrun()?;
        self.acc = 0;
        self.n = 0;
        self.stopped = false;
        self.fill = 0;
        let d = self.data;
        let mut p = self.pos;
        while p + 1 < d.len() {
            if d[p] == 0xFF && (0xD0..=0xD7).contains(&d[p + 1]) {
                self.pos = p + 2;
                return Ok(());
            }
            if d[p] == 0xFF && d[p + 1] != 0 && d[p + 1] != 0xFF {
                return Err(JpegError::Corrupt("missing restart marker"));
            }
            p += 1;
        }
        Err(JpegError::Truncated)
    }
}

/// Per-size IDCT matrices: m[u][x] = 1/2 C(u) cos((2x+1) u pi / 2N).
fn idct_matrix<const N: usize>() -> [[f32; N]; N] {
    let mut m = [[0f32; N]; N];
    for (u, row) in m.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            *v = (0.5
                * c
                * (((2 * x + 1) as f64) * (u as f64) * std::f64::consts::PI / (2 * N) as f64).cos())
                as f32;
        }
    }
    m
}

#[inline(always)]
fn idct<const N: usize>(
    coef: &[i32; 64],
    m: &[[f32; N]; N],
    out: &mut [u8],
    stride: usize,
    rows: usize,
) {
    let mut tmp = [[0f32; N]; N];
    for v in 0..rows.min(N) {
        let row = &coef[v * 8..v * 8 + N];
        let t = &mut tmp[v];
        for u in 0..N {
            let c = row[u] as f32;
            for x in 0..N {
                t[x] += c * m[u][x];
            }
        }
    }
    for y in 0..N {
        let mut acc = [128.5f32; N];
        for v in 0..rows.min(N) {
            let w = m[v][y];
            for x in 0..N {
                acc[x] += w * tmp[v][x];
            }
        }
        let o = &mut out[y * stride..y * stride + N];
        for x in 0..N {
            o[x] = acc[x].clamp(0.0, 255.0) as u8;
        }
    }
}

struct Idct {
    m8: [[f32; 8]; 8],
    m4: [[f32; 4]; 4],
    m2: [[f32; 2]; 2],
}

/// Decodes the image shrunk by `scale` (1, 2, 4 or 8) into planes. The header
/// must come from `read_header(data, true)` and have no `fast_path_blocker`.
pub(crate) fn decode(h: &Header, data: &[u8], scale: u32) -> Result<Ycc, JpegError> {
    if let Some(why) = h.fast_path_blocker() {
        return Err(JpegError::Unsupported(why));
    }
    let bs = (8 / scale) as usize; // output block size
    let ncomp = h.components.len();
    let hmax = h.components.iter().map(|c| c.h).max().unwrap_or(1) as u32;
    let vmax = h.components.iter().map(|c| c.v).max().unwrap_or(1) as u32;
    let (mcus_x, mcus_y, single) = if ncomp == 1 {
        (h.width.div_ceil(8), h.height.div_ceil(8), true)
    } else {
        (
            h.width.div_ceil(8 * hmax),
            h.height.div_ceil(8 * vmax),
            false,
        )
    };
    let mut planes = Vec::with_capacity(ncomp);
    for c in &h.components {
        let (bw, bh) = if single {
            (mcus_x, mcus_y)
        } else {
            (mcus_x * c.h as u32, mcus_y * c.v as u32)
        };
        let cw = (h.width * c.h as u32).div_ceil(hmax);
        let ch = (h.height * c.v as u32).div_ceil(vmax);
        let (cw, ch) = if single {
            (h.width, h.height)
        } else {
            (cw, ch)
        };
        let stride = bw as usize * bs;
        planes.push(Plane {
            width: cw.div_ceil(scale),
            height: ch.div_ceil(scale),
            stride,
            data: vec![0u8; stride * bh as usize * bs],
        });
    }
    // Quantisation tables in zig-zag order as f32.
    let qt: Vec<[i32; 64]> = h
        .components
        .iter()
        .map(|c| {
            let mut q = [0i32; 64];
            for (v, &t) in q.iter_mut().zip(h.qt[c.tq as usize].iter()) {
                *v = t as i32;
            }
            q
        })
        .collect();
    let idct_m = Idct {
        m8: idct_matrix::<8>(),
        m4: idct_matrix::<4>(),
        m2: idct_matrix::<2>(),
    };

    let mut bits = Bits {
        data,
        pos: h.scan_start,
        acc: 0,
        n: 0,
        stopped: false,
        fill: 0,
    };
    let mut pred = [0i32; 4];
    let mut coef = [0i32; 64];
    let ri = h.restart_interval as u32;
    let mut todo = ri;
    let scan: Vec<(usize, &Huffman, &Huffman)> = h
        .scan
        .iter()
        .map(|&(ci, td, ta)| {
            (
                ci,
                h.dc[td as usize].as_deref().unwrap(),
                h.ac[ta as usize].as_deref().unwrap(),
            )
        })
        .collect();

    for my in 0..mcus_y {
        // Stop early on a cut file instead of decoding zeros to the end.
        bits.overrun()?;
        for mx in 0..mcus_x {
            if ri > 0 {
                if todo == 0 {
                    bits.restart()?;
                    pred = [0; 4];
                    todo = ri;
                }
                todo -= 1;
            }
            for &(ci, dct, act) in &scan {
                let comp = &h.components[ci];
                let (nh, nv) = if single {
                    (1, 1)
                } else {
                    (comp.h as u32, comp.v as u32)
                };
                let q = &qt[ci];
                for by in 0..nv {
                    for bx in 0..nh {
                        // DC
                        if bits.n < 32 {
                            bits.refill();
                        }
                        let s = bits.symbol(dct)? as u32;
                        if s > 11 {
                            return Err(JpegError::Corrupt("bad DC coefficient size"));
                        }
                        let diff = extend(bits.get(s), s);
                        // Legal DC values are far inside this range; the clamp
                        // only keeps hostile data from overflowing.
                        pred[ci] = (pred[ci] + diff).clamp(-(1 << 16), 1 << 16);
                        coef[0] = pred[ci].wrapping_mul(q[0]);
                        let mut rows = 1usize; // rows of coefficients touched
                        let mut k = 1usize;
                        while k < 64 {
                            if bits.n < 32 {
                                bits.refill();
                            }
                            let fa = act.fast_ac[bits.peek(LOOKUP_BITS) as usize];
                            if fa != 0 {
                                bits.consume((fa & 15) as u32);
                                k += ((fa >> 4) & 15) as usize;
                                if k > 63 {
                                    return Err(JpegError::Corrupt(
                                        "coefficient index out of range",
                                    ));
                                }
                                let z = ZIGZAG[k] as usize;
                                coef[z] = (fa >> 8) as i32 * q[k]; // |v| < 128: no overflow
                                rows = rows.max(z / 8 + 1);
                                k += 1;
                                continue;
                            }
                            let rs = bits.symbol(act)? as u32;
                            let (r, s) = (rs >> 4, rs & 15);
                            if s == 0 {
                                if r == 15 {
                                    k += 16;
                                    continue;
                                }
                                break;
                            }
                            k += r as usize;
                            if k > 63 {
                                return Err(JpegError::Corrupt("coefficient index out of range"));
                            }
                            let v = extend(bits.get(s), s);
                            let z = ZIGZAG[k] as usize;
                            coef[z] = v.wrapping_mul(q[k]);
                            rows = rows.max(z / 8 + 1);
                            k += 1;
                        }
                        // Output block.
                        let p = &mut planes[ci];
                        let ox = ((mx * nh + bx) as usize) * bs;
                        let oy = ((my * nv + by) as usize) * bs;
                        let at = oy * p.stride + ox;
                        let stride = p.stride;
                        let out = &mut p.data[at..];
                        match bs {
                            8 => idct::<8>(&coef, &idct_m.m8, out, stride, rows),
                            4 => idct::<4>(&coef, &idct_m.m4, out, stride, rows),
                            2 => idct::<2>(&coef, &idct_m.m2, out, stride, rows),
                            _ => {
                                out[0] = (coef[0] as f32 / 8.0 + 128.5).clamp(0.0, 255.0) as u8;
                            }
                        }
                        // Clear what we wrote.
                        for r in 0..rows {
                            coef[r * 8..r * 8 + 8].fill(0);
                        }
                    }
                }
            }
        }
    }
    bits.overrun()?;
    let mut planes = planes.into_iter();
    let y = planes.next().ok_or(JpegError::Corrupt("no components"))?;
    let chroma = match (planes.next(), planes.next()) {
        (Some(cb), Some(cr)) => Some([cb, cr]),
        _ => None,
    };
    Ok(Ycc { y, chroma })
}
