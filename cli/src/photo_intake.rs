//! `gridcase photo-intake <input> --out <dir>`: the photo pipeline alone, as a
//! whole process, so it can be timed against other tools (see the photo
//! benchmark in `gridcase-tests`).

use std::path::Path;

use anyhow::{Context, Result};
use gridcase_core::photo::{intake_file, PhotoConfig};

/// Runs intake on `input` and writes `<out_dir>/<sha>.jpg` and
/// `<out_dir>/<thumb_sha>_thumb.jpg`; prints one JSON line describing them.
pub fn run(input: &Path, out_dir: &Path, max_edge: u32, thumb_edge: u32) -> Result<()> {
    let cfg = PhotoConfig {
        max_edge,
        thumb_edge,
        ..PhotoConfig::default()
    };
    let p = intake_file(input, &cfg).with_context(|| format!("taking in {}", input.display()))?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let photo_path = out_dir.join(format!("{}.jpg", p.sha256));
    let thumb_path = out_dir.join(format!("{}_thumb.jpg", p.thumb_sha256));
    std::fs::write(&photo_path, &p.jpeg)
        .with_context(|| format!("writing {}", photo_path.display()))?;
    std::fs::write(&thumb_path, &p.thumb)
        .with_context(|| format!("writing {}", thumb_path.display()))?;
    let line = serde_json::json!({
        "width": p.width,
        "height": p.height,
        "bytes": p.jpeg.len(),
        "sha256": p.sha256,
        "path": photo_path,
        "thumb": {
            "width": p.thumb_width,
            "height": p.thumb_height,
            "bytes": p.thumb.len(),
            "sha256": p.thumb_sha256,
            "path": thumb_path,
        },
        "captured_at": p.captured_at,
        "gps": p.gps.map(|g| serde_json::json!({"lat": g.lat, "lon": g.lon, "accuracy_m": g.accuracy_m})),
    });
    crate::output::emit(&line.to_string());
    Ok(())
}
