//! Photo intake benchmark: a 12 MP camera JPEG (4032 x 3024, about 3 MB, EXIF
//! orientation 6 and GPS) into the 1920 px JPEG and the 320 px thumbnail, as a
//! whole process, side by side with `vipsthumbnail` making only the 1920 px
//! JPEG, in one process (the fair shape: vips is not handicapped with a second
//! process and a Q80 round trip; ours does more, both outputs):
//!
//! ```text
//! gridcase photo-intake in.jpg --out DIR
//! vipsthumbnail in.jpg -s 1920 -o big.jpg[Q=80,strip]
//! ```
//!
//! The most threads each process ran at once is sampled from `/proc` while it
//! runs (vips sizes its pool by the cores; ours decodes on one thread and
//! makes the thumbnail on a second).
//!
//! Each tool runs several times, interleaved, as child processes; wall time,
//! CPU time (user + system) and peak RSS come from `wait4`'s rusage, and the
//! medians are reported with the output sizes and the PSNR of each tool's
//! output against a reference (full decode, Lanczos3 downscale).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const WIDTH: u32 = 4032;
pub const HEIGHT: u32 = 3024;
const RUNS: usize = 7;

/// One child process's cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcCost {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kb: u64,
    /// The most threads seen at once while it ran.
    pub max_threads: u64,
}

/// A tool's medians over the runs, and what it produced.
#[derive(Debug, Clone)]
pub struct ToolResult {
    pub name: String,
    pub runs: Vec<ProcCost>,
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kb: u64,
    pub max_threads: u64,
    pub photo_bytes: u64,
    pub photo_size: (u32, u32),
    /// `None`: the tool was not asked for one.
    pub thumb_bytes: Option<u64>,
    pub thumb_size: (u32, u32),
    /// dB against the reference downscale.
    pub photo_psnr: f64,
    pub thumb_psnr: f64,
}

#[derive(Debug, Clone)]
pub struct PhotoBenchReport {
    pub input_bytes: u64,
    pub gridcase: ToolResult,
    /// None when vipsthumbnail is not installed (see `vips_missing`).
    pub vips: Option<ToolResult>,
    pub vips_missing: Option<String>,
    pub load_before: String,
    pub load_after: String,
}

impl PhotoBenchReport {
    /// Table rows: `| what | gridcase | vipsthumbnail | ratio |`.
    pub fn markdown_rows(&self) -> Vec<String> {
        let g = &self.gridcase;
        let Some(v) = &self.vips else {
            return vec![format!(
                "| photo: 12 MP JPEG ({} bytes) to 1920 px + 320 px thumb, whole process | wall {:.1} ms, CPU {:.1} ms, peak RSS {:.1} MiB | vipsthumbnail missing: {} | |",
                self.input_bytes,
                ms(g.wall),
                ms(g.cpu),
                g.max_rss_kb as f64 / 1024.0,
                self.vips_missing.as_deref().unwrap_or("not found"),
            )];
        };
        let ratio = |a: f64, b: f64| a / b;
        vec![
            format!(
                "| photo: 12 MP JPEG ({:.2} MB), one process each: ours makes the 1920 px JPEG + the 320 px thumb ({} threads at most), vipsthumbnail only the 1920 px JPEG ({} threads at most); wall time (median of {}) | {:.1} ms | {:.1} ms | {:.2}× |",
                self.input_bytes as f64 / 1e6,
                g.max_threads,
                v.max_threads,
                g.runs.len(),
                ms(g.wall),
                ms(v.wall),
                ratio(ms(g.wall), ms(v.wall))
            ),
            format!(
                "| photo: CPU time, user + system (same jobs as above) | {:.1} ms | {:.1} ms | {:.2}× |",
                ms(g.cpu),
                ms(v.cpu),
                ratio(ms(g.cpu), ms(v.cpu))
            ),
            format!(
                "| photo: peak RSS | {:.1} MiB | {:.1} MiB | {:.2}× |",
                g.max_rss_kb as f64 / 1024.0,
                v.max_rss_kb as f64 / 1024.0,
                ratio(g.max_rss_kb as f64, v.max_rss_kb as f64)
            ),
            format!(
                "| photo: output {}x{} at Q80, bytes (PSNR vs reference) | {} ({:.2} dB) | {} ({:.2} dB) | {:.2}× |",
                g.photo_size.0,
                g.photo_size.1,
                g.photo_bytes,
                g.photo_psnr,
                v.photo_bytes,
                v.photo_psnr,
                ratio(g.photo_bytes as f64, v.photo_bytes as f64)
            ),
            format!(
                "| photo: thumbnail {}x{}, bytes (PSNR vs reference) | {} ({:.2} dB) | not asked of vipsthumbnail | |",
                g.thumb_size.0,
                g.thumb_size.1,
                g.thumb_bytes.unwrap_or(0),
                g.thumb_psnr,
            ),
        ]
    }

    /// Every run, for the curious and for spotting a noisy machine.
    pub fn detail(&self) -> String {
        let mut s = format!(
            "load average before: {}, after: {}\n",
            self.load_before, self.load_after
        );
        for t in std::iter::once(&self.gridcase).chain(self.vips.as_ref()) {
            s.push_str(&format!("{}:\n", t.name));
            for r in &t.runs {
                s.push_str(&format!(
                    "  wall {:7.1} ms  cpu {:7.1} ms  rss {:6.1} MiB  threads {}\n",
                    ms(r.wall),
                    ms(r.cpu),
                    r.max_rss_kb as f64 / 1024.0,
                    r.max_threads
                ));
            }
        }
        s
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

// ---- the input ----

/// xorshift64*, deterministic across platforms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Smooth value noise on a lattice of `cell` pixels.
struct Lattice {
    n: usize,
    cell: f32,
    v: Vec<f32>,
}

impl Lattice {
    fn new(rng: &mut Rng, cell: f32, w: u32, h: u32) -> Self {
        let n = (w.max(h) as f32 / cell) as usize + 2;
        Lattice {
            n,
            cell,
            v: (0..n * n).map(|_| rng.unit() * 2.0 - 1.0).collect(),
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x / self.cell, y / self.cell);
        let (ix, iy) = (fx as usize, fy as usize);
        let (tx, ty) = (fx - ix as f32, fy - iy as f32);
        let (tx, ty) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
        let n = self.n;
        let (a, b) = (self.v[iy * n + ix], self.v[iy * n + ix + 1]);
        let (c, d) = (self.v[(iy + 1) * n + ix], self.v[(iy + 1) * n + ix + 1]);
        let top = a + (b - a) * tx;
        let bottom = c + (d - c) * tx;
        top + (bottom - top) * ty
    }
}

/// A photo-like RGB picture: sky gradient with soft clouds over textured
/// ground, with sensor-like grain. About 3 MB as a Q92 JPEG at 12 MP.
pub fn photo_rgb(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let octaves: Vec<Lattice> = [400.0, 120.0, 40.0, 12.0, 4.0]
        .iter()
        .map(|&c| Lattice::new(&mut rng, c, w, h))
        .collect();
    let hue = Lattice::new(&mut rng, 700.0, w, h);
    let grain = 14.0;
    let mut out = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        let fy = y as f32 / h as f32;
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let mut t = 0.0;
            let mut amp = 1.0;
            for o in &octaves {
                t += o.at(xf, yf) * amp;
                amp *= 0.55;
            }
            let hh = hue.at(xf, yf);
            let g = grain * ((rng.next() & 0xff) as f32 / 255.0 - 0.5);
            let (r, gr, b) = if fy < 0.35 {
                (
                    110.0 + 80.0 * fy + 25.0 * t,
                    150.0 + 60.0 * fy + 25.0 * t,
                    220.0 - 30.0 * fy + 20.0 * t,
                )
            } else {
                let base = 100.0 + 50.0 * t;
                (
                    base + 40.0 * hh,
                    base * 0.9 + 30.0 * (1.0 - hh),
                    base * 0.6 + 20.0 * hh,
                )
            };
            let i = ((y * w + x) * 3) as usize;
            out[i] = (r + g).clamp(0.0, 255.0) as u8;
            out[i + 1] = (gr + g).clamp(0.0, 255.0) as u8;
            out[i + 2] = (b + g).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// A little-endian TIFF with IFD0 {Make, Orientation, ExifIFD, GPS IFD},
/// Exif IFD {DateTimeOriginal, OffsetTimeOriginal} and GPS IFD {lat, lon, error}.
fn camera_exif(orientation: u16) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value);
    }
    fn rationals(v: &[(u32, u32)]) -> Vec<u8> {
        v.iter()
            .flat_map(|(n, d)| [n.to_le_bytes(), d.to_le_bytes()].concat())
            .collect()
    }
    let make = b"GridcaseCam\0"; // 12 bytes
    let taken = b"2024:07:15 09:30:05\0"; // 20 bytes
    let offset = b"+08:00\0"; // 7 bytes
                              // Layout: header 8 | IFD0 (4 entries) 54 | make 12 | Exif IFD (2) 30 | taken 20 | offset 8
                              //         | GPS IFD (5) 66 | lat 24 | lon 24 | err 8
    let ifd0 = 8u32;
    let make_at = ifd0 + 2 + 4 * 12 + 4;
    let exif_ifd = make_at + 12;
    let taken_at = exif_ifd + 2 + 2 * 12 + 4;
    let offset_at = taken_at + 20;
    let gps_ifd = offset_at + 8;
    let lat_at = gps_ifd + 2 + 5 * 12 + 4;
    let lon_at = lat_at + 24;
    let err_at = lon_at + 24;
    let mut t = b"II*\0".to_vec();
    t.extend(ifd0.to_le_bytes());
    t.extend(4u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, 12, make_at.to_le_bytes());
    let mut o = [0u8; 4];
    o[..2].copy_from_slice(&orientation.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, o);
    entry(&mut t, 0x8769, 4, 1, exif_ifd.to_le_bytes());
    entry(&mut t, 0x8825, 4, 1, gps_ifd.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    t.extend(make);
    t.extend(2u16.to_le_bytes());
    entry(&mut t, 0x9003, 2, 20, taken_at.to_le_bytes());
    entry(&mut t, 0x9011, 2, 7, offset_at.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    t.extend(taken);
    t.extend(offset);
    t.push(0);
    t.extend(5u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, lat_at.to_le_bytes());
    entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, 5, 3, lon_at.to_le_bytes());
    entry(&mut t, 0x001F, 5, 1, err_at.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    // Luzhou Naxi: 28.7731 N, 105.3717 E, 8 m.
    t.extend(rationals(&[(28, 1), (46, 1), (231_160, 10_000)]));
    t.extend(rationals(&[(105, 1), (22, 1), (181_200, 10_000)]));
    t.extend(rationals(&[(8, 1)]));
    assert_eq!(t.len() as u32, err_at + 8);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(t);
    app1
}

/// The benchmark input: Q92 4:2:0 JPEG with EXIF (orientation 6, as a phone
/// held upright writes it, and GPS) in APP1.
pub fn camera_jpeg() -> Result<Vec<u8>> {
    let rgb = photo_rgb(WIDTH, HEIGHT, 42);
    let mut body = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut body, 92);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.add_app_segment(1, &camera_exif(6))?;
    enc.encode(
        &rgb,
        WIDTH as u16,
        HEIGHT as u16,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(body)
}

// ---- running and measuring a child process ----

/// Runs `cmd` to completion and reads its rusage with `wait4`.
///
/// Call this from a small process only: Linux counts the parent's peak RSS at
/// fork into the child's `ru_maxrss`, so [`run`] has each tool started by a
/// fresh `gridcase-bench __measure` helper (see [`measure_main`]).
pub fn measure_here(cmd: &mut Command) -> Result<ProcCost> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Poll (every 0.2 ms) so the thread count is seen while it runs; the
    // child's own times and memory come from the kernel, not from this loop.
    let mut max_threads = 0u64;
    let (r, wall) = loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r != 0 {
            break (r, start.elapsed());
        }
        max_threads = max_threads.max(threads_of(pid as u32));
        std::thread::sleep(Duration::from_micros(200));
    };
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{cmd:?} failed (status {status}): {err}");
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(ProcCost {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
        max_threads,
    })
}

/// The process's thread count now (`Threads:` in `/proc/PID/status`), 0 if gone.
fn threads_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `gridcase-bench __measure PROGRAM ARGS...`: runs the program, prints
/// `wall_ns cpu_ns max_rss_kb max_threads` on one line.
pub fn measure_main(args: &[String]) -> Result<()> {
    let Some((prog, rest)) = args.split_first() else {
        bail!("__measure needs a program");
    };
    let c = measure_here(Command::new(prog).args(rest))?;
    println!(
        "{} {} {} {}",
        c.wall.as_nanos(),
        c.cpu.as_nanos(),
        c.max_rss_kb,
        c.max_threads
    );
    Ok(())
}

/// Measures `prog args` through a fresh helper process (this executable).
fn measure(helper: &Path, prog: &Path, args: &[std::ffi::OsString]) -> Result<ProcCost> {
    let out = Command::new(helper)
        .arg("__measure")
        .arg(prog)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", helper.display()))?;
    if !out.status.success() {
        bail!("measuring {} failed", prog.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u128> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    if v.len() != 4 {
        bail!("helper printed {text:?}");
    }
    Ok(ProcCost {
        wall: Duration::from_nanos(v[0] as u64),
        cpu: Duration::from_nanos(v[1] as u64),
        max_rss_kb: v[2] as u64,
        max_threads: v[3] as u64,
    })
}

fn find_vipsthumbnail() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("vipsthumbnail"))
        .find(|p| p.is_file())
}

fn only_jpg_in(dir: &Path, suffix: &str) -> Result<PathBuf> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.ends_with(suffix) && (suffix != ".jpg" || !name.ends_with("_thumb.jpg")) {
            return Ok(p);
        }
    }
    bail!("no *{suffix} in {}", dir.display())
}

fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    if a.dimensions() != b.dimensions() {
        return f64::NAN;
    }
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let mse = se / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Generates the input and times `gridcase photo-intake` and `vipsthumbnail`.
/// Must run inside `gridcase-bench` (it starts `gridcase-bench __measure`).
pub fn run(gridcase_bin: &Path) -> Result<PhotoBenchReport> {
    let helper = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("IMG_20240715_093005.jpg");
    let bytes = camera_jpeg()?;
    std::fs::write(&input, &bytes)?;
    eprintln!("photo bench: input {} bytes, {WIDTH}x{HEIGHT}", bytes.len());
    drop(bytes);

    let vips = find_vipsthumbnail();
    let vips_missing = vips.is_none().then(|| {
        "vipsthumbnail is not installed (apt-get install -y libvips-tools); comparison skipped"
            .to_string()
    });
    if let Some(why) = &vips_missing {
        eprintln!("photo bench: {why}");
    }

    let g_out = dir.path().join("gridcase");
    let v_out = dir.path().join("vips");
    std::fs::create_dir_all(&v_out)?;
    let os = |s: &str| std::ffi::OsString::from(s);
    let run_gridcase = || -> Result<ProcCost> {
        let _ = std::fs::remove_dir_all(&g_out);
        let args = [
            os("photo-intake"),
            input.clone().into(),
            os("--out"),
            g_out.clone().into(),
            os("--max-edge"),
            os("1920"),
            os("--thumb-edge"),
            os("320"),
        ];
        measure(&helper, gridcase_bin, &args)
    };
    let big = v_out.join("big.jpg");
    let run_vips = |bin: &Path| -> Result<ProcCost> {
        let args = [
            input.clone().into(),
            os("-s"),
            os("1920"),
            os("-o"),
            os(&format!("{}[Q=80,strip]", big.display())),
        ];
        measure(&helper, bin, &args)
    };

    let load_before = load_avg();
    // One warm-up each (page cache, dynamic linking), then interleaved runs.
    run_gridcase()?;
    if let Some(bin) = &vips {
        run_vips(bin)?;
    }
    let mut g_runs = Vec::new();
    let mut v_runs = Vec::new();
    for _ in 0..RUNS {
        g_runs.push(run_gridcase()?);
        if let Some(bin) = &vips {
            v_runs.push(run_vips(bin)?);
        }
    }
    let load_after = load_avg();

    // Reference: full decode, upright, Lanczos3 to each output size.
    let original = image::load_from_memory(&std::fs::read(&input)?)?
        .rotate90()
        .into_rgb8();
    let reference = |w: u32, h: u32| {
        image::imageops::resize(&original, w, h, image::imageops::FilterType::Lanczos3)
    };

    let summarise =
        |name: &str, runs: Vec<ProcCost>, photo: &Path, th: Option<&Path>| -> Result<ToolResult> {
            let p = std::fs::read(photo)?;
            let pi = image::load_from_memory(&p)?.into_rgb8();
            let (thumb_bytes, thumb_size, thumb_psnr) = match th {
                Some(th) => {
                    let t = std::fs::read(th)?;
                    let ti = image::load_from_memory(&t)?.into_rgb8();
                    let q = psnr(&ti, &reference(ti.width(), ti.height()));
                    (Some(t.len() as u64), ti.dimensions(), q)
                }
                None => (None, (0, 0), f64::NAN),
            };
            Ok(ToolResult {
                name: name.to_string(),
                wall: median(runs.iter().map(|r| r.wall).collect()),
                cpu: median(runs.iter().map(|r| r.cpu).collect()),
                max_rss_kb: median(runs.iter().map(|r| r.max_rss_kb).collect()),
                max_threads: runs.iter().map(|r| r.max_threads).max().unwrap_or(0),
                runs,
                photo_bytes: p.len() as u64,
                photo_size: pi.dimensions(),
                thumb_bytes,
                thumb_size,
                photo_psnr: psnr(&pi, &reference(pi.width(), pi.height())),
                thumb_psnr,
            })
        };
    let gridcase = summarise(
        "gridcase photo-intake (1920 px + 320 px thumb)",
        g_runs,
        &only_jpg_in(&g_out, ".jpg")?,
        Some(&only_jpg_in(&g_out, "_thumb.jpg")?),
    )?;
    let vips = match vips {
        Some(_) => Some(summarise(
            "vipsthumbnail (1920 px only, one process)",
            v_runs,
            &big,
            None,
        )?),
        None => None,
    };
    Ok(PhotoBenchReport {
        input_bytes: std::fs::metadata(&input)?.len(),
        gridcase,
        vips,
        vips_missing,
        load_before,
        load_after,
    })
}
