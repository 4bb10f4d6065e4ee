//! Intake end to end on small pictures built here: every EXIF orientation,
//! every bad-input class, the colour models cameras and editors produce, and
//! what must (and must not) be in the output files.

use std::io::Cursor;

use super::*;

type Rgb = [u8; 3];

const RED: Rgb = [220, 30, 30];
const GREEN: Rgb = [30, 200, 40];
const BLUE: Rgb = [30, 40, 220];
const YELLOW: Rgb = [240, 230, 40];

fn image_of(w: u32, h: u32, f: impl Fn(u32, u32) -> Rgb) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            v.extend(f(x, y));
        }
    }
    v
}

/// Red, green / blue, yellow quadrants (top-left, top-right / bottom-left, bottom-right).
fn quadrants(w: u32, h: u32) -> Vec<u8> {
    image_of(w, h, |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => YELLOW,
    })
}

/// A smooth, textured picture for quality checks.
fn scene(w: u32, h: u32) -> Vec<u8> {
    image_of(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let t = ((x as f32 * 0.21).sin() + (y as f32 * 0.17).cos()) * 12.0;
        [
            (40.0 + 180.0 * fx + t).clamp(0.0, 255.0) as u8,
            (60.0 + 150.0 * fy - t).clamp(0.0, 255.0) as u8,
            (200.0 - 120.0 * fx * fy + t).clamp(0.0, 255.0) as u8,
        ]
    })
}

fn jpeg(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    encode::encode_rgb(rgb, w as u16, h as u16, 92)
}

fn jpeg_with(
    rgb: &[u8],
    w: u32,
    h: u32,
    f: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 92);
    f(&mut enc);
    enc.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// Inserts APPn segments right after SOI.
fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        out.extend([0xFF, *marker]);
        out.extend(((payload.len() + 2) as u16).to_be_bytes());
        out.extend(payload);
    }
    out.extend(&jpeg[2..]);
    out
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn decode_rgb(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().into_rgb8()
}

fn near(a: Rgb, b: Rgb, tol: i32) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| (*x as i32 - *y as i32).abs() <= tol)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

// ---- a hand-built EXIF (TIFF) block ----

enum Val {
    Short(u16),
    Long(u32),
    Ascii(&'static str),
    Rational(Vec<(u32, u32)>),
}

struct Entry(u16, Val);

impl Entry {
    fn kind_count_bytes(&self) -> (u16, u32, Vec<u8>) {
        match &self.1 {
            Val::Short(v) => (3, 1, v.to_le_bytes().to_vec()),
            Val::Long(v) => (4, 1, v.to_le_bytes().to_vec()),
            Val::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len() as u32, b)
            }
            Val::Rational(r) => (
                5,
                r.len() as u32,
                r.iter()
                    .flat_map(|(n, d)| [n.to_le_bytes(), d.to_le_bytes()].concat())
                    .collect(),
            ),
        }
    }
}

fn ifd_size(entries: &[Entry]) -> u32 {
    let data: usize = entries
        .iter()
        .map(|e| e.kind_count_bytes().2.len())
        .filter(|&l| l > 4)
        .map(|l| l + (l & 1))
        .sum();
    (2 + 12 * entries.len() + 4 + data) as u32
}

fn write_ifd(out: &mut Vec<u8>, entries: &[Entry]) {
    let start = out.len() as u32;
    let mut data_at = start + 2 + 12 * entries.len() as u32 + 4;
    let mut data = Vec::new();
    out.extend((entries.len() as u16).to_le_bytes());
    for e in entries {
        let (kind, count, bytes) = e.kind_count_bytes();
        out.extend(e.0.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(count.to_le_bytes());
        if bytes.len() <= 4 {
            let mut v = bytes.clone();
            v.resize(4, 0);
            out.extend(v);
        } else {
            out.extend(data_at.to_le_bytes());
            data.extend(&bytes);
            if bytes.len() & 1 == 1 {
                data.push(0);
            }
            data_at += (bytes.len() + (bytes.len() & 1)) as u32;
        }
    }
    out.extend(0u32.to_le_bytes());
    out.extend(data);
}

/// (lat, lat ref, lon, lon ref, horizontal error)
type GpsSpec = (f64, &'static str, f64, &'static str, Option<(u32, u32)>);

#[derive(Default)]
struct ExifSpec {
    orientation: Option<u16>,
    taken: Option<&'static str>,
    offset: Option<&'static str>,
    gps: Option<GpsSpec>,
}

fn dms(v: f64) -> Vec<(u32, u32)> {
    let d = v.trunc();
    let m = ((v - d) * 60.0).trunc();
    let s = ((v - d) * 60.0 - m) * 60.0;
    vec![
        (d as u32, 1),
        (m as u32, 1),
        ((s * 10_000.0).round() as u32, 10_000),
    ]
}

/// The APP1 payload: `Exif\0\0` and a little-endian TIFF.
fn exif_app1(spec: &ExifSpec) -> Vec<u8> {
    let mut exif_ifd = Vec::new();
    if let Some(t) = spec.taken {
        exif_ifd.push(Entry(0x9003, Val::Ascii(t)));
    }
    if let Some(o) = spec.offset {
        exif_ifd.push(Entry(0x9011, Val::Ascii(o)));
    }
    let mut gps_ifd = Vec::new();
    if let Some((lat, lat_ref, lon, lon_ref, err)) = spec.gps {
        gps_ifd.push(Entry(0x0001, Val::Ascii(lat_ref)));
        gps_ifd.push(Entry(0x0002, Val::Rational(dms(lat))));
        gps_ifd.push(Entry(0x0003, Val::Ascii(lon_ref)));
        gps_ifd.push(Entry(0x0004, Val::Rational(dms(lon))));
        if let Some(e) = err {
            gps_ifd.push(Entry(0x001f, Val::Rational(vec![e])));
        }
    }
    // Also a camera serial number, which must not reach the output.
    let mut ifd0 = vec![
        Entry(0x010F, Val::Ascii("GridcaseTestCam")),
        Entry(0xA431, Val::Ascii("SERIAL-123456")),
    ];
    if let Some(o) = spec.orientation {
        ifd0.push(Entry(0x0112, Val::Short(o)));
    }
    let n0 = ifd0.len() + usize::from(!exif_ifd.is_empty()) + usize::from(!gps_ifd.is_empty());
    let ifd0_size = ifd_size(&ifd0) + 12 * (n0 - ifd0.len()) as u32;
    let exif_at = 8 + ifd0_size;
    let gps_at = exif_at
        + if exif_ifd.is_empty() {
            0
        } else {
            ifd_size(&exif_ifd)
        };
    if !exif_ifd.is_empty() {
        ifd0.push(Entry(0x8769, Val::Long(exif_at)));
    }
    if !gps_ifd.is_empty() {
        ifd0.push(Entry(0x8825, Val::Long(gps_at)));
    }
    ifd0.sort_by_key(|e| e.0);
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    write_ifd(&mut tiff, &ifd0);
    assert_eq!(tiff.len() as u32, exif_at);
    if !exif_ifd.is_empty() {
        write_ifd(&mut tiff, &exif_ifd);
    }
    assert_eq!(tiff.len() as u32, gps_at);
    if !gps_ifd.is_empty() {
        write_ifd(&mut tiff, &gps_ifd);
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    app1
}

/// The JPEG segment markers in order, up to SOS.
/// A small camera JPEG whose EXIF puts it at `lat`, `lon` (north, east),
/// with `GPSHPositioningError` as a rational when given (for other modules'
/// tests).
pub(crate) fn jpeg_at(lat: f64, lon: f64, error: Option<(u32, u32)>) -> Vec<u8> {
    with_segments(
        &jpeg(&scene(64, 48), 64, 48),
        &[(
            0xE1,
            exif_app1(&ExifSpec {
                orientation: Some(1),
                taken: Some("2026:07:15 09:30:05"),
                gps: Some((lat, "N", lon, "E", error)),
                ..Default::default()
            }),
        )],
    )
}

fn markers(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "output starts with SOI");
    assert_eq!(
        &jpeg[jpeg.len() - 2..],
        &[0xFF, 0xD9],
        "output ends with EOI"
    );
    let mut out = vec![];
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF);
        let m = jpeg[pos + 1];
        out.push(m);
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        if m == 0xDA {
            return out;
        }
        pos += 2 + len;
    }
}

fn assert_stripped(jpeg: &[u8]) {
    for m in markers(jpeg) {
        assert!(
            matches!(m, 0xE0 | 0xDB | 0xC0 | 0xC4 | 0xDD | 0xDA),
            "unexpected marker FF{m:02X} in output"
        );
    }
    for needle in [
        &b"Exif"[..],
        b"http://ns.adobe.com",
        b"ICC_PROFILE",
        b"GridcaseTestCam",
        b"SERIAL-123456",
        b"<x:xmpmeta",
    ] {
        assert!(
            !jpeg.windows(needle.len()).any(|w| w == needle),
            "output contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

fn intake(bytes: &[u8]) -> ProcessedPhoto {
    intake_bytes(bytes, &PhotoConfig::default()).unwrap()
}

fn small_cfg(max_edge: u32, thumb_edge: u32) -> PhotoConfig {
    PhotoConfig {
        max_edge,
        thumb_edge,
        ..PhotoConfig::default()
    }
}

fn pixel(img: &image::RgbImage, fx: f32, fy: f32) -> Rgb {
    let x = ((img.width() as f32 * fx) as u32).min(img.width() - 1);
    let y = ((img.height() as f32 * fy) as u32).min(img.height() - 1);
    img.get_pixel(x, y).0
}

fn assert_upright_quadrants(img: &image::RgbImage, what: &str) {
    for (fx, fy, want, name) in [
        (0.25, 0.25, RED, "top-left red"),
        (0.75, 0.25, GREEN, "top-right green"),
        (0.25, 0.75, BLUE, "bottom-left blue"),
        (0.75, 0.75, YELLOW, "bottom-right yellow"),
    ] {
        let got = pixel(img, fx, fy);
        assert!(near(got, want, 40), "{what}: {name} expected, got {got:?}");
    }
}

// ---- orientation ----

#[test]
fn every_exif_orientation_comes_out_upright() {
    // Upright picture 64 x 48; for each orientation store the picture the way
    // a camera would (the inverse transform) and tag it.
    let (w, h) = (64u32, 48u32);
    let upright = image::RgbImage::from_raw(w, h, quadrants(w, h)).unwrap();
    for o in 1u8..=8 {
        let inverse = match o {
            6 => 8,
            8 => 6,
            o => o,
        };
        let mut stored = image::DynamicImage::ImageRgb8(upright.clone());
        stored.apply_orientation(image::metadata::Orientation::from_exif(inverse).unwrap());
        let stored = stored.into_rgb8();
        let (sw, sh) = stored.dimensions();
        let file = with_segments(
            &jpeg(stored.as_raw(), sw, sh),
            &[(
                0xE1,
                exif_app1(&ExifSpec {
                    orientation: Some(o as u16),
                    ..Default::default()
                }),
            )],
        );
        for cfg in [PhotoConfig::default(), small_cfg(32, 16)] {
            let p = intake_bytes(&file, &cfg).unwrap();
            let (ew, eh) = planes::fit(w, h, cfg.max_edge);
            assert_eq!((p.width, p.height), (ew, eh), "orientation {o} size");
            let out = decode_rgb(&p.jpeg);
            assert_eq!(out.dimensions(), (ew, eh));
            assert_upright_quadrants(&out, &format!("orientation {o}, max edge {}", cfg.max_edge));
            let thumb = decode_rgb(&p.thumb);
            assert_eq!(thumb.dimensions(), (p.thumb_width, p.thumb_height));
            assert_upright_quadrants(&thumb, &format!("thumbnail, orientation {o}"));
            assert_stripped(&p.jpeg);
            assert_stripped(&p.thumb);
        }
    }
}

#[test]
fn orientation_in_png_exif_is_applied() {
    let (w, h) = (40u32, 30u32);
    let upright = image::RgbImage::from_raw(w, h, quadrants(w, h)).unwrap();
    let mut stored = image::DynamicImage::ImageRgb8(upright);
    stored.apply_orientation(image::metadata::Orientation::from_exif(8).unwrap());
    let mut file = png(stored);
    // Insert an eXIf chunk after IHDR (8 + 25 bytes).
    let tiff = exif_app1(&ExifSpec {
        orientation: Some(6),
        ..Default::default()
    })[6..]
        .to_vec();
    let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
    chunk.extend(b"eXIf");
    chunk.extend(&tiff);
    chunk.extend(crc32(&chunk[4..]).to_be_bytes());
    file.splice(33..33, chunk);
    let p = intake(&file);
    assert_eq!((p.width, p.height), (w, h));
    assert_upright_quadrants(&decode_rgb(&p.jpeg), "PNG with eXIf orientation 6");
}

// ---- EXIF fields ----

#[test]
fn capture_time_and_gps_come_from_exif() {
    let rgb = scene(48, 32);
    let file = with_segments(
        &jpeg(&rgb, 48, 32),
        &[(
            0xE1,
            exif_app1(&ExifSpec {
                orientation: Some(1),
                taken: Some("2024:07:15 09:30:05"),
                offset: Some("+02:00"),
                gps: Some((28.8725, "N", 105.4417, "E", Some((65, 10)))),
            }),
        )],
    );
    let p = intake(&file);
    // 09:30:05 at UTC+2 is 07:30:05 UTC.
    assert_eq!(
        p.captured_at,
        exif::local_to_utc_millis(2024, 7, 15, 7, 30, 5, 0, 0)
    );
    let gps = p.gps.unwrap();
    assert!((gps.lat - 28.8725).abs() < 1e-6, "{gps:?}");
    assert!((gps.lon - 105.4417).abs() < 1e-6, "{gps:?}");
    assert!((gps.accuracy_m.unwrap() - 6.5).abs() < 1e-9);
    assert_stripped(&p.jpeg);
}

#[test]
fn missing_offset_means_china_time_and_missing_error_means_unknown_accuracy() {
    let rgb = scene(48, 32);
    let file = with_segments(
        &jpeg(&rgb, 48, 32),
        &[(
            0xE1,
            exif_app1(&ExifSpec {
                taken: Some("2024:07:15 09:30:05"),
                gps: Some((33.8688, "S", 151.2093, "W", None)),
                ..Default::default()
            }),
        )],
    );
    let p = intake(&file);
    assert_eq!(
        p.captured_at,
        exif::local_to_utc_millis(2024, 7, 15, 1, 30, 5, 0, 0)
    );
    let gps = p.gps.unwrap();
    assert!(
        (gps.lat + 33.8688).abs() < 1e-6 && (gps.lon + 151.2093).abs() < 1e-6,
        "{gps:?}"
    );
    assert_eq!(gps.accuracy_m, None, "no invented accuracy");
}

#[test]
fn no_exif_means_no_time_and_no_place() {
    let p = intake(&jpeg(&scene(40, 30), 40, 30));
    assert_eq!((p.captured_at, p.gps), (None, None));
}

// ---- metadata is stripped ----

#[test]
fn exif_xmp_and_icc_never_reach_the_output() {
    let rgb = scene(64, 48);
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend(b"<x:xmpmeta><rdf:Description GPSLatitude='28,52N'/></x:xmpmeta>");
    let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc.extend([0u8; 128]);
    let file = with_segments(
        &jpeg(&rgb, 64, 48),
        &[
            (
                0xE1,
                exif_app1(&ExifSpec {
                    orientation: Some(1),
                    taken: Some("2024:01:02 03:04:05"),
                    gps: Some((28.87, "N", 105.44, "E", None)),
                    ..Default::default()
                }),
            ),
            (0xE1, xmp),
            (0xE2, icc),
            (0xFE, b"comment with a name".to_vec()),
        ],
    );
    let p = intake(&file);
    assert!(p.gps.is_some() && p.captured_at.is_some());
    assert_stripped(&p.jpeg);
    assert_stripped(&p.thumb);
}

// ---- sizes ----

#[test]
fn big_photos_are_bounded_and_small_ones_not_upscaled() {
    let p = intake_bytes(&jpeg(&scene(400, 300), 400, 300), &small_cfg(100, 30)).unwrap();
    assert_eq!((p.width, p.height), (100, 75));
    assert_eq!((p.thumb_width, p.thumb_height), (30, 23));
    assert_eq!(decode_rgb(&p.thumb).dimensions(), (30, 23));

    let p = intake(&jpeg(&scene(120, 90), 120, 90));
    assert_eq!((p.width, p.height), (120, 90));
    assert_eq!(decode_rgb(&p.jpeg).dimensions(), (120, 90));
    // The thumbnail bound is 320: a 120 px photo's thumbnail is the same size.
    assert_eq!((p.thumb_width, p.thumb_height), (120, 90));

    // Portrait.
    let p = intake_bytes(&jpeg(&scene(90, 200), 90, 200), &small_cfg(100, 40)).unwrap();
    assert_eq!((p.width, p.height), (45, 100));
    assert_eq!((p.thumb_width, p.thumb_height), (18, 40));
}

#[test]
fn digests_are_lowercase_sha256_of_the_outputs() {
    let p = intake(&jpeg(&scene(64, 48), 64, 48));
    assert_eq!(p.sha256, sha256_hex(&p.jpeg));
    assert_eq!(p.thumb_sha256, sha256_hex(&p.thumb));
    assert!(is_sha256_hex(&p.sha256) && is_sha256_hex(&p.thumb_sha256));
    // Deterministic: the same input gives the same files.
    let again = intake(&jpeg(&scene(64, 48), 64, 48));
    assert_eq!(again.sha256, p.sha256);
}

// ---- the fast decoder against a reference ----

/// Box-averages an RGB image by `s`.
fn box_down(img: &image::RgbImage, s: u32) -> Vec<u8> {
    let (w, h) = (img.width().div_ceil(s), img.height().div_ceil(s));
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0u32; 3];
            let mut n = 0;
            for yy in y * s..((y + 1) * s).min(img.height()) {
                for xx in x * s..((x + 1) * s).min(img.width()) {
                    let p = img.get_pixel(xx, yy).0;
                    for c in 0..3 {
                        acc[c] += p[c] as u32;
                    }
                    n += 1;
                }
            }
            out.extend(acc.map(|a| ((a + n / 2) / n) as u8));
        }
    }
    out
}

#[test]
fn fast_decoder_matches_reference_at_every_scale_and_sampling() {
    let (w, h) = (77u32, 53u32); // not a multiple of the block size
    let rgb = scene(w, h);
    let files = [
        (
            "4:2:0",
            jpeg_with(&rgb, w, h, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2)
            }),
        ),
        (
            "4:4:4",
            jpeg_with(&rgb, w, h, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1)
            }),
        ),
        (
            "4:2:2",
            jpeg_with(&rgb, w, h, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_1)
            }),
        ),
        (
            "4:4:0",
            jpeg_with(&rgb, w, h, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_2)
            }),
        ),
        (
            "restart markers",
            jpeg_with(&rgb, w, h, |e| {
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
                e.set_restart_interval(3);
            }),
        ),
    ];
    for (name, file) in files {
        let header = jpeg::read_header(&file, true).unwrap();
        assert_eq!(header.fast_path_blocker(), None, "{name}");
        let reference = decode_rgb(&file);
        for scale in [1u32, 2, 4, 8] {
            let img = jpeg::decode(&header, &file, scale).unwrap();
            let (ew, eh) = (w.div_ceil(scale), h.div_ceil(scale));
            assert_eq!((img.y.width, img.y.height), (ew, eh), "{name} 1/{scale}");
            // Bring chroma to full size the way the pipeline does, then compare.
            let full = planes::resize(&img, ew, eh);
            let full = planes::Ycc {
                chroma: full.chroma.map(|[cb, cr]| {
                    let up = |p: &planes::Plane| {
                        let mut q = planes::Plane::new(ew, eh);
                        for y in 0..eh {
                            for x in 0..ew {
                                q.row_mut(y)[x as usize] = p.row((y / 2).min(p.height - 1))
                                    [(x / 2).min(p.width - 1) as usize];
                            }
                        }
                        q
                    };
                    [up(&cb), up(&cr)]
                }),
                y: full.y,
            };
            let got = planes::to_rgb(&full);
            let want = box_down(&reference, scale);
            let q = psnr(&got, &want);
            // 1/8 leaves 10 x 7 pixels: this test's own chroma round trip costs most.
            let floor = match scale {
                1 => 30.0,
                8 => 22.0,
                _ => 26.0,
            };
            assert!(q > floor, "{name} at 1/{scale}: PSNR {q:.1} dB");
        }
    }
}

#[test]
fn greyscale_jpeg_takes_the_fast_path_and_stays_grey() {
    let (w, h) = (50u32, 40u32);
    let grey: Vec<u8> = (0..w * h).map(|i| ((i % w) * 5) as u8).collect();
    let mut file = Vec::new();
    jpeg_encoder::Encoder::new(&mut file, 90)
        .encode(&grey, w as u16, h as u16, jpeg_encoder::ColorType::Luma)
        .unwrap();
    assert_eq!(
        jpeg::read_header(&file, true).unwrap().fast_path_blocker(),
        None
    );
    let p = intake(&file);
    let out = image::load_from_memory(&p.jpeg).unwrap();
    assert_eq!(out.color(), image::ColorType::L8);
    let out = out.into_luma8();
    let want = image::GrayImage::from_raw(w, h, grey).unwrap();
    assert!(psnr(out.as_raw(), want.as_raw()) > 30.0);
}

// ---- input kinds that must work ----

#[test]
fn png_named_jpg_works() {
    let (w, h) = (60u32, 40u32);
    let file = png(image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(w, h, quadrants(w, h)).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IMG_0001.jpg");
    std::fs::write(&path, &file).unwrap();
    let p = intake_file(&path, &PhotoConfig::default()).unwrap();
    assert_eq!((p.width, p.height), (w, h));
    assert_upright_quadrants(&decode_rgb(&p.jpeg), "PNG named .jpg");
}

#[test]
fn cmyk_jpeg_works() {
    let (w, h) = (48u32, 32u32);
    // Left half pure cyan, right half pure yellow (ink 0-255).
    let mut cmyk = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            cmyk.extend(if x < w / 2 {
                [255u8, 0, 0, 0]
            } else {
                [0, 0, 255, 0]
            });
        }
    }
    let mut file = Vec::new();
    jpeg_encoder::Encoder::new(&mut file, 95)
        .encode(&cmyk, w as u16, h as u16, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let p = intake(&file);
    let out = decode_rgb(&p.jpeg);
    assert_eq!(out.dimensions(), (w, h));
    let (left, right) = (pixel(&out, 0.2, 0.5), pixel(&out, 0.8, 0.5));
    assert!(
        left[0] < 80 && left[1] > 170 && left[2] > 170,
        "cyan came out {left:?}"
    );
    assert!(
        right[0] > 170 && right[1] > 170 && right[2] < 80,
        "yellow came out {right:?}"
    );
}

#[test]
fn sixteen_bit_png_works() {
    let (w, h) = (40u32, 30u32);
    let img = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
        let q = quadrants(w, h);
        let i = ((y * w + x) * 3) as usize;
        image::Rgb([
            q[i] as u16 * 257,
            q[i + 1] as u16 * 257,
            q[i + 2] as u16 * 257,
        ])
    });
    let p = intake(&png(image::DynamicImage::ImageRgb16(img)));
    assert_upright_quadrants(&decode_rgb(&p.jpeg), "16-bit PNG");
}

#[test]
fn grey_and_grey_alpha_pngs_work() {
    let (w, h) = (40u32, 30u32);
    let grey = image::GrayImage::from_fn(w, h, |x, _| image::Luma([(x * 6) as u8]));
    let p = intake(&png(image::DynamicImage::ImageLuma8(grey.clone())));
    let out = image::load_from_memory(&p.jpeg).unwrap().into_luma8();
    assert!(psnr(out.as_raw(), grey.as_raw()) > 30.0);

    // Grey + alpha: the left half transparent must come out white.
    let ga = image::GrayAlphaImage::from_fn(w, h, |x, _| {
        image::LumaA([0, if x < w / 2 { 0 } else { 255 }])
    });
    let p = intake(&png(image::DynamicImage::ImageLumaA8(ga)));
    let out = image::load_from_memory(&p.jpeg).unwrap().into_luma8();
    assert!(
        out.get_pixel(5, 15).0[0] > 240,
        "transparent became {:?}",
        out.get_pixel(5, 15)
    );
    assert!(
        out.get_pixel(35, 15).0[0] < 15,
        "black became {:?}",
        out.get_pixel(35, 15)
    );
}

#[test]
fn rgba_png_is_flattened_onto_white() {
    let (w, h) = (40u32, 30u32);
    let img = image::RgbaImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgba([255, 0, 0, 0]) // transparent red: white
        } else {
            image::Rgba([0, 0, 255, 255]) // opaque blue
        }
    });
    let p = intake(&png(image::DynamicImage::ImageRgba8(img)));
    let out = decode_rgb(&p.jpeg);
    assert!(
        near(pixel(&out, 0.2, 0.5), [255, 255, 255], 12),
        "{:?}",
        pixel(&out, 0.2, 0.5)
    );
    assert!(
        near(pixel(&out, 0.8, 0.5), [0, 0, 255], 30),
        "{:?}",
        pixel(&out, 0.8, 0.5)
    );
}

#[test]
fn webp_and_progressive_jpeg_work() {
    let (w, h) = (48u32, 36u32);
    let upright = image::RgbImage::from_raw(w, h, quadrants(w, h)).unwrap();
    let mut webp = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(upright.clone())
        .write_to(&mut webp, image::ImageFormat::WebP)
        .unwrap();
    let p = intake(webp.get_ref());
    assert_upright_quadrants(&decode_rgb(&p.jpeg), "WebP");

    let progressive = jpeg_with(upright.as_raw(), w, h, |e| e.set_progressive(true));
    assert!(jpeg::read_header(&progressive, true)
        .unwrap()
        .fast_path_blocker()
        .is_some());
    let file = with_segments(
        &progressive,
        &[(
            0xE1,
            exif_app1(&ExifSpec {
                orientation: Some(3),
                ..Default::default()
            }),
        )],
    );
    let p = intake(&file);
    // Stored as is and tagged "rotate 180": the output is the picture turned round.
    let out = decode_rgb(&p.jpeg);
    assert!(near(pixel(&out, 0.25, 0.25), YELLOW, 40) && near(pixel(&out, 0.75, 0.75), RED, 40));
    assert_stripped(&p.jpeg);
    // Shrunk on load (1/2, then resized): same picture, smaller.
    let p = intake_bytes(&file, &small_cfg(20, 10)).unwrap();
    assert_eq!((p.width, p.height), (20, 15));
    let out = decode_rgb(&p.jpeg);
    assert!(near(pixel(&out, 0.25, 0.25), YELLOW, 40) && near(pixel(&out, 0.75, 0.75), RED, 40));
}

// ---- bad input ----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `w` x `h` (with a valid CRC) over tiny data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut file = png(image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8)));
    file[16..20].copy_from_slice(&w.to_be_bytes());
    file[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&file[12..29]);
    file[29..33].copy_from_slice(&crc.to_be_bytes());
    file
}

/// A JPEG whose frame header claims `w` x `h` over tiny data.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut file = jpeg(&scene(16, 16), 16, 16);
    let sof = file.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    file[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    file[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    file
}

#[test]
fn empty_input_is_refused() {
    assert!(matches!(
        intake_bytes(&[], &PhotoConfig::default()),
        Err(PhotoError::Empty)
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jpg");
    std::fs::write(&path, b"").unwrap();
    let err = intake_file(&path, &PhotoConfig::default()).unwrap_err();
    assert!(matches!(err, PhotoError::Empty));
    assert_eq!(err.reason(), "empty file");
}

#[test]
fn not_an_image_is_refused() {
    for bytes in [
        &b"hello, this is a text file"[..],
        b"\x00",
        b"<html></html>",
        &[0xFF; 100],
    ] {
        let err = intake_bytes(bytes, &PhotoConfig::default()).unwrap_err();
        assert!(matches!(err, PhotoError::NotAnImage), "{err:?}");
    }
    let err = intake_bytes(b"GIF89a\x01\x00\x01\x00", &PhotoConfig::default()).unwrap_err();
    assert!(
        matches!(&err, PhotoError::Unsupported { format } if format == "GIF"),
        "{err:?}"
    );
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    let err = intake_bytes(heic, &PhotoConfig::default()).unwrap_err();
    assert!(
        matches!(&err, PhotoError::Unsupported { format } if format == "HEIC"),
        "{err:?}"
    );
}

#[test]
fn truncated_files_are_corrupt_not_panics() {
    let file = jpeg(&scene(64, 48), 64, 48);
    for cut in [3, 20, file.len() / 3, file.len() / 2, file.len() - 40] {
        let err = intake_bytes(&file[..cut], &PhotoConfig::default()).unwrap_err();
        assert!(
            matches!(&err, PhotoError::Corrupt { reason } if reason.contains("truncated")),
            "cut at {cut}: {err:?}"
        );
    }
    let progressive = jpeg_with(&scene(64, 48), 64, 48, |e| e.set_progressive(true));
    for cut in [
        progressive.len() / 3,
        progressive.len() / 2,
        progressive.len() - 20,
    ] {
        let err = intake_bytes(&progressive[..cut], &PhotoConfig::default()).unwrap_err();
        assert!(
            matches!(err, PhotoError::Corrupt { .. }),
            "progressive cut at {cut}: {err:?}"
        );
    }
    let file = png(image::DynamicImage::ImageRgb8(
        image::RgbImage::from_raw(64, 48, scene(64, 48)).unwrap(),
    ));
    for cut in [12, 40, file.len() / 2] {
        let err = intake_bytes(&file[..cut], &PhotoConfig::default()).unwrap_err();
        assert!(
            matches!(err, PhotoError::Corrupt { .. }),
            "PNG cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn garbage_after_a_jpeg_header_is_corrupt_not_a_panic() {
    let file = jpeg(&scene(64, 48), 64, 48);
    let mut rng = 0x1234_5678u32;
    let mut corrupt = 0;
    for round in 0..20 {
        let mut bad = file.clone();
        for b in bad[header_len(&file)..file.len() - 2].iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            if rng % 7 == round % 7 {
                *b = rng as u8;
            }
        }
        // Scrambled entropy-coded data either decodes to some picture of the
        // header's size (JPEG has no checksum) or is refused as corrupt:
        // never another error, never a panic, never a picture of another size.
        match intake_bytes(&bad, &PhotoConfig::default()) {
            Ok(p) => {
                assert_eq!((p.width, p.height), (64, 48), "round {round}");
                let out = image::load_from_memory(&p.jpeg).unwrap();
                assert_eq!((out.width(), out.height()), (64, 48), "round {round}");
            }
            Err(PhotoError::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("round {round}: {e:?}"),
        }
    }
    assert!(corrupt > 0, "no round was refused as corrupt");
}

fn header_len(jpeg: &[u8]) -> usize {
    let sos = jpeg.windows(2).position(|m| m == [0xFF, 0xDA]).unwrap();
    sos + 2 + u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]) as usize
}

#[test]
fn too_many_pixels_is_refused_from_the_header() {
    // 8000 x 6001 = 48,008,000 pixels: over the limit by a row. The files are a
    // few hundred bytes, so decoding them would fail differently.
    let err = intake_bytes(&jpeg_claiming(8000, 6001), &PhotoConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PhotoError::TooManyPixels {
                width: 8000,
                height: 6001,
                limit: 48_000_000
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), "too many pixels");
    let err = intake_bytes(&png_claiming(8000, 6001), &PhotoConfig::default()).unwrap_err();
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err:?}");
    // Decompression bombs claim far more.
    let err = intake_bytes(&png_claiming(100_000, 100_000), &PhotoConfig::default()).unwrap_err();
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err:?}");
    let err = intake_bytes(&jpeg_claiming(65_535, 65_535), &PhotoConfig::default()).unwrap_err();
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err:?}");
    // Exactly at the limit passes the header check (and then fails on the data).
    let err = intake_bytes(&jpeg_claiming(8000, 6000), &PhotoConfig::default()).unwrap_err();
    assert!(matches!(err, PhotoError::Corrupt { .. }), "{err:?}");
}

#[test]
fn too_large_input_is_refused_before_reading() {
    let cfg = PhotoConfig::default();
    let big = vec![0u8; cfg.max_input_bytes as usize + 1];
    let err = intake_bytes(&big, &cfg).unwrap_err();
    assert!(
        matches!(err, PhotoError::TooLarge { bytes, limit } if bytes == limit + 1),
        "{err:?}"
    );
    // A sparse 1 GB file: refused from its size, without reading it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jpg");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let err = intake_file(&path, &cfg).unwrap_err();
    assert!(
        matches!(err, PhotoError::TooLarge { bytes, .. } if bytes == 1 << 30),
        "{err:?}"
    );
    let err = intake_file(&dir.path().join("missing.jpg"), &cfg).unwrap_err();
    assert!(matches!(err, PhotoError::Io(_)), "{err:?}");
}

#[test]
fn errors_say_why_without_content() {
    let err = intake_bytes(b"secret resident text", &PhotoConfig::default()).unwrap_err();
    assert!(!err.to_string().contains("secret"));
    assert_eq!(err.reason(), "not an image");
    let bad = PhotoConfig {
        quality: 0,
        ..PhotoConfig::default()
    };
    assert!(matches!(
        intake_bytes(b"x", &bad),
        Err(PhotoError::InvalidConfig { .. })
    ));
}

#[test]
fn fuzz_regressions_are_refused_not_panics() {
    // Inputs the photo_intake fuzz target crashed on, kept as found; each is
    // named for the typed refusal it must now get.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let result = intake_bytes(&bytes, &PhotoConfig::default());
        assert!(
            matches!(
                result,
                Err(PhotoError::Corrupt { .. }) | Err(PhotoError::Unsupported { .. })
            ),
            "{}: {result:?}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs found");
}
